"""Webhook endpoints, included under /hooks/: one URL per platform and connection.

Public by design (the platform signs; there is no session). Names: `hooks_<platform>`.
"""

from django.urls import path

from integrations import receivers

urlpatterns = [
    path(
        f"{platform}/<uuid:connection_uuid>/",
        receivers.receive,
        {"platform": platform},
        name=f"hooks_{platform}",
    )
    for platform in receivers.RECEIVERS
]
