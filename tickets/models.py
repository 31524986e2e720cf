"""Customers, tickets, messages, the timeline, and SLA data (schedules, policies, clocks)."""

from __future__ import annotations

from datetime import UTC, datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.timezone import now

from helpdesk.models import TenantOwnedModel

# Sort key for tickets with no running SLA clock: after every real due time.
NO_DUE = datetime(9999, 1, 1, tzinfo=UTC)


class Status(models.TextChoices):
    NEW = "new", "New"
    OPEN = "open", "Open"
    PENDING = "pending", "Pending on customer"
    ON_HOLD = "on_hold", "On hold"
    SOLVED = "solved", "Solved"
    CLOSED = "closed", "Closed"


# Statuses where the next move is ours (queue views "open").
OPEN_STATUSES = (Status.NEW, Status.OPEN, Status.ON_HOLD)
UNSOLVED_STATUSES = (Status.NEW, Status.OPEN, Status.PENDING, Status.ON_HOLD)


class Priority(models.TextChoices):
    LOW = "low", "Low"
    NORMAL = "normal", "Normal"
    HIGH = "high", "High"
    URGENT = "urgent", "Urgent"


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    CHAT = "chat", "Chat"
    FORM = "form", "Web form"
    SMS = "sms", "SMS"
    WHATSAPP = "whatsapp", "WhatsApp"
    PHONE = "phone", "Phone"
    API = "api", "API"


class Tier(models.TextChoices):
    NEW = "new", "New"
    REPEAT = "repeat", "Repeat"
    VIP = "vip", "VIP"


class BusinessSchedule(TenantOwnedModel):
    """Opening hours in a time zone: weekly intervals plus holidays (see tickets/sla.py)."""

    name = models.CharField(max_length=100)
    timezone = models.CharField(max_length=64, default="UTC")
    # [[weekday 0=Mon, start_minute, end_minute], ...] in local wall-clock time.
    intervals = models.JSONField(default=list)
    is_default = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="schedule_unique_name"),
            models.UniqueConstraint(fields=["tenant"], condition=Q(is_default=True), name="schedule_one_default"),
        ]

    def __str__(self) -> str:
        return self.name


class Holiday(TenantOwnedModel):
    schedule = models.ForeignKey(BusinessSchedule, on_delete=models.CASCADE, related_name="holidays")
    date = models.DateField()
    name = models.CharField(max_length=100, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "schedule", "date"], name="holiday_unique_date")]
        ordering = ["date"]


class Team(TenantOwnedModel):
    name = models.CharField(max_length=100)
    lead = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="teams")
    schedule = models.ForeignKey(BusinessSchedule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="team_unique_name")]

    def __str__(self) -> str:
        return self.name


class TicketType(TenantOwnedModel):
    name = models.CharField(max_length=80)
    slug = models.SlugField(max_length=80)
    description = models.CharField(max_length=200, blank=True)
    position = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "slug"], name="tickettype_unique_slug")]
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name


class Tag(TenantOwnedModel):
    name = models.CharField(max_length=50)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="tag_unique_name")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Customer(TenantOwnedModel):
    email = models.EmailField(blank=True)
    name = models.CharField(max_length=150, blank=True)
    phone = models.CharField(max_length=32, blank=True)
    language = models.CharField(max_length=8, blank=True)
    tier = models.CharField(max_length=10, choices=Tier.choices, default=Tier.NEW)
    # {"shopify:<connection id>": "7012345678901", ...}
    external_ids = models.JSONField(default=dict, blank=True)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "email"], condition=~Q(email=""), name="customer_unique_email")
        ]
        indexes = [
            models.Index(fields=["tenant", "phone"], name="customer_phone"),
            models.Index(fields=["tenant", "name"], name="customer_name"),
        ]

    def __str__(self) -> str:
        return self.name or self.email or self.phone

    @property
    def display_name(self) -> str:
        return self.name or self.email or self.phone or "Unknown customer"


