"""Outbound customer notices (DESIGN.md Invariant 4): enqueue, send, sweep, suppress.

A notice is a row before it is anything else. `notice_enqueue` (one) and
`notices_enqueue_many` (a fan-out) INSERT … ON CONFLICT DO NOTHING on the dedupe key
(tenant, subject, event, template), so the same event delivered three times, a retried
webhook or an overlapping sweep writes one row. The template is rendered then, in the
customer's language (store default as fallback), through the playbooks sandbox; the row
says what happens next:

- held: a variable had no value (the reason names them), the template has no text in any
  language, or there is no address. A lead releases it from the send log once fixed.
- suppressed: the address hard-bounced, opted out or complained.
- scheduled: the rule delays it, or it falls in the store's quiet hours; `next_attempt_at`
  is when it may go.
- queued: a send task is enqueued after commit.

Sending (`notices_send`) claims rows with one conditional UPDATE (queued, or scheduled and
due → sending), so duplicate messages send nothing twice; it logs the outcome on the row:
sent (with the Message-ID), queued again with exponential backoff for transient failures
(connection refused, SMTP 4xx), failed after MAX_ATTEMPTS, suppressed on a hard bounce
(SMTP 5xx refusal of the recipient, which also records a Suppression). A row left in
`sending` by a crashed worker is marked failed by the sweep, never sent again: at most one
send per key. `notices_sweep` re-enqueues due queued/scheduled rows, so a lost Celery
message never loses a notice.
"""

from __future__ import annotations

import contextlib
import email.policy
import logging
import smtplib
import uuid
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from email.utils import formataddr
from functools import partial
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, mailers
from django.db import connection as db_connection
from django.db import transaction
from django.db.models import Prefetch, Q
from django.utils import timezone

from helpdesk.models import Tenant
from helpdesk.services import Actor, audit_record
from helpdesk.tenancy import tenants_with_due
from integrations.models import Fulfillment, Order, Refund, Return
from integrations.notices_models import Notice, NoticeEvent, NoticeRule, NoticeSettings, Suppression
from playbooks import rendering
from playbooks.models import ReplyTemplate, TemplateVariant
from playbooks.services import pick_variant
from tickets.models import Customer, Ticket

logger = logging.getLogger(__name__)

State = Notice.State

MAX_ATTEMPTS = 10
RETRY_BASE_SECONDS = 10
RETRY_MAX_SECONDS = 60 * 60
# A queued row belongs to its Celery message; the sweeper steps in after this.
QUEUED_GRACE = timedelta(minutes=2)
# A swept row is not swept again for this long.
SWEEP_LEASE = timedelta(minutes=5)
# A row still `sending` after this was interrupted mid-send: failed, never resent.
SENDING_LEASE = timedelta(minutes=10)
SWEEP_BATCH = 2000
SEND_BATCH = 100
SETTLE_BATCH = 50  # sent notices recorded per UPDATE
INSERT_CHUNK = 500
UNSUBSCRIBE_SALT = "storedesk.notices.unsubscribe"


# --- Pure helpers ---------------------------------------------------------------------


def retry_delay(attempts: int) -> timedelta:
    """Backoff after the `attempts`-th failure: 10 s, 20 s, 40 s, … capped at an hour."""
    return timedelta(seconds=min(RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0), RETRY_MAX_SECONDS))


def quiet_until(at: datetime, tz: zoneinfo.ZoneInfo, window: tuple[time, time] | None) -> datetime | None:
    """When quiet hours that contain `at` end (aware, UTC), or None when `at` is not quiet.

    The window is wall-clock time in the store's zone and may wrap past midnight (21:00 →
    08:00). The end is resolved on the local calendar, so it stays 08:00 across DST changes.
    """
    if window is None:
        return None
    start, end = window
    local = at.astimezone(tz)
    clock = local.time().replace(tzinfo=None)
    if start < end:
        inside = start <= clock < end
        end_day = local.date()
    else:  # wraps midnight
        inside = clock >= start or clock < end
        end_day = local.date() + timedelta(days=1) if clock >= start else local.date()
    if not inside:
        return None
    # fold=0 picks the first of two repeated wall-clock times; a skipped one moves forward.
    ends = datetime.combine(end_day, end, tzinfo=tz)
    return ends.astimezone(zoneinfo.ZoneInfo("UTC"))


