"""Where each app's API resources join the one /api/v1/ router."""

from __future__ import annotations

from rest_framework.routers import DefaultRouter


def register_all(router: DefaultRouter) -> None:
    from integrations.api import register as register_integrations
    from integrations.api_orders import register as register_orders
    from playbooks.api import register as register_playbooks
    from tickets.api import register as register_tickets
    from tickets.api_escalations import register as register_escalations

    register_tickets(router)
    register_escalations(router)
    register_integrations(router)
    register_orders(router)
    register_playbooks(router)
