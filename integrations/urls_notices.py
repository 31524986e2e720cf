"""Customer notice pages under /t/<tenant_slug>/ (names start with "settings_" for the nav)."""

from django.urls import path

from integrations import views_notices as v

urlpatterns = [
    path("settings/notices/", v.settings_notices, name="settings_notices"),
    path("settings/notices/log/", v.notice_log, name="settings_notice_log"),
    path("settings/notices/log/<int:pk>/release/", v.notice_release, name="settings_notice_release"),
    path("tickets/<int:number>/notices/", v.ticket_notices, name="ticket_notices"),
    path("customers/<int:pk>/notices/", v.customer_notices, name="customer_notices"),
]