def classify_send_error(exc: BaseException, recipient: str) -> tuple[str, str]:
    """("hard" | "permanent" | "transient", message) for a failed send.

    hard: the server refused the recipient for good (5xx) → suppress the address;
    permanent: it refused the message for good (5xx on DATA/sender) → fail, don't retry;
    transient: anything else — connection refused, timeouts, 4xx — retry with backoff.
    """
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, message = next(iter(exc.recipients.values()), (0, b""))
        text = message.decode(errors="replace") if isinstance(message, bytes) else str(message)
        if 500 <= code < 600:
            return "hard", f"{code} {text}".strip()
        return "transient", f"{code} {text}".strip()
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        kind = "permanent" if 500 <= exc.smtp_code < 600 else "transient"
        return kind, f"{exc.smtp_code} {text}".strip()
    return "transient", f"{type(exc).__name__}: {exc}"


def subject_key(kind: str, pk: int) -> str:
    return f"{kind}:{pk}"


# --- Opt-out links ----------------------------------------------------------------------


def unsubscribe_token(tenant_id: int, email: str) -> str:
    return signing.dumps({"t": tenant_id, "e": email.lower()}, salt=UNSUBSCRIBE_SALT, compress=True)


def read_unsubscribe_token(token: str) -> tuple[int, str] | None:
    """(tenant id, email) of a genuine token; None for a tampered one. Opt-outs never expire."""
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("t"), int) or not isinstance(data.get("e"), str):
        return None
    return data["t"], data["e"]


def unsubscribe_url(tenant_id: int, email: str) -> str:
    return f"{settings.BASE_URL.rstrip('/')}/notices/unsubscribe/{unsubscribe_token(tenant_id, email)}/"


# --- Settings and rules -------------------------------------------------------------------


def settings_for(tenant_id: int) -> NoticeSettings:
    """The tenant's notice settings (defaults when never saved; not written)."""
    return NoticeSettings.objects.filter(tenant_id=tenant_id).first() or NoticeSettings(tenant_id=tenant_id)


