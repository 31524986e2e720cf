"""Tenant resolution for API requests, and role checks."""

from __future__ import annotations

from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import BasePermission

from helpdesk.models import ApiToken, Membership, Role

# What an API token may do: it acts for the store's own systems, like an admin.
TOKEN_ROLE = Role.ADMIN


def resolve_api_tenant(request) -> None:
    """Set request.tenant / request.membership / request.role once per API request.

    A token's tenant is the token's. A session user names the tenant by slug in the
    `X-Tenant` header (or has exactly one membership). A tenant the user is not a member
    of is a 404, like one that does not exist.
    """
    if getattr(request, "tenant", None) is not None:
        return
    if isinstance(request.auth, ApiToken):
        request.tenant = request.auth.tenant
        request.membership = None
        request.role = TOKEN_ROLE
        return
    memberships = Membership.objects.select_related("tenant").filter(user=request.user)
    slug = request.headers.get("X-Tenant")
    if slug:
        membership = memberships.filter(tenant__slug=slug).first()
        if membership is None:
            raise NotFound("No such workspace.")
    else:
        found = list(memberships[:2])
        if len(found) != 1:
            raise ValidationError({"X-Tenant": ["Name the workspace with the X-Tenant header (its slug)."]})
        membership = found[0]
    request.tenant = membership.tenant
    request.membership = membership
    request.role = membership.role


def role_at_least(request, role: str) -> bool:
    from helpdesk.models import ROLE_RANK

    return ROLE_RANK[Role(request.role)] >= ROLE_RANK[Role(role)]


class IsTenantMember(BasePermission):
    """Authenticated, resolved to one tenant, and holding the view's `required_role`."""

    message = "Your role does not allow this."

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        resolve_api_tenant(request)
        required = getattr(view, "required_role", Role.AGENT)
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            required = getattr(view, "required_write_role", required)
        return role_at_least(request, required)
