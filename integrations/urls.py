"""Store connection pages, included under /t/<tenant_slug>/ (admins only).

Names start with "settings_" so the main nav marks Settings as current. Connection ids are
UUIDs, matched as plain path segments and checked by the view: a malformed id is the same
404 as a foreign or missing one.
"""

from django.urls import path

from integrations import views

urlpatterns = [
    path("settings/connections/", views.connection_list, name="settings_connections"),
    path("settings/connections/new/", views.connection_create, name="settings_connection_create"),
    path("settings/connections/<str:pk>/", views.connection_detail, name="settings_connection_detail"),
    path(
        "settings/connections/<str:pk>/credentials/",
        views.connection_credentials,
        name="settings_connection_credentials",
    ),
    path(
        "settings/connections/<str:pk>/rotate-secret/",
        views.connection_rotate_secret,
        name="settings_connection_rotate",
    ),
    path(
        "settings/connections/<str:pk>/disconnect/",
        views.connection_disconnect,
        name="settings_connection_disconnect",
    ),
    path(
        "settings/connections/<str:pk>/health/",
        views.connection_health,
        name="settings_connection_health",
    ),
    path(
        "settings/connections/<str:pk>/deliveries/<int:delivery_pk>/replay/",
        views.delivery_replay,
        name="settings_delivery_replay",
    ),
]