class Ticket(TenantOwnedModel):
    number = models.PositiveIntegerField()
    subject = models.CharField(max_length=250)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.NEW)
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.NORMAL)
    ticket_type = models.ForeignKey(TicketType, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.EMAIL)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="tickets")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    tags = models.ManyToManyField(Tag, through="TicketTag", blank=True, related_name="+")
    sla_policy = models.ForeignKey("SlaPolicy", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    followup_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The store order this ticket is about, as the customer or API gave it (e.g. "1042").
    order_number = models.CharField(max_length=40, blank=True, db_default="")
    # The order this ticket is about, once linked (by number, API, latest order or an agent).
    order = models.ForeignKey("integrations.Order", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The playbook version the ticket started with (kept when the playbook is edited).
    playbook_version = models.ForeignKey(
        "playbooks.PlaybookVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    created_at = models.DateTimeField(default=now)
    updated_at = models.DateTimeField(default=now)
    last_activity_at = models.DateTimeField(default=now)
    first_response_at = models.DateTimeField(null=True, blank=True)
    solved_at = models.DateTimeField(null=True, blank=True)
    last_customer_message_at = models.DateTimeField(null=True, blank=True)
    last_agent_reply_at = models.DateTimeField(null=True, blank=True)

    # Denormalised for the queue: earliest due time of running or breached clocks, and the
    # latest message snippet. Maintained by tickets.services only.
    sla_due_at = models.DateTimeField(default=NO_DUE)
    snippet = models.CharField(max_length=160, blank=True)
    message_count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "number"], name="ticket_unique_number")]
        indexes = [
            # Queue views: keyset order (sla_due_at, id) inside each view's filter.
            models.Index(
                fields=["tenant", "sla_due_at", "id"],
                name="ticket_queue_open",
                condition=Q(status__in=["new", "open", "on_hold"]),
            ),
            models.Index(
                fields=["tenant", "assignee", "sla_due_at", "id"],
                name="ticket_queue_assignee",
                condition=Q(status__in=["new", "open", "on_hold"]),
            ),
            models.Index(
                fields=["tenant", "ticket_type", "sla_due_at", "id"],
                name="ticket_queue_type",
                condition=Q(status__in=["new", "open", "on_hold"]),
            ),
            models.Index(
                fields=["tenant", "sla_due_at", "id"],
                name="ticket_queue_unassigned",
                condition=Q(status__in=["new", "open", "on_hold"], assignee__isnull=True),
            ),
            models.Index(
                fields=["tenant", "last_activity_at", "id"],
                name="ticket_queue_pending",
                condition=Q(status="pending"),
            ),
            models.Index(fields=["tenant", "customer", "-created_at"], name="ticket_customer"),
            models.Index(fields=["tenant", "status", "-id"], name="ticket_status"),
            # API list (newest first, cursor on id) and its filters.
            models.Index(fields=["tenant", "-id"], name="ticket_recent"),
            models.Index(fields=["tenant", "priority", "-id"], name="ticket_priority"),
            models.Index(fields=["tenant", "ticket_type", "-id"], name="ticket_type_recent"),
            models.Index(fields=["tenant", "assignee", "-id"], name="ticket_assignee_recent"),
            models.Index(fields=["tenant", "updated_at", "id"], name="ticket_updated"),
            # Order events re-match the SLA of the open tickets linked to that order.
            models.Index(fields=["tenant", "order"], name="ticket_order", condition=Q(order__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"#{self.number} {self.subject}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class TicketTag(TenantOwnedModel):
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE)
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "ticket", "tag"], name="tickettag_unique")]
        indexes = [models.Index(fields=["tenant", "tag"], name="tickettag_tag")]


class TicketCounter(TenantOwnedModel):
    """Per-tenant ticket number sequence (numbers people say on the phone: #1042)."""

    value = models.PositiveIntegerField(default=1000)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant"], name="ticketcounter_one_per_tenant")]


class Message(TenantOwnedModel):
    class Author(models.TextChoices):
        CUSTOMER = "customer", "Customer"
        AGENT = "agent", "Agent"
        SYSTEM = "system", "System"

    class Kind(models.TextChoices):
        REPLY = "reply", "Public reply"
        NOTE = "note", "Internal note"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="messages")
    author_type = models.CharField(max_length=10, choices=Author.choices)
    author_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.REPLY)
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.EMAIL)
    body_text = models.TextField()
    body_html = models.TextField(blank=True)  # sanitised with nh3 before storage
    external_id = models.CharField(max_length=250, blank=True)  # e.g. the email Message-ID
    created_at = models.DateTimeField(default=now)

    class Meta:
        indexes = [models.Index(fields=["tenant", "ticket", "created_at", "id"], name="message_thread")]

    @property
    def is_note(self) -> bool:
        return self.kind == self.Kind.NOTE


