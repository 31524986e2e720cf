"""The one DRF base viewset every tenant-owned resource inherits.

`get_queryset` always filters by `request.tenant`; subclasses refine it in
`safely_get_queryset`. Anything that must bypass tenancy is named `dangerously_…`.
"""

from __future__ import annotations

from django.db.models import QuerySet
from rest_framework import viewsets
from rest_framework.request import Request

from helpdesk.models import Membership, Role, Tenant
from helpdesk.services import Actor, actor_from_request


class TenantRequest(Request):
    """Static type of an API request after IsTenantMember resolved its tenant."""

    tenant: Tenant
    membership: Membership | None  # None for an API token
    role: str


class TenantScopedViewSet(viewsets.GenericViewSet):
    request: TenantRequest
    required_role: str = Role.AGENT
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self) -> QuerySet:
        # DRF's get_queryset insists on a `queryset` attribute and returns a fresh `.all()`.
        queryset = super().get_queryset().filter(tenant=self.request.tenant)
        return self.safely_get_queryset(queryset)

    def safely_get_queryset(self, queryset: QuerySet) -> QuerySet:
        """Refine the tenant-scoped queryset (select_related, filters). Override freely."""
        return queryset

    @property
    def tenant(self):
        return self.request.tenant

    @property
    def actor(self) -> Actor:
        return actor_from_request(self.request)
