"""Short-lived caches of who may see a workspace: read on every page, written rarely.

`membership_for` resolves /t/<slug>/ for a user without a query on a warm cache; every
service that creates, changes or removes a membership (or edits the workspace) calls
`memberships_changed`, which drops the entries now and again after commit. A TTL bounds
anything missed. Misses are never cached, so a new member gets in at once.
"""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.db import transaction

from helpdesk.models import Membership, Tenant, User

TTL_SECONDS = 60


def _membership_key(user_id: int, slug: str) -> str:
    return f"access:membership:{user_id}:{slug}"


def _members_key(tenant_id: int) -> str:
    return f"access:members:{tenant_id}"


def _freeze(instance: Any) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}


def _thaw(model: type, values: dict) -> Any:
    instance = model(**values)
    instance._state.adding = False
    instance._state.db = "default"
    return instance


def membership_for(user: User, slug: str) -> Membership | None:
    key = _membership_key(user.pk, slug)
    found = cache.get(key)
    if found is not None:
        membership = _thaw(Membership, found["membership"])
        membership.tenant = _thaw(Tenant, found["tenant"])
        return membership
    membership = Membership.objects.select_related("tenant").filter(user=user, tenant__slug=slug).first()
    if membership is not None:
        cache.set(key, {"membership": _freeze(membership), "tenant": _freeze(membership.tenant)}, TTL_SECONDS)
    return membership


def members(tenant: Tenant) -> list[User]:
    """The workspace's members as light User objects (id, name, email), by name."""
    key = _members_key(tenant.pk)
    rows = cache.get(key)
    if rows is None:
        rows = list(
            Membership.objects.filter(tenant=tenant)
            .order_by("user__name", "user__email")
            .values_list("user_id", "user__name", "user__email")
        )
        cache.set(key, rows, TTL_SECONDS)
    return [_thaw(User, {"id": pk, "name": name, "email": email}) for pk, name, email in rows]


def memberships_changed(tenant: Tenant, *, user_id: int | None = None, slugs: tuple[str, ...] = ()) -> None:
    """Forget cached access for one member (or all members) of `tenant`."""
    user_ids = (
        [user_id]
        if user_id is not None
        else list(Membership.objects.filter(tenant=tenant).values_list("user_id", flat=True))
    )
    keys = [_membership_key(u, s) for u in user_ids for s in {tenant.slug, *slugs}] + [_members_key(tenant.pk)]
    cache.delete_many(keys)
    transaction.on_commit(lambda: cache.delete_many(keys))