def tenant_zone(tenant: Tenant) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(tenant.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


@transaction.atomic
def notice_settings_update(
    *,
    tenant: Tenant,
    actor: Actor,
    quiet_start: time | None,
    quiet_end: time | None,
    delay_hours: int,
    from_name: str = "",
    from_email: str = "",
    reply_to: str = "",
) -> NoticeSettings:
    """Save quiet hours, the no-scan delay threshold and the sender."""
    errors: dict[str, str] = {}
    if (quiet_start is None) != (quiet_end is None):
        errors["quiet_end" if quiet_end is None else "quiet_start"] = "Give both ends of quiet hours, or neither."
    elif quiet_start is not None and quiet_start == quiet_end:
        errors["quiet_end"] = "Quiet hours must end at a different time than they start."
    if not 1 <= delay_hours <= 24 * 30:
        errors["delay_hours"] = "Between 1 hour and 30 days."
    if from_email and not from_name.strip():
        from_name = tenant.name
    if errors:
        raise ValidationError(errors)
    row, _ = NoticeSettings.objects.select_for_update().get_or_create(tenant=tenant)
    before = {
        "quiet": [str(row.quiet_start or ""), str(row.quiet_end or "")],
        "delay_hours": row.delay_hours,
        "from": [row.from_name, row.from_email, row.reply_to],
    }
    row.quiet_start, row.quiet_end, row.delay_hours = quiet_start, quiet_end, delay_hours
    row.from_name, row.from_email, row.reply_to = from_name.strip()[:100], from_email.strip(), reply_to.strip()
    row.updated_at = timezone.now()
    row.save()
    after = {
        "quiet": [str(row.quiet_start or ""), str(row.quiet_end or "")],
        "delay_hours": row.delay_hours,
        "from": [row.from_name, row.from_email, row.reply_to],
    }
    changes = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
    if changes:
        audit_record(tenant=tenant, actor=actor, action="notices.settings", target=None, changes=changes)
    return row


@transaction.atomic
def notice_rule_save(
    *,
    tenant: Tenant,
    actor: Actor,
    event: str,
    template: ReplyTemplate | None,
    enabled: bool,
    delay_minutes: int = 0,
) -> NoticeRule:
    """Set which notice template an event sends, whether it is on, and its delay."""
    errors: dict[str, str] = {}
    if event not in NoticeEvent.values:
        raise ValidationError({"event": "No such notice event."})
    if template is not None and (template.tenant_id != tenant.pk or template.kind != ReplyTemplate.Kind.NOTICE):
        errors["template"] = "Choose one of this store’s notice templates."
    if enabled and template is None:
        errors["template"] = "Choose the notice template this event sends before turning it on."
    if not 0 <= delay_minutes <= 60 * 24 * 60:
        errors["delay_minutes"] = "Between 0 minutes and 60 days."
    if errors:
        raise ValidationError(errors)
    rule, _ = NoticeRule.objects.select_for_update().get_or_create(tenant=tenant, event=event)
    before = (rule.template_id, rule.enabled, rule.delay_minutes)
    rule.template, rule.enabled, rule.delay_minutes = template, enabled, delay_minutes
    rule.updated_at = timezone.now()
    rule.save()
    if before != (rule.template_id, rule.enabled, rule.delay_minutes):
        audit_record(
            tenant=tenant,
            actor=actor,
            action="notices.rule",
            target=rule,
            changes={
                "event": event,
                "template": template.name if template else None,
                "enabled": enabled,
                "delay_minutes": delay_minutes,
            },
        )
    return rule


def active_rules(tenant_id: int, events: Iterable[str] | None = None) -> dict[str, NoticeRule]:
    """{event: rule} of the enabled rules with a template, variants prefetched."""
    rules = NoticeRule.objects.filter(tenant_id=tenant_id, enabled=True, template__isnull=False).select_related(
        "template"
    )
    if events is not None:
        rules = rules.filter(event__in=list(events))
    found = {}
    for rule in rules.prefetch_related(
        Prefetch("template__variants", queryset=TemplateVariant.objects.filter(tenant_id=tenant_id))
    ):
        if rule.template is not None and rule.template.is_active:
            found[rule.event] = rule
    return found


# --- Suppression ----------------------------------------------------------------------


def suppression_add(*, tenant_id: int, email: str, reason: str, detail: str = "") -> bool:
    """Record that notices no longer go to `email`; True when it is new."""
    email = (email or "").strip().lower()
    if not email or reason not in Suppression.Reason.values:
        return False
    rows = _insert_returning(
        Suppression,
        [{"tenant": tenant_id, "email": email, "reason": reason, "detail": detail[:300], "created_at": timezone.now()}],
        conflict=("tenant", "email"),
    )
    return bool(rows)


def suppressed_among(tenant_id: int, emails: Iterable[str]) -> set[str]:
    wanted = {e.lower() for e in emails if e}
    if not wanted:
        return set()
    return set(Suppression.objects.filter(tenant_id=tenant_id, email__in=wanted).values_list("email", flat=True))


def unsubscribe(token: str) -> tuple[int, str] | None:
    """Record an opt-out from a signed link; (tenant id, email), or None for a bad token."""
    found = read_unsubscribe_token(token)
    if found is None:
        return None
    tenant_id, email = found
    if not Tenant.objects.filter(pk=tenant_id).exists():
        return None
    suppression_add(tenant_id=tenant_id, email=email, reason=Suppression.Reason.OPT_OUT, detail="unsubscribe link")
    return tenant_id, email


# --- Enqueue ------------------------------------------------------------------------------


@dataclass
class NoticeRequest:
    """One event about one thing, to be turned into a notice row."""

    event: str
    subject_key: str
    customer: Customer | None = None
    order: Order | None = None
    ticket: Ticket | None = None
    fulfillment: Fulfillment | None = None
    refund: Refund | None = None
    return_: Return | None = None
    links: dict[str, str] = field(default_factory=dict)


def _date(value: datetime | None, tz: zoneinfo.ZoneInfo) -> str:
    return timezone.localtime(value, tz).strftime("%-d %b %Y") if value else ""


def _context(tenant: Tenant, tz: zoneinfo.ZoneInfo, req: NoticeRequest, recipient: str) -> dict[str, Any]:
    context: dict[str, Any] = {"store": rendering.store_context(tenant)}
    customer = req.customer or (req.ticket.customer if req.ticket is not None else None)
    context["customer"] = rendering.customer_context(customer)
    if not context["customer"] and req.order is not None:
        context["customer"] = {"email": req.order.email, "name": req.order.shipping_address.get("name", "")}
    context.update(rendering.order_context(req.order, tz))
    if req.fulfillment is not None:
        f = req.fulfillment
        context["fulfillment"] = {
            "carrier": f.carrier,
            "tracking_number": f.tracking_number,
            "tracking_url": f.tracking_url,
            "status": f.get_status_display() if f.status != "unknown" else f.shipment_status,
            "shipped_at": _date(f.shipped_at, tz),
            "expected_delivery": _date(f.estimated_delivery_at, tz),
            "delivered_at": _date(f.delivered_at, tz),
        }
    if req.refund is not None:
        r = req.refund
        context["refund"] = {
            "amount": f"{r.amount:,.2f}",
            "currency": r.currency or (req.order.currency if req.order else ""),
            "reason": r.note,
            "processed_at": _date(r.processed_at, tz),
        }
    if req.ticket is not None:
        t = req.ticket
        context["ticket"] = {
            "number": t.number,
            "subject": t.subject,
            "status": t.get_status_display(),
            "priority": t.get_priority_display(),
            "channel": t.get_channel_display(),
        }
    links = {"unsubscribe": unsubscribe_url(tenant.pk, recipient) if recipient else ""}
    tracking = (req.fulfillment.tracking_url if req.fulfillment else "") or context.get("fulfillment", {}).get(
        "tracking_url", ""
    )
    if tracking:
        links["tracking"] = tracking
    context["links"] = {**links, **req.links}
    return context


def _recipient(req: NoticeRequest) -> str:
    customer = req.customer or (req.ticket.customer if req.ticket is not None else None)
    email = (customer.email if customer is not None else "") or (req.order.email if req.order is not None else "")
    return (email or "").strip().lower()


def _build_row(
    tenant: Tenant,
    tz: zoneinfo.ZoneInfo,
    prefs: NoticeSettings,
    rule: NoticeRule,
    req: NoticeRequest,
    suppressed: set[str],
    now: datetime,
) -> dict[str, Any]:
    """The values of one notice row: rendered text and its status (see the module doc)."""
    template = rule.template
    if template is None:  # active_rules only returns rules with a template
        raise ValueError("a notice rule without a template")
    recipient = _recipient(req)
    customer = req.customer or (req.ticket.customer if req.ticket is not None else None)
    language = (customer.language if customer is not None else "") or tenant.default_language
    row: dict[str, Any] = {
        "tenant": tenant.pk,
        "subject_key": req.subject_key[:60],
        "event": req.event,
        "template": template.pk,
        "status": State.QUEUED,
        "recipient": recipient[:254],
        "language": "",
        "subject": "",
        "body": "",
        "hold_reason": "",
        "attempts": 0,
        "next_attempt_at": now + QUEUED_GRACE,
        "last_error": "",
        "sent_at": None,
        "message_id": "",
        "customer": customer.pk if customer is not None else None,
        "order": req.order.pk if req.order is not None else None,
        "ticket": req.ticket.pk if req.ticket is not None else None,
        "created_at": now,
        "updated_at": now,
    }

    def hold(reason: str) -> dict[str, Any]:
        row.update(status=State.HELD, hold_reason=reason[:500], next_attempt_at=None)
        return row

    variant = pick_variant(template, language, tenant.default_language)
    if variant is None:
        return hold(f"The template “{template.name}” has no text in any language.")
    row["language"] = variant.language
    try:
        subject = rendering.render(variant.subject, _context(tenant, tz, req, recipient))
        body = rendering.render(variant.body, _context(tenant, tz, req, recipient))
    except rendering.TemplateProblem as problem:
        return hold(f"The template cannot be rendered: {problem}")
    row["subject"], row["body"] = " ".join(subject.text.split())[:250], body.text
    missing = list(dict.fromkeys([*subject.missing, *body.missing]))
    if missing:
        return hold(f"No value for {', '.join(missing)}.")
    if not recipient:
        return hold("The customer has no email address.")
    if recipient in suppressed:
        row.update(status=State.SUPPRESSED, next_attempt_at=None, hold_reason="The address is suppressed.")
        return row
    due = now + timedelta(minutes=rule.delay_minutes)
    quiet_end = quiet_until(due, tz, prefs.quiet_window())
    if quiet_end is not None:
        row.update(status=State.SCHEDULED, next_attempt_at=quiet_end)
    elif rule.delay_minutes:
        row.update(status=State.SCHEDULED, next_attempt_at=due)
    return row


def notices_enqueue_many(
    *,
    tenant: Tenant,
    requests: Sequence[NoticeRequest],
    now: datetime | None = None,
    rules: dict[str, NoticeRule] | None = None,
) -> list[int]:
    """Write a notice row per request whose event has an enabled rule; ids of the rows that
    are new (duplicates of an existing key write nothing). Queued rows are sent after commit.

    Callers pass related rows already loaded (order with lines, fulfillments, refunds and
    returns prefetched; customer), so a fan-out costs a few queries per chunk, not per row,
    and may pass the tenant's active rules (`active_rules`) when they read them already.
    """
    if not requests:
        return []
    now = now or timezone.now()
    if rules is None:
        rules = active_rules(tenant.pk, {r.event for r in requests})
    wanted = [r for r in requests if r.event in rules]
    if not wanted:
        return []
    prefs = settings_for(tenant.pk)
    tz = tenant_zone(tenant)
    new_ids: list[int] = []
    queued: list[int] = []
    with transaction.atomic():
        for start in range(0, len(wanted), INSERT_CHUNK):
            chunk = wanted[start : start + INSERT_CHUNK]
            suppressed = suppressed_among(tenant.pk, (_recipient(r) for r in chunk))
            rows = [_build_row(tenant, tz, prefs, rules[r.event], r, suppressed, now) for r in chunk]
            for pk, status in _insert_returning(
                Notice, rows, conflict=("tenant", "subject_key", "event", "template"), returning=("id", "status")
            ):
                new_ids.append(pk)
                if status == State.QUEUED:
                    queued.append(pk)
        if queued:
            transaction.on_commit(partial(_enqueue_sends, tenant.pk, queued))
    return new_ids


def notice_enqueue(
    *,
    tenant: Tenant,
    event: str,
    subject: str,
    customer: Customer | None = None,
    order: Order | None = None,
    ticket: Ticket | None = None,
    fulfillment: Fulfillment | None = None,
    refund: Refund | None = None,
    links: dict[str, str] | None = None,
    now: datetime | None = None,
) -> Notice | None:
    """Write the notice for one event (see the module doc); the row, or None when the event
    has no enabled rule. A duplicate returns the row already there, unchanged."""
    req = NoticeRequest(
        event=event,
        subject_key=subject,
        customer=customer,
        order=order,
        ticket=ticket,
        fulfillment=fulfillment,
        refund=refund,
        links=links or {},
    )
    rule = active_rules(tenant.pk, [event]).get(event)
    if rule is None:
        return None
    notices_enqueue_many(tenant=tenant, requests=[req], now=now)
    return Notice.objects.filter(
        tenant=tenant, subject_key=subject[:60], event=event, template_id=rule.template_id
    ).first()


def _enqueue_sends(tenant_id: int, ids: list[int], countdown: float | None = None) -> None:
    """One send task per SEND_BATCH ids. A broker outage is logged: the sweeper enqueues them."""
    from integrations.notices_tasks import send_notices

    for start in range(0, len(ids), SEND_BATCH):
        batch = ids[start : start + SEND_BATCH]
        try:
            if countdown:
                send_notices.apply_async((tenant_id, batch), countdown=countdown)
            else:
                send_notices.delay(tenant_id, batch)
        except Exception:
            logger.exception("could not enqueue notices %s; the sweeper will", batch[:5])


# --- Send ---------------------------------------------------------------------------------


def _claim(tenant_id: int, ids: Sequence[int], now: datetime) -> list[int]:
    """sending ← queued (any time) or scheduled (when due); the row count is the claim."""
    ids = [int(pk) for pk in ids]
    if not ids:
        return []
    with db_connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Notice._meta.db_table} SET status = %s, attempts = attempts + 1, "  # noqa: S608
            "next_attempt_at = %s, updated_at = %s "
            f"WHERE tenant_id = %s AND id IN ({', '.join(['%s'] * len(ids))}) AND "
            "(status = %s OR (status = %s AND next_attempt_at <= %s)) RETURNING id",
            [State.SENDING, now + SENDING_LEASE, now, tenant_id, *ids, State.QUEUED, State.SCHEDULED, now],
        )
        return [row[0] for row in cursor.fetchall()]


