"""Writers for tenants, memberships, invitations, API tokens and the audit log.

Every function here is keyword-only and atomic; views, commands and the API call these and
never save models themselves.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from helpdesk.access_cache import active_token, memberships_changed, remember_token, tokens_changed
from helpdesk.models import (
    ApiToken,
    AuditLog,
    Availability,
    Invitation,
    Membership,
    Role,
    Tenant,
    User,
)

INVITATION_TTL = timedelta(days=7)
# last_used_at is refreshed at most this often so a busy token is not a write per request.
TOKEN_TOUCH_INTERVAL = timedelta(seconds=60)


@dataclass(frozen=True)
class Actor:
    """Who is doing something: a user, an API token, or the system (tasks, commands)."""

    kind: str = AuditLog.ActorType.SYSTEM
    user: User | None = None
    token: ApiToken | None = None
    ip: str | None = None

    @classmethod
    def system(cls) -> Actor:
        return cls()

    @classmethod
    def for_user(cls, user: User, ip: str | None = None) -> Actor:
        return cls(kind=AuditLog.ActorType.USER, user=user, ip=ip)

    @classmethod
    def for_token(cls, token: ApiToken, ip: str | None = None) -> Actor:
        return cls(kind=AuditLog.ActorType.TOKEN, token=token, ip=ip)

    @property
    def label(self) -> str:
        if self.user is not None:
            return self.user.email
        if self.token is not None:
            return f"API token “{self.token.name}”"
        return "System"


def actor_from_request(request: Any) -> Actor:
    """Build the Actor for an HTTP request (session user or API token)."""
    ip = request.META.get("REMOTE_ADDR")
    token = getattr(request, "auth", None)
    if isinstance(token, ApiToken):
        return Actor.for_token(token, ip=ip)
    if request.user.is_authenticated and isinstance(request.user, User):
        return Actor.for_user(request.user, ip=ip)
    return Actor(ip=ip)


def audit_record(
    *,
    tenant: Tenant,
    actor: Actor,
    action: str,
    target: Any = None,
    changes: dict | None = None,
) -> AuditLog:
    """Append one audit entry. `changes` maps field -> [old, new] (or any JSON summary)."""
    return AuditLog.objects.create(
        tenant=tenant,
        actor_type=actor.kind,
        actor_user=actor.user,
        actor_token=actor.token,
        actor_label=actor.label[:200],
        action=action,
        target_type=target._meta.model_name if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_label=str(target)[:200] if target is not None else "",
        changes=changes or {},
        ip_address=actor.ip,
    )


def _diff(instance: Any, **values: Any) -> dict[str, list]:
    """Apply `values` to `instance` and return {field: [old, new]} for what changed."""
    changes = {}
    for field, new in values.items():
        old = getattr(instance, field)
        if old != new:
            changes[field] = [old, new]
            setattr(instance, field, new)
    return changes


# --- Tenants -------------------------------------------------------------------------


@transaction.atomic
def tenant_create(
    *,
    name: str,
    slug: str,
    owner_email: str,
    owner_name: str = "",
    owner_password: str | None = None,
    time_zone: str = "UTC",
    default_language: str = "en",
    actor: Actor | None = None,
) -> tuple[Tenant, User]:
    """Create a store workspace with its owner (an existing user is reused) and defaults."""
    if Tenant.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": f"A workspace with the slug “{slug}” already exists."})
    tenant = Tenant(name=name, slug=slug, timezone=time_zone, default_language=default_language)
    tenant.full_clean()
    tenant.save()
    email = owner_email.strip().lower()
    owner = User.objects.filter(email=email).first()
    if owner is None:
        owner = User.objects.create_user(email=email, password=owner_password, name=owner_name)
    Membership.objects.create(tenant=tenant, user=owner, role=Role.OWNER)
    # Apps add their per-tenant defaults (default SLA policy, business hours, …).
    from helpdesk.bootstrap import bootstrap_tenant

    bootstrap_tenant(tenant)
    audit_record(tenant=tenant, actor=actor or Actor.system(), action="tenant.create", target=tenant)
    return tenant, owner


@transaction.atomic
def tenant_update(*, tenant: Tenant, actor: Actor, **values: Any) -> Tenant:
    old_slug = tenant.slug
    changes = _diff(tenant, **values)
    if changes:
        tenant.full_clean()
        tenant.save()
        memberships_changed(tenant, slugs=(old_slug,))
        tokens_changed(tenant)
        audit_record(tenant=tenant, actor=actor, action="tenant.update", target=tenant, changes=changes)
    return tenant


# --- Members -------------------------------------------------------------------------


def _owner_count(tenant: Tenant) -> int:
    # Locks the owner rows so two owners stepping down at once cannot leave none.
    return len(Membership.objects.select_for_update().filter(tenant=tenant, role=Role.OWNER))


def _may_manage_owners(tenant: Tenant, actor: Actor) -> bool:
    """Only an owner (or the system) may grant, change or remove the owner role.

    Admins manage everyone else; without this an admin could make themselves owner.
    """
    if actor.kind == AuditLog.ActorType.SYSTEM:
        return True
    return (
        actor.user is not None and Membership.objects.filter(tenant=tenant, user=actor.user, role=Role.OWNER).exists()
    )


@transaction.atomic
def membership_set_role(*, membership: Membership, role: str, actor: Actor) -> Membership:
    """Change a member's role; the last owner cannot be demoted."""
    if role not in Role.values:
        raise ValidationError({"role": f"“{role}” is not a role."})
    touches_owner = Role.OWNER in (membership.role, role) and membership.role != role
    if touches_owner and not _may_manage_owners(membership.tenant, actor):
        raise ValidationError({"role": "Only an owner can grant or change the owner role."})
    if membership.role == Role.OWNER and role != Role.OWNER and _owner_count(membership.tenant) <= 1:
        raise ValidationError({"role": "A workspace needs at least one owner."})
    changes = _diff(membership, role=role)
    if changes:
        membership.save(update_fields=["role"])
        memberships_changed(membership.tenant, user_id=membership.user_id)
        audit_record(
            tenant=membership.tenant,
            actor=actor,
            action="member.role",
            target=membership.user,
            changes=changes,
        )
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership, actor: Actor) -> None:
    if membership.role == Role.OWNER and not _may_manage_owners(membership.tenant, actor):
        raise ValidationError("Only an owner can remove an owner.")
    if membership.role == Role.OWNER and _owner_count(membership.tenant) <= 1:
        raise ValidationError("The last owner cannot be removed.")
    audit_record(tenant=membership.tenant, actor=actor, action="member.remove", target=membership.user)
    memberships_changed(membership.tenant, user_id=membership.user_id)
    membership.delete()


