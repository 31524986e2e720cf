"""Where each app's API resources join the one /api/v1/ router."""

from __future__ import annotations

from rest_framework.routers import DefaultRouter


def register_all(router: DefaultRouter) -> None:
    from integrations.api import register as register_integrations
    from integrations.api_orders import register as register_orders
    from tickets.api import register as register_tickets

    register_tickets(router)
    register_integrations(router)
    register_orders(router)
