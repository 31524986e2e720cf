"""SLA settings pages, included under /t/<tenant_slug>/settings/.

Names start with "settings_" so the main nav marks Settings as current on these pages.
"""

from django.urls import path

from tickets import views_sla

urlpatterns = [
    path("business-hours/", views_sla.business_hours, name="settings_business_hours"),
    path("business-hours/new/", views_sla.schedule_create, name="settings_schedule_create"),
    path("business-hours/<int:pk>/", views_sla.schedule_edit, name="settings_schedule_edit"),
    path(
        "business-hours/<int:pk>/default/",
        views_sla.schedule_set_default,
        name="settings_schedule_default",
    ),
    path("business-hours/<int:pk>/holidays/", views_sla.holiday_add, name="settings_holiday_add"),
    path(
        "business-hours/<int:pk>/holidays/<int:holiday_pk>/delete/",
        views_sla.holiday_delete,
        name="settings_holiday_delete",
    ),
    path("sla-policies/", views_sla.sla_policies, name="settings_sla_policies"),
    path("sla-policies/new/", views_sla.policy_create, name="settings_sla_policy_create"),
    path("sla-policies/progress/", views_sla.sla_job, name="settings_sla_job"),
    path("sla-policies/<int:pk>/", views_sla.policy_edit, name="settings_sla_policy_edit"),
    path("sla-policies/<int:pk>/move/", views_sla.policy_move, name="settings_sla_policy_move"),
    path("sla-policies/<int:pk>/active/", views_sla.policy_toggle, name="settings_sla_policy_toggle"),
    path("ticket-types/", views_sla.ticket_types, name="settings_ticket_types"),
    path("ticket-types/new/", views_sla.ticket_type_create, name="settings_ticket_type_create"),
    path("ticket-types/<int:pk>/", views_sla.ticket_type_edit, name="settings_ticket_type_edit"),
    path("ticket-types/<int:pk>/move/", views_sla.ticket_type_move, name="settings_ticket_type_move"),
]