def membership_set_availability(*, membership: Membership, availability: str) -> Membership:
    if availability not in Availability.values:
        raise ValidationError({"availability": f"“{availability}” is not an availability."})
    membership.availability = availability
    membership.save(update_fields=["availability"])
    memberships_changed(membership.tenant, user_id=membership.user_id)
    return membership


# --- Invitations ---------------------------------------------------------------------


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def invitation_url(invitation: Invitation, secret: str) -> str:
    path = reverse("invitation_accept", kwargs={"tenant_id": invitation.tenant_id, "secret": secret})
    return f"{settings.BASE_URL}{path}"


@transaction.atomic
def invitation_create(*, tenant: Tenant, email: str, role: str, actor: Actor) -> tuple[Invitation, str]:
    """Invite someone by email; returns the invitation and its accept URL (emailed after commit)."""
    email = email.strip().lower()
    if role not in Role.values or role == Role.OWNER:
        raise ValidationError({"role": "Invite as admin, team lead or agent."})
    if Membership.objects.filter(tenant=tenant, user__email=email).exists():
        raise ValidationError({"email": f"{email} is already a member of this workspace."})
    # A fresh invitation replaces any pending one for the same address.
    Invitation.objects.filter(tenant=tenant, email=email, accepted_at=None, revoked_at=None).update(
        revoked_at=timezone.now()
    )
    secret = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        tenant=tenant,
        email=email,
        role=role,
        token_hash=_hash(secret),
        invited_by=actor.user,
        expires_at=timezone.now() + INVITATION_TTL,
    )
    url = invitation_url(invitation, secret)
    context = {"tenant": tenant, "invitation": invitation, "url": url, "inviter": actor.label}
    subject = f"You're invited to {tenant.name} on Storedesk"
    body = render_to_string("emails/invitation-body.txt", context)
    transaction.on_commit(lambda: send_mail(subject, body, None, [email], fail_silently=False))
    audit_record(
        tenant=tenant,
        actor=actor,
        action="invitation.create",
        target=invitation,
        changes={"email": email, "role": role},
    )
    return invitation, url