def _settle(notice: Notice, **values: Any) -> None:
    values["updated_at"] = timezone.now()
    Notice.objects.filter(tenant_id=notice.tenant_id, pk=notice.pk, status=State.SENDING).update(**values)


def _settle_sent(sent: list[Notice]) -> None:
    """Mark these notices sent: one UPDATE for what they share, one for their Message-IDs."""
    if not sent:
        return
    now = timezone.now()
    ids = [notice.pk for notice in sent]
    Notice.objects.filter(tenant_id=sent[0].tenant_id, pk__in=ids).update(
        status=State.SENT, sent_at=now, next_attempt_at=None, last_error="", updated_at=now
    )
    for notice in sent:
        notice.message_id = notice.message_id[:250]
    Notice.objects.bulk_update(sent, ["message_id"])
    sent.clear()


class _NoticeEmail(EmailMessage):
    def message(self, *, policy: Any = None) -> Any:
        # RFC 5322 allows 998-character lines; at 78 the List-Unsubscribe URL (one long token)
        # would be RFC 2047-encoded, which mail clients do not decode in that header.
        return super().message(policy=(policy or email.policy.default).clone(max_line_length=998))


def _message(notice: Notice, prefs: NoticeSettings, tenant: Tenant) -> EmailMessage:
    url = unsubscribe_url(tenant.pk, notice.recipient)
    body = notice.body
    if url not in body:
        body += f"\n\n--\nYou get this email about your order with {tenant.name}. Unsubscribe: {url}\n"
    sender = settings.DEFAULT_FROM_EMAIL
    if prefs.from_email:
        sender = formataddr((prefs.from_name or tenant.name, prefs.from_email))
    domain = (prefs.from_email or "storedesk.local").rsplit("@", 1)[-1]
    notice.message_id = f"<notice.{notice.pk}.{uuid.uuid4().hex[:12]}@{domain}>"
    return _NoticeEmail(
        subject=notice.subject,
        body=body,
        from_email=sender,
        to=[notice.recipient],
        reply_to=[prefs.reply_to] if prefs.reply_to else None,
        headers={
            "Message-ID": notice.message_id,
            "List-Unsubscribe": f"<{url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "Auto-Submitted": "auto-generated",
            "X-Storedesk-Notice": f"{notice.event}:{notice.pk}",
        },
    )


