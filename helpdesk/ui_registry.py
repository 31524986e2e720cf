"""Where each app's tenant pages join /t/<tenant_slug>/."""

from __future__ import annotations

from django.urls import path


def tenant_urlpatterns() -> list:
    from django.urls import include

    from helpdesk.views import workspace

    # Sections whose app has not landed yet show an honest "not set up yet" page.
    return [
        path("", include("tickets.urls")),
        path("", include("tickets.urls_escalations")),
        path("settings/", include("tickets.urls_sla")),
        path("", include("integrations.urls")),
        path("", include("integrations.urls_orders")),
        path("", include("integrations.urls_notices")),
        path("playbooks/", include("playbooks.urls")),
        *[
            path(f"{section}/", workspace.section_placeholder, {"section": section}, name=section)
            for section in ("reports",)
        ],
    ]
