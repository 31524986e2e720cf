"""Per-tenant defaults and demo data that each app contributes.

Kept in one place so the order is explicit (no signals): tenancy calls these, and each
app's function is imported lazily to avoid import cycles.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from helpdesk.models import Tenant

if TYPE_CHECKING:
    from helpdesk.demo import DemoPeople


def bootstrap_tenant(tenant: Tenant) -> None:
    """Create the defaults a new workspace needs to work at once (e.g. a default SLA policy)."""
    from tickets.defaults import bootstrap_tickets

    bootstrap_tickets(tenant)


def seed_apps(tenant: Tenant, people: DemoPeople) -> None:
    """Add each app's demo data to a freshly created demo store."""
    from integrations.demo import seed_integrations
    from playbooks.demo import seed_escalations, seed_playbooks
    from tickets.demo import seed_tickets

    seed_tickets(tenant, people)
    seed_playbooks(tenant)  # needs the demo's ticket types and teams
    seed_integrations(tenant, people)  # orders for the tickets' customers: after the tickets
    seed_escalations(tenant, people)  # summaries fill in from the linked orders
