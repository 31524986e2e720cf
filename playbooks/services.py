"""Writers for playbooks, reply/notice templates and checklist ticks."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from helpdesk.models import Membership, Tenant, User
from helpdesk.services import Actor, audit_record
from playbooks import rendering
from playbooks.models import (
    REQUIRED_FIELD_CHOICES,
    ChecklistTick,
    Playbook,
    PlaybookVersion,
    ReplyTemplate,
    TemplateVariant,
)
from tickets.models import Team, Ticket, TicketTag, TicketType

MAX_CHECKLIST_ITEMS = 30
MAX_REPLIES = 30
CACHE_SECONDS = 60


def _cache_key(tenant_id: int) -> str:
    return f"playbooks:current:{tenant_id}"


def current_versions(tenant_id: int) -> dict[int, int]:
    """{ticket type id: current playbook version id} for a tenant, cached (ticket creation path)."""
    key = _cache_key(tenant_id)
    found = cache.get(key)
    if found is None:
        found = dict(
            Playbook.objects.filter(tenant_id=tenant_id, current_version__isnull=False).values_list(
                "ticket_type_id", "current_version_id"
            )
        )
        cache.set(key, found, CACHE_SECONDS)
    return found


def current_version_id(tenant_id: int, ticket_type_id: int | None) -> int | None:
    if ticket_type_id is None:
        return None
    return current_versions(tenant_id).get(ticket_type_id)


# --- templates ---------------------------------------------------------------------


def _validate_text(text: str, field: str) -> None:
    try:
        rendering.validate(text)
    except rendering.TemplateProblem as problem:
        raise ValidationError({field: str(problem)}) from None


def _clean_variants(variants: Mapping[str, Mapping[str, str]], kind: str) -> dict[str, tuple[str, str]]:
    from django.conf import settings

    languages = {code for code, _ in settings.LANGUAGES}
    cleaned: dict[str, tuple[str, str]] = {}
    errors: dict[str, str] = {}
    for language, texts in variants.items():
        subject = (texts.get("subject") or "").strip()
        body = (texts.get("body") or "").strip()
        if not subject and not body:
            continue
        if language not in languages:
            errors[f"{language}-body"] = f"“{language}” is not a supported language."
            continue
        if not body:
            errors[f"{language}-body"] = "Write the message, or leave this language empty."
            continue
        if kind == ReplyTemplate.Kind.NOTICE and not subject:
            errors[f"{language}-subject"] = "A notice needs an email subject."
            continue
        for field, text in ((f"{language}-subject", subject), (f"{language}-body", body)):
            try:
                rendering.validate(text)
            except rendering.TemplateProblem as problem:
                errors[field] = str(problem)
        cleaned[language] = (subject[:250], body)
    if not cleaned and not errors:
        errors["body"] = "Write the template in at least one language."
    if errors:
        raise ValidationError(errors)
    return cleaned


@transaction.atomic
def template_save(
    *,
    tenant: Tenant,
    actor: Actor,
    name: str,
    variants: Mapping[str, Mapping[str, str]],
    kind: str = ReplyTemplate.Kind.REPLY,
    collection: str = "",
    template: ReplyTemplate | None = None,
    is_active: bool = True,
) -> ReplyTemplate:
    """Create or edit a template; every language variant is validated in the sandbox first."""
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Give the template a name agents will recognise."})
    if kind not in ReplyTemplate.Kind.values:
        raise ValidationError({"kind": "Choose reply or notice."})
    cleaned = _clean_variants(variants, kind)
    created = template is None
    if template is None:
        template = ReplyTemplate(tenant=tenant, kind=kind)
    elif template.tenant_id != tenant.pk:
        raise ValidationError({"template": "No such template."})
    template.name = name[:120]
    template.collection = (collection or "").strip()[:80]
    template.is_active = is_active
    template.updated_at = timezone.now()
    try:
        with transaction.atomic():
            template.save()
    except IntegrityError:
        raise ValidationError({"name": f"There is already a template called “{name}”."}) from None
    TemplateVariant.objects.filter(tenant=tenant, template=template).exclude(language__in=list(cleaned)).delete()
    for language, (subject, body) in cleaned.items():
        TemplateVariant.objects.update_or_create(
            tenant=tenant, template=template, language=language, defaults={"subject": subject, "body": body}
        )
    audit_record(
        tenant=tenant,
        actor=actor,
        action="template.created" if created else "template.updated",
        target=template,
        changes={"name": template.name, "languages": sorted(cleaned)},
    )
    return template


def pick_variant(template: ReplyTemplate, language: str, default_language: str) -> TemplateVariant | None:
    """The customer's language, else the store's default, else the first written one."""
    variants = {v.language: v for v in template.variants.all()}
    for choice in (language, (language or "").split("-")[0], default_language):
        if choice and choice in variants:
            return variants[choice]
    return next(iter(variants.values()), None)


def template_used(template: ReplyTemplate, at: datetime | None = None) -> None:
    template_used_by_id(template.tenant_id, template.pk, at)


def template_used_by_id(tenant_id: int, template_id: int, at: datetime | None = None) -> None:
    """Count a use of an approved reply (ids of other tenants or kinds change nothing)."""
    ReplyTemplate.objects.filter(tenant_id=tenant_id, pk=template_id, kind=ReplyTemplate.Kind.REPLY).update(
        use_count=F("use_count") + 1, last_used_at=at or timezone.now()
    )


# --- playbooks ---------------------------------------------------------------------


def _clean_checklist(items: Iterable[Mapping[str, Any]], previous: list[dict]) -> list[dict]:
    known_keys = {item["key"] for item in previous}
    cleaned: list[dict] = []
    seen: set[str] = set()
    for item in items:
        text = str(item.get("text") or "").strip()
        if not text:
            continue
        key = str(item.get("key") or "")
        if key not in known_keys or key in seen:
            key = "c" + secrets.token_hex(4)
        seen.add(key)
        cleaned.append({"key": key, "text": text[:200], "required": bool(item.get("required"))})
    if len(cleaned) > MAX_CHECKLIST_ITEMS:
        raise ValidationError({"checklist": f"Keep the checklist short: at most {MAX_CHECKLIST_ITEMS} items."})
    return cleaned


@transaction.atomic
def playbook_save(
    *,
    tenant: Tenant,
    ticket_type: TicketType,
    actor: Actor,
    owner_team: Team | None = None,
    owner_user: User | None = None,
    checklist: Iterable[Mapping[str, Any]] = (),
    replies: Iterable[int] = (),
    required_fields: Iterable[str] = (),
    escalation_team: Team | None = None,
    escalation_due_minutes: int | None = None,
    escalation_summary: str = "",
    note: str = "",
) -> PlaybookVersion:
    """Save a playbook edit as a new version (tickets keep the version they started with)."""
    if ticket_type.tenant_id != tenant.pk:
        raise ValidationError({"ticket_type": "No such ticket type."})
    errors: dict[str, str] = {}
    for field, team in (("owner_team", owner_team), ("escalation_team", escalation_team)):
        if team is not None and team.tenant_id != tenant.pk:
            errors[field] = "No such team."
    if owner_user is not None and not Membership.objects.filter(tenant=tenant, user=owner_user).exists():
        errors["owner_user"] = "That person is not a member of this workspace."
    required = [f for f in dict.fromkeys(required_fields) if f]
    unknown = [f for f in required if f not in REQUIRED_FIELD_CHOICES]
    if unknown:
        errors["required_fields"] = f"Unknown field: {', '.join(unknown)}."
    reply_ids = [int(r) for r in dict.fromkeys(replies)]
    if len(reply_ids) > MAX_REPLIES:
        errors["replies"] = f"At most {MAX_REPLIES} approved replies per playbook."
    found = set(
        ReplyTemplate.objects.filter(tenant=tenant, pk__in=reply_ids, kind=ReplyTemplate.Kind.REPLY).values_list(
            "pk", flat=True
        )
    )
    if set(reply_ids) - found:
        errors["replies"] = "One of the replies does not exist."
    if escalation_due_minutes is not None and not 0 < escalation_due_minutes <= 60 * 24 * 30:
        errors["escalation_due_minutes"] = "The due-in time must be between 1 minute and 30 days of business time."
    if escalation_team is not None and not escalation_due_minutes:
        errors["escalation_due_minutes"] = "Say how soon the escalation team must answer."
    summary = (escalation_summary or "").strip()
    if summary:
        try:
            rendering.validate(summary)
        except rendering.TemplateProblem as problem:
            errors["escalation_summary"] = str(problem)
    if errors:
        raise ValidationError(errors)
    playbook, _ = Playbook.objects.select_for_update().get_or_create(tenant=tenant, ticket_type=ticket_type)
    previous = playbook.current_version
    number = (previous.number if previous else 0) + 1
    version = PlaybookVersion.objects.create(
        tenant=tenant,
        playbook=playbook,
        number=number,
        owner_team=owner_team,
        owner_user=owner_user,
        checklist=_clean_checklist(checklist, previous.checklist if previous else []),
        replies=[r for r in reply_ids if r in found],
        required_fields=required,
        escalation_team=escalation_team,
        escalation_due_minutes=escalation_due_minutes if escalation_team else None,
        escalation_summary=summary,
        note=(note or "").strip()[:200],
        created_by=actor.user,
    )
    playbook.current_version = version
    playbook.updated_at = timezone.now()
    playbook.save(update_fields=["current_version", "updated_at"])
    audit_record(
        tenant=tenant,
        actor=actor,
        action="playbook.updated" if previous else "playbook.created",
        target=playbook,
        changes={"ticket_type": ticket_type.name, "version": number},
    )
    # Now (this transaction reads its own write) and after commit (a reader in between may
    # have cached the old version).
    cache.delete(_cache_key(tenant.pk))
    transaction.on_commit(lambda: cache.delete(_cache_key(tenant.pk)))
    return version


# --- tickets -----------------------------------------------------------------------


def version_for(ticket: Ticket) -> PlaybookVersion | None:
    """The playbook version a ticket works by (its own, else its type's current one)."""
    version_id = ticket.playbook_version_id or current_version_id(ticket.tenant_id, ticket.ticket_type_id)
    if version_id is None:
        return None
    return (
        PlaybookVersion.objects.filter(tenant_id=ticket.tenant_id, pk=version_id)
        .select_related("owner_team", "owner_user", "escalation_team", "playbook")
        .first()
    )


def ticked_keys(ticket: Ticket) -> dict[str, ChecklistTick]:
    return {
        t.item_key: t
        for t in ChecklistTick.objects.filter(tenant_id=ticket.tenant_id, ticket=ticket).select_related("ticked_by")
    }


@transaction.atomic
def checklist_tick(*, ticket: Ticket, item_key: str, actor: Actor, ticked: bool = True) -> bool:
    """Tick (or untick) a checklist item; the change goes on the ticket's timeline."""
    from tickets.services import _event

    version = version_for(ticket)
    items = {item["key"]: item for item in (version.checklist if version else [])}
    if item_key not in items:
        raise ValidationError({"item": "That checklist item is not in this ticket’s playbook."})
    existing = ChecklistTick.objects.filter(tenant_id=ticket.tenant_id, ticket=ticket, item_key=item_key)
    at = timezone.now()
    if ticked:
        _, created = ChecklistTick.objects.get_or_create(
            tenant_id=ticket.tenant_id,
            ticket=ticket,
            item_key=item_key,
            defaults={"ticked_by": actor.user, "ticked_at": at},
        )
        changed = created
    else:
        changed = existing.delete()[0] > 0
    if changed:
        _event(ticket, actor, "checklist", at, item=items[item_key]["text"], ticked=ticked).save()
    if ticket.playbook_version_id is None and version is not None:
        Ticket.objects.filter(tenant_id=ticket.tenant_id, pk=ticket.pk).update(playbook_version=version)
        ticket.playbook_version = version
    return changed


def solve_blockers(ticket: Ticket, version: PlaybookVersion | None = None) -> list[str]:
    """What must be done before `ticket` may be solved, in words (empty = nothing).

    Pass the ticket's version when the caller has it already (saves its lookup)."""
    version = version or version_for(ticket)
    if version is None:
        return []
    missing: list[str] = []
    required = version.required_items
    if required:
        done = set(
            ChecklistTick.objects.filter(
                tenant_id=ticket.tenant_id, ticket=ticket, item_key__in=[i["key"] for i in required]
            ).values_list("item_key", flat=True)
        )
        missing.extend(f"tick “{item['text']}”" for item in required if item["key"] not in done)
    for field in version.required_fields:
        if field == "order" and not ticket.order_id:
            missing.append("link an order")
        elif field == "assignee" and not ticket.assignee_id:
            missing.append("assign the ticket")
        elif field == "team" and not ticket.team_id:
            missing.append("set a team")
        elif field == "tags" and not TicketTag.objects.filter(tenant_id=ticket.tenant_id, ticket=ticket).exists():
            missing.append("add a tag")
    return missing


def solve_refusal(ticket: Ticket) -> str | None:
    missing = solve_blockers(ticket)
    if not missing:
        return None
    return "Can’t solve yet: " + "; ".join(missing) + " (the ticket type’s playbook requires it)."


def render_reply(
    *, ticket: Ticket, template: ReplyTemplate, agent: User | None = None
) -> tuple[rendering.Rendered, TemplateVariant | None]:
    """An approved reply filled from the ticket and its order, in the customer's language."""
    variant = pick_variant(template, ticket.customer.language, ticket.tenant.default_language)
    if variant is None:
        return rendering.Rendered(text="", missing=["(no text written)"]), None
    context = rendering.ticket_context(ticket, agent=agent)
    return rendering.render(variant.body, context), variant