class TicketEvent(TenantOwnedModel):
    """One line of a ticket's timeline: every change, with actor and time."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="events")
    created_at = models.DateTimeField(default=now)
    actor_type = models.CharField(max_length=10, default="system")  # user / token / customer / system
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=40)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "ticket", "created_at", "id"], name="ticketevent_timeline")]


class SlaMetric(models.TextChoices):
    FIRST_RESPONSE = "first_response", "First response"
    NEXT_RESPONSE = "next_response", "Next response"
    RESOLUTION = "resolution", "Resolution"


class SlaPolicy(TenantOwnedModel):
    """An ordered rule: the first active policy whose conditions match a ticket applies.

    `conditions` holds lists; an empty or missing list means "any":
    {"ticket_types": [slug], "priorities": [...], "channels": [...], "tiers": [...], "tags": [name]}
    """

    name = models.CharField(max_length=100)
    position = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True)
    conditions = models.JSONField(default=dict, blank=True)
    schedule = models.ForeignKey(BusinessSchedule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    pause_on_hold = models.BooleanField(default=False)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["position", "id"]
        indexes = [models.Index(fields=["tenant", "position"], name="slapolicy_order")]

    def __str__(self) -> str:
        return self.name


class SlaTarget(TenantOwnedModel):
    policy = models.ForeignKey(SlaPolicy, on_delete=models.CASCADE, related_name="targets")
    metric = models.CharField(max_length=20, choices=SlaMetric.choices)
    priority = models.CharField(max_length=10, choices=Priority.choices)
    minutes = models.PositiveIntegerField()
    business_hours = models.BooleanField(default=True)
    warn_before_minutes = models.PositiveIntegerField(default=30)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "policy", "metric", "priority"], name="slatarget_unique")
        ]


class SlaClock(TenantOwnedModel):
    """A running (or paused, fulfilled, breached) SLA timer of one ticket for one metric."""

    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        FULFILLED = "fulfilled", "Fulfilled"
        BREACHED = "breached", "Breached"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="clocks")
    metric = models.CharField(max_length=20, choices=SlaMetric.choices)
    status = models.CharField(max_length=10, choices=State.choices, default=State.ACTIVE)
    target_seconds = models.PositiveIntegerField()
    business_hours = models.BooleanField(default=True)
    warn_before_seconds = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(default=now)
    # Business (or calendar) seconds consumed before `running_since`.
    elapsed_seconds = models.PositiveIntegerField(default=0)
    running_since = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    warn_at = models.DateTimeField(null=True, blank=True)
    warned_at = models.DateTimeField(null=True, blank=True)
    breached_at = models.DateTimeField(null=True, blank=True)
    fulfilled_at = models.DateTimeField(null=True, blank=True)
    pauses = models.JSONField(default=list, blank=True)  # [{"paused_at", "resumed_at", "reason"}]

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "ticket", "metric"], name="slaclock_unique")]
        indexes = [
            # The sweeper's probes: due breaches and due warnings, per tenant.
            models.Index(fields=["tenant", "due_at"], name="slaclock_due", condition=Q(status="active")),
            models.Index(
                fields=["tenant", "warn_at"], name="slaclock_warn", condition=Q(status="active", warned_at__isnull=True)
            ),
        ]


class Notification(TenantOwnedModel):
    """An in-app notice for one person (SLA warnings and breaches, mentions, approvals)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    ticket = models.ForeignKey(Ticket, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=40)
    text = models.CharField(max_length=300)
    created_at = models.DateTimeField(default=now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "user", "-created_at"], name="notification_inbox")]


class BackgroundJob(TenantOwnedModel):
    """Progress of long work started from the UI (e.g. re-evaluating SLA after a policy edit)."""

    kind = models.CharField(max_length=40)
    status = models.CharField(max_length=10, default="queued")  # queued / running / done / failed
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    message = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "kind", "-created_at"], name="backgroundjob_recent")]

    @property
    def percent(self) -> int:
        return 100 if not self.total else int(100 * self.done / self.total)


class Escalation(TenantOwnedModel):
    """A ticket handed to another team with a summary and a due date (in that team's hours).

    Like SLA clocks, reminders and breaches are data: `remind_at`/`due_at` are found by the
    beat sweep's indexed probes and fired once each (`reminded_at`, `breached_at`).
    """

    class State(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        ANSWERED = "answered", "Answered"
        RESOLVED = "resolved", "Resolved"
        CANCELLED = "cancelled", "Cancelled"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="escalations")
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="+")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    summary = models.TextField()
    status = models.CharField(max_length=12, choices=State.choices, default=State.OPEN)
    due_at = models.DateTimeField()
    remind_at = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    breached_at = models.DateTimeField(null=True, blank=True)
    answer = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=now)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "team", "status", "due_at"], name="escalation_team_queue"),
            models.Index(fields=["tenant", "ticket", "-created_at"], name="escalation_ticket"),
            models.Index(
                fields=["tenant", "due_at"],
                name="escalation_due",
                condition=Q(status__in=["open", "acknowledged"], breached_at__isnull=True),
            ),
            models.Index(
                fields=["tenant", "remind_at"],
                name="escalation_remind",
                condition=Q(status__in=["open", "acknowledged"], reminded_at__isnull=True),
            ),
        ]

    @property
    def is_active(self) -> bool:
        return self.status in (self.State.OPEN, self.State.ACKNOWLEDGED)


class CsatResponse(TenantOwnedModel):
    """A customer's 1–5 rating of a solved ticket (one per ticket; a second answer updates it)."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="+")
    rating = models.PositiveSmallIntegerField()
    comment = models.TextField(blank=True)
    # Who and what is rated, frozen at answer time for the per-agent / per-type counts.
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ticket_type = models.ForeignKey(TicketType, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=now)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "ticket"], name="csat_one_per_ticket"),
            models.CheckConstraint(condition=Q(rating__gte=1, rating__lte=5), name="csat_rating_range"),
        ]
        indexes = [
            models.Index(fields=["tenant", "agent", "created_at"], name="csat_agent"),
            models.Index(fields=["tenant", "ticket_type", "created_at"], name="csat_type"),
        ]