def notices_send(*, tenant: Tenant, notice_ids: Sequence[int], now: datetime | None = None) -> dict[str, int]:
    """Send the given notices that are ready, over one SMTP connection; counts per outcome.

    Safe to call any number of times with the same ids: only the claim sends.
    """
    now = now or timezone.now()
    counts = dict.fromkeys(("sent", "retrying", "failed", "suppressed", "scheduled"), 0)
    claimed = _claim(tenant.pk, notice_ids, now)
    if not claimed:
        return counts
    notices = list(Notice.objects.filter(tenant=tenant, pk__in=claimed).order_by("pk"))
    prefs = settings_for(tenant.pk)
    tz = tenant_zone(tenant)
    suppressed = suppressed_among(tenant.pk, (n.recipient for n in notices))
    mailer = mailers.default
    retry_ids: list[tuple[int, float]] = []
    sent: list[Notice] = []
    try:
        # Opened here, the connection serves the whole batch: send_messages() closes only a
        # connection it opened itself, which would mean one SMTP session per email.
        with contextlib.suppress(Exception):  # unreachable server: each send reports it below
            mailer.open()
        for notice in notices:
            if notice.recipient in suppressed:
                _settle(notice, status=State.SUPPRESSED, next_attempt_at=None, hold_reason="The address is suppressed.")
                counts["suppressed"] += 1
                continue
            quiet_end = quiet_until(now, tz, prefs.quiet_window())
            if quiet_end is not None:
                # Not an attempt: give the claim's count back.
                _settle(notice, status=State.SCHEDULED, next_attempt_at=quiet_end, attempts=notice.attempts - 1)
                counts["scheduled"] += 1
                continue
            try:
                message = _message(notice, prefs, tenant)
                mailer.send_messages([message])
            except Exception as exc:
                kind, text = classify_send_error(exc, notice.recipient)
                mailer.close()  # a fresh session for the next message
                with contextlib.suppress(Exception):
                    mailer.open()
                if kind == "hard":
                    suppression_add(
                        tenant_id=tenant.pk,
                        email=notice.recipient,
                        reason=Suppression.Reason.HARD_BOUNCE,
                        detail=text,
                    )
                    suppressed.add(notice.recipient)
                    _settle(notice, status=State.SUPPRESSED, next_attempt_at=None, last_error=text[:1000])
                    counts["suppressed"] += 1
                elif kind == "permanent" or notice.attempts >= MAX_ATTEMPTS:
                    reason = text if kind == "permanent" else f"Gave up after {notice.attempts} attempts. {text}"
                    _settle(notice, status=State.FAILED, next_attempt_at=None, last_error=reason[:1000])
                    counts["failed"] += 1
                else:
                    delay = retry_delay(notice.attempts)
                    _settle(notice, status=State.QUEUED, next_attempt_at=timezone.now() + delay, last_error=text[:1000])
                    retry_ids.append((notice.pk, delay.total_seconds()))
                    counts["retrying"] += 1
                logger.warning("notice %s: %s (%s)", notice.pk, kind, text)
                continue
            sent.append(notice)
            counts["sent"] += 1
            if len(sent) >= SETTLE_BATCH:
                _settle_sent(sent)
    finally:
        mailer.close()
        # Sent rows are recorded in batches (one UPDATE, one commit, instead of one per
        # email). A crash before this leaves them `sending`, which the sweep fails and never
        # resends: at most one send per key either way.
        _settle_sent(sent)
    # The retry is a row with a due time; the countdown message is only the fast path.
    for pk, seconds in retry_ids:
        transaction.on_commit(partial(_enqueue_sends, tenant.pk, [pk], countdown=seconds))
    return counts


