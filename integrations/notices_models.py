"""Automated customer notices (DESIGN.md Invariant 4): rules, the notice rows, suppressions.

Imported by integrations/models.py so Django registers them with the integrations app.
Every notice is a row first, unique per (tenant, subject, event, template); a worker sends
it at most once. Every index and unique key leads with `tenant` (Invariant 1).
"""

from __future__ import annotations

import datetime as dt

from django.db import models
from django.db.models import Q
from django.utils.timezone import now

from helpdesk.models import TenantOwnedModel


class NoticeEvent(models.TextChoices):
    ORDER_CONFIRMED = "order_confirmed", "Order confirmed"
    SHIPPED = "shipped", "Shipped (with tracking)"
    OUT_FOR_DELIVERY = "out_for_delivery", "Out for delivery"
    DELIVERED = "delivered", "Delivered"
    DELAY = "delay", "Delay detected"
    REFUND_ISSUED = "refund_issued", "Refund issued"
    RETURN_RECEIVED = "return_received", "Return received"
    CSAT_SURVEY = "csat_survey", "Satisfaction survey after solve"
    DELIVERY_FEEDBACK = "delivery_feedback", "Feedback request after delivery"


class NoticeSettings(TenantOwnedModel):
    """One row per tenant: quiet hours (store time zone), delay threshold, sender."""

    quiet_start = models.TimeField(null=True, blank=True)  # e.g. 21:00; None = no quiet hours
    quiet_end = models.TimeField(null=True, blank=True)  # e.g. 08:00 (may wrap past midnight)
    delay_hours = models.PositiveIntegerField(default=72)  # "no carrier scan for N hours"
    from_name = models.CharField(max_length=100, blank=True)
    from_email = models.EmailField(blank=True)
    reply_to = models.EmailField(blank=True)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant"], name="noticesettings_one_per_tenant")]

    @property
    def has_quiet_hours(self) -> bool:
        return self.quiet_start is not None and self.quiet_end is not None and self.quiet_start != self.quiet_end

    def quiet_window(self) -> tuple[dt.time, dt.time] | None:
        if self.quiet_start is None or self.quiet_end is None or self.quiet_start == self.quiet_end:
            return None
        return self.quiet_start, self.quiet_end


class NoticeRule(TenantOwnedModel):
    """Which notice template an event sends; at most one rule per event."""

    event = models.CharField(max_length=30, choices=NoticeEvent.choices)
    template = models.ForeignKey(
        "playbooks.ReplyTemplate", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    enabled = models.BooleanField(default=False)
    delay_minutes = models.PositiveIntegerField(default=0)  # send this long after the event
    updated_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "event"], name="noticerule_one_per_event")]


class Suppression(TenantOwnedModel):
    """An address no notice goes to any more (stored lower-cased)."""

    class Reason(models.TextChoices):
        HARD_BOUNCE = "hard_bounce", "Hard bounce"
        OPT_OUT = "opt_out", "Opted out"
        COMPLAINT = "complaint", "Spam complaint"

    email = models.EmailField()
    reason = models.CharField(max_length=20, choices=Reason.choices)
    detail = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "email"], name="suppression_unique_email")]


class Notice(TenantOwnedModel):
    """One outbound notice: written first (dedupe key), then sent by a worker."""

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        HELD = "held", "Held"
        SCHEDULED = "scheduled", "Scheduled"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        SUPPRESSED = "suppressed", "Suppressed"

    subject_key = models.CharField(max_length=60)  # what it is about: "fulfillment:12", "ticket:7"
    event = models.CharField(max_length=30, choices=NoticeEvent.choices)
    template = models.ForeignKey("playbooks.ReplyTemplate", on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=12, choices=State.choices, default=State.QUEUED)
    recipient = models.EmailField(blank=True)
    language = models.CharField(max_length=8, blank=True)
    subject = models.CharField(max_length=250, blank=True)
    body = models.TextField(blank=True)
    hold_reason = models.CharField(max_length=500, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=1000, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    message_id = models.CharField(max_length=250, blank=True)
    customer = models.ForeignKey("tickets.Customer", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    order = models.ForeignKey("integrations.Order", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    ticket = models.ForeignKey("tickets.Ticket", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=now)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "subject_key", "event", "template"], name="notice_unique_dedupe_key"
            )
        ]
        indexes = [
            # The sweeper: queued/scheduled rows whose time has come, per tenant.
            models.Index(
                fields=["tenant", "next_attempt_at"],
                name="notice_due",
                condition=Q(status__in=["queued", "scheduled", "sending"]),
            ),
            models.Index(fields=["tenant", "-created_at"], name="notice_recent"),
            models.Index(fields=["tenant", "status", "-created_at"], name="notice_status"),
            models.Index(fields=["tenant", "ticket", "-created_at"], name="notice_ticket"),
            models.Index(fields=["tenant", "customer", "-created_at"], name="notice_customer"),
            models.Index(fields=["tenant", "recipient"], name="notice_recipient"),
        ]

    def __str__(self) -> str:
        return f"{self.get_event_display()} → {self.recipient or '?'}"


class FulfillmentDelay(TenantOwnedModel):
    """A shipment found late, recorded once: the delay notice, timeline and tag fan out from it."""

    class Reason(models.TextChoices):
        NO_SCAN = "no_scan", "No carrier scan"
        EXCEPTION = "exception", "Carrier exception"
        OVERDUE = "overdue", "Estimated delivery passed"

    fulfillment = models.ForeignKey("integrations.Fulfillment", on_delete=models.CASCADE, related_name="+")
    order = models.ForeignKey("integrations.Order", on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=20, choices=Reason.choices)
    detected_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "fulfillment"], name="fulfillmentdelay_once")]
