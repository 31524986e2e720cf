"""Order pages under /t/<tenant_slug>/: the ticket's order card and actions, approvals, limits."""

from django.urls import path

from integrations import views_orders as v

urlpatterns = [
    path("tickets/<int:number>/orders/", v.ticket_orders, name="ticket_orders"),
    path("tickets/<int:number>/orders/link/", v.ticket_order_link, name="ticket_order_link"),
    path(
        "tickets/<int:number>/orders/<int:order_id>/refund/",
        v.ticket_order_action_form,
        {"kind": "refund"},
        name="ticket_order_refund",
    ),
    path(
        "tickets/<int:number>/orders/<int:order_id>/cancel/",
        v.ticket_order_action_form,
        {"kind": "cancel"},
        name="ticket_order_cancel",
    ),
    path(
        "tickets/<int:number>/orders/<int:order_id>/address/",
        v.ticket_order_action_form,
        {"kind": "address"},
        name="ticket_order_address",
    ),
    path(
        "tickets/<int:number>/order-actions/<int:action_id>/",
        v.ticket_order_action,
        name="ticket_order_action",
    ),
    path(
        "tickets/<int:number>/order-actions/<int:action_id>/retry/",
        v.ticket_order_action_retry,
        name="ticket_order_action_retry",
    ),
    path("approvals/", v.approvals, name="approvals"),
    path("approvals/<int:action_id>/decide/", v.approval_decide, name="approval_decide"),
    path("settings/action-limits/", v.settings_action_limits, name="settings_action_limits"),
]