# --- Sweep, release, resend ----------------------------------------------------------------


def notices_sweep(*, tenant: Tenant, now: datetime | None = None) -> list[int]:
    """Re-enqueue queued/scheduled notices whose time has come (leased for SWEEP_LEASE), and
    fail rows stuck in `sending` (their outcome is unknown; resending could double-send)."""
    now = now or timezone.now()
    with transaction.atomic():
        Notice.objects.filter(tenant=tenant, status=State.SENDING, next_attempt_at__lte=now).update(
            status=State.FAILED,
            next_attempt_at=None,
            last_error="Interrupted while sending; not retried so it cannot go twice. Resend it if needed.",
            updated_at=now,
        )
        due = list(
            Notice.objects.filter(tenant=tenant, status__in=[State.QUEUED, State.SCHEDULED], next_attempt_at__lte=now)
            .order_by("next_attempt_at")
            .values_list("pk", flat=True)[:SWEEP_BATCH]
        )
        if due:
            # A scheduled row stays scheduled (its due time passed, so it is claimable).
            Notice.objects.filter(tenant=tenant, pk__in=due, status=State.QUEUED).update(
                next_attempt_at=now + SWEEP_LEASE
            )
            transaction.on_commit(partial(_enqueue_sends, tenant.pk, due))
    return due


