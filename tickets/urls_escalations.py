"""Escalation pages and the CSAT report under /t/<tenant_slug>/."""

from django.urls import path

from tickets import views_escalations as views

urlpatterns = [
    path("escalations/", views.escalations, name="escalations"),
    path(
        "escalations/<int:pk>/acknowledge/",
        views.escalation_action,
        {"verb": "acknowledge"},
        name="escalation_acknowledge",
    ),
    path("escalations/<int:pk>/answer/", views.escalation_action, {"verb": "answer"}, name="escalation_answer"),
    path("escalations/<int:pk>/resolve/", views.escalation_action, {"verb": "resolve"}, name="escalation_resolve"),
    path("escalations/<int:pk>/cancel/", views.escalation_action, {"verb": "cancel"}, name="escalation_cancel"),
    path("tickets/<int:number>/escalations/", views.ticket_escalations, name="ticket_escalations"),
    path("tickets/<int:number>/escalate/", views.ticket_escalate, name="ticket_escalate"),
    # Listed before the "reports" placeholder, so Reports opens here (same path and name).
    path("reports/", views.reports_home, name="reports"),
    path("reports/csat/", views.reports_csat, name="reports_csat"),
]