def invitation_for_secret(*, tenant_id: int, secret: str) -> Invitation | None:
    """The pending invitation matching this link, or None (expired, used, revoked or forged)."""
    invitation = (
        Invitation.objects.select_related("tenant").filter(tenant_id=tenant_id, token_hash=_hash(secret)).first()
    )
    if invitation is None or not invitation.is_pending:
        return None
    return invitation


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user: User) -> Membership:
    if user.email.lower() != invitation.email.lower():
        raise ValidationError(f"This invitation was sent to {invitation.email}; you are signed in as {user.email}.")
    locked = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if not locked.is_pending:
        raise ValidationError("This invitation has already been used or has expired.")
    membership, _ = Membership.objects.get_or_create(
        tenant=invitation.tenant, user=user, defaults={"role": invitation.role}
    )
    memberships_changed(invitation.tenant, user_id=user.pk)
    locked.accepted_at = timezone.now()
    locked.save(update_fields=["accepted_at"])
    audit_record(
        tenant=invitation.tenant,
        actor=Actor.for_user(user),
        action="invitation.accept",
        target=user,
    )
    return membership


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, actor: Actor) -> None:
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    audit_record(tenant=invitation.tenant, actor=actor, action="invitation.revoke", target=invitation)


# --- API tokens ----------------------------------------------------------------------

TOKEN_PREFIX_CHARS = "abcdefghijkmnopqrstuvwxyz23456789"


@transaction.atomic
def api_token_create(*, tenant: Tenant, name: str, actor: Actor) -> tuple[ApiToken, str]:
    """Create a token; returns it and the plaintext, which is never stored or shown again."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Give the token a name, e.g. the system that will use it."})
    prefix = "".join(secrets.choice(TOKEN_PREFIX_CHARS) for _ in range(8))
    secret = secrets.token_urlsafe(32)
    plaintext = f"sd_{tenant.pk}_{prefix}_{secret}"
    token = ApiToken.objects.create(
        tenant=tenant,
        name=name[:100],
        prefix=prefix,
        token_hash=_hash(plaintext),
        created_by=actor.user,
    )
    audit_record(tenant=tenant, actor=actor, action="api_token.create", target=token)
    return token, plaintext


@transaction.atomic
def api_token_revoke(*, token: ApiToken, actor: Actor) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        tokens_changed(token.tenant, [token.prefix])
        audit_record(tenant=token.tenant, actor=actor, action="api_token.revoke", target=token)
    return token


def api_token_authenticate(plaintext: str) -> ApiToken | None:
    """The active token for this bearer string, or None. Constant-time hash comparison."""
    parts = plaintext.split("_", 3)
    if len(parts) != 4 or parts[0] != "sd" or not (parts[1].isascii() and parts[1].isdigit() and len(parts[1]) < 19):
        return None  # "²".isdigit() is True, but int("²") fails: ASCII digits only
    if not (parts[2].isascii() and parts[2].isalnum() and len(parts[2]) <= 12):
        return None
    # From the access cache (one Redis GET on a warm entry; revoking drops it at once).
    token = active_token(int(parts[1]), parts[2])
    if token is None or not hmac.compare_digest(token.token_hash, _hash(plaintext)):
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > TOKEN_TOUCH_INTERVAL:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
        remember_token(token)
    return token