def tenants_with_due_notices(now: datetime | None = None) -> list[int]:
    """Tenants with queued, scheduled or stuck-sending notices due (probes on notice_due)."""
    now = now or timezone.now()
    return tenants_with_due(
        Notice, Q(status__in=[State.QUEUED, State.SCHEDULED, State.SENDING], next_attempt_at__lte=now)
    )


@transaction.atomic
def notice_release(*, notice: Notice, actor: Actor) -> Notice:
    """Send a held, failed or suppressed notice again: re-rendered from the current data and
    template (so a fixed template or filled-in order releases it), then queued."""
    locked = Notice.objects.select_for_update().select_related("template").get(tenant_id=notice.tenant_id, pk=notice.pk)
    if locked.status not in (State.HELD, State.FAILED, State.SUPPRESSED):
        raise ValidationError({"status": "Only held, failed or suppressed notices can be sent again."})
    tenant = Tenant.objects.get(pk=locked.tenant_id)
    rule = NoticeRule(tenant_id=tenant.pk, event=locked.event, template=locked.template, delay_minutes=0)
    req = _request_for(locked)
    recipient = _recipient(req)
    if locked.status == State.SUPPRESSED and recipient:
        # A lead overrides a suppression deliberately: the address is cleared first.
        Suppression.objects.filter(tenant=tenant, email=recipient).delete()
    now = timezone.now()
    values = _build_row(tenant, tenant_zone(tenant), settings_for(tenant.pk), rule, req, set(), now)
    if values["status"] == State.HELD:
        raise ValidationError({"status": values["hold_reason"]})
    for name in ("status", "recipient", "language", "subject", "body", "next_attempt_at"):
        setattr(locked, name, values[name])
    locked.hold_reason, locked.last_error, locked.attempts, locked.updated_at = "", "", 0, now
    locked.save()
    audit_record(
        tenant=tenant,
        actor=actor,
        action="notices.release",
        target=locked,
        changes={"event": locked.event, "recipient": locked.recipient, "was": notice.status},
    )
    if locked.status == State.QUEUED:
        transaction.on_commit(partial(_enqueue_sends, tenant.pk, [locked.pk]))
    notice.refresh_from_db()
    return notice


