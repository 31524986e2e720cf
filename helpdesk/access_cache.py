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

from helpdesk.models import ApiToken, Membership, Tenant, User

TTL_SECONDS = 60


def _membership_key(user_id: int, slug: str) -> str:
    return f"access:membership:{user_id}:{slug}"


def _members_key(tenant_id: int) -> str:
    return f"access:members:{tenant_id}"


def _user_key(user_id: int) -> str:
    return f"access:user:{user_id}"


def _token_key(tenant_id: int, prefix: str) -> str:
    return f"access:token:{tenant_id}:{prefix}"


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


def user_by_id(user_id: int) -> User | None:
    """The signed-in user of a session (every page asks; see CachedModelBackend). Any save
    or delete of the user drops the entry (user_changed), so a password change ends other
    sessions at once, as without the cache."""
    key = _user_key(user_id)
    found = cache.get(key)
    if found is not None:
        return _thaw(User, found)
    user = User.objects.filter(pk=user_id).first()
    if user is not None:
        cache.set(key, _freeze(user), TTL_SECONDS)
    return user


def user_changed(user_id: int) -> None:
    key = _user_key(user_id)
    cache.delete(key)
    transaction.on_commit(lambda: cache.delete(key))


def active_token(tenant_id: int, prefix: str) -> ApiToken | None:
    """The unrevoked token with this public prefix (and its tenant), or None. Every API
    request asks; revoking a token or editing the workspace drops the entry (tokens_changed)."""
    key = _token_key(tenant_id, prefix)
    found = cache.get(key)
    if found is not None:
        token = _thaw(ApiToken, found["token"])
        token.tenant = _thaw(Tenant, found["tenant"])
        return token
    token = (
        ApiToken.objects.select_related("tenant").filter(tenant_id=tenant_id, prefix=prefix, revoked_at=None).first()
    )
    if token is not None:
        remember_token(token)
    return token


def remember_token(token: ApiToken) -> None:
    cache.set(
        _token_key(token.tenant_id, token.prefix),
        {"token": _freeze(token), "tenant": _freeze(token.tenant)},
        TTL_SECONDS,
    )


def tokens_changed(tenant: Tenant, prefixes: list[str] | None = None) -> None:
    """Forget cached tokens of `tenant` (all of them, or these prefixes): now and after commit."""
    if prefixes is None:
        prefixes = list(ApiToken.objects.filter(tenant=tenant).values_list("prefix", flat=True))
    keys = [_token_key(tenant.pk, p) for p in prefixes]
    if keys:
        cache.delete_many(keys)
        transaction.on_commit(lambda: cache.delete_many(keys))


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