def _request_for(notice: Notice) -> NoticeRequest:
    """Rebuild the event's request from the row's links and subject key."""
    tenant_id = notice.tenant_id
    order = None
    if notice.order_id:
        order = (
            Order.objects.filter(tenant_id=tenant_id, pk=notice.order_id)
            .prefetch_related("lines", "fulfillments", "refunds", "returns")
            .first()
        )
    kind, _, raw = notice.subject_key.partition(":")
    pk = int(raw) if raw.isdigit() else 0
    req = NoticeRequest(event=notice.event, subject_key=notice.subject_key, order=order)
    if notice.customer_id:
        req.customer = Customer.objects.filter(tenant_id=tenant_id, pk=notice.customer_id).first()
    if notice.ticket_id:
        req.ticket = Ticket.objects.filter(tenant_id=tenant_id, pk=notice.ticket_id).select_related("customer").first()
        if req.ticket is not None and notice.event == NoticeEvent.CSAT_SURVEY:
            from tickets.csat import survey_url

            req.links["survey"] = survey_url(tenant_id, req.ticket.pk)
    if kind == "fulfillment":
        req.fulfillment = Fulfillment.objects.filter(tenant_id=tenant_id, pk=pk).first()
    elif kind == "refund":
        req.refund = Refund.objects.filter(tenant_id=tenant_id, pk=pk).first()
    return req


# --- Readers --------------------------------------------------------------------------------


def notice_log(
    *, tenant: Tenant, status: str = "", event: str = "", ticket_id: int | None = None, customer_id: int | None = None
):
    """The send log, newest first, filtered (a queryset the pages slice)."""
    rows = Notice.objects.filter(tenant=tenant).select_related("template")
    if status in State.values:
        rows = rows.filter(status=status)
    if event in NoticeEvent.values:
        rows = rows.filter(event=event)
    if ticket_id is not None:
        rows = rows.filter(Q(ticket_id=ticket_id))
    if customer_id is not None:
        rows = rows.filter(customer_id=customer_id)
    return rows.order_by("-created_at", "-id")


# --- SQL ------------------------------------------------------------------------------------


def _insert_returning(
    model: Any,
    rows: list[dict[str, Any]],
    conflict: tuple[str, ...],
    returning: tuple[str, ...] = ("id",),
) -> list[Any]:
    """INSERT rows … ON CONFLICT (conflict) DO NOTHING RETURNING …; only new rows come back.

    Raw SQL because `bulk_create(ignore_conflicts=True)` cannot say which rows were new, and
    only new queued rows may enqueue a send. Names come from the model's meta, never input.
    """
    if not rows:
        return []
    meta = model._meta
    quote = db_connection.ops.quote_name
    fields = [f for f in meta.concrete_fields if f.name in rows[0]]
    columns = ", ".join(quote(f.column) for f in fields)
    by_name = {f.name: f.column for f in meta.concrete_fields}
    target = ", ".join(quote(by_name[n]) for n in conflict)
    back = ", ".join(quote(by_name.get(n, n)) for n in returning)
    one = "(" + ", ".join(["%s"] * len(fields)) + ")"
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES {', '.join([one] * len(rows))} "  # noqa: S608
        f"ON CONFLICT ({target}) DO NOTHING RETURNING {back}"
    )
    params: list[Any] = []
    for row in rows:
        for f in fields:
            value = row[f.name]
            params.append(value if f.is_relation else f.get_db_prep_save(value, db_connection))
    with db_connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchall()
    return [r[0] for r in found] if len(returning) == 1 else [tuple(r) for r in found]
