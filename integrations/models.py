"""Store connections, their webhook inbox, and the orders mirrored from the platforms."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils.timezone import now

from helpdesk.models import TenantOwnedModel


class Platform(models.TextChoices):
    SHOPIFY = "shopify", "Shopify"
    WOOCOMMERCE = "woocommerce", "WooCommerce"
    MAGENTO = "magento", "Magento / Adobe Commerce"
    GENERIC = "generic", "Generic"


class Connection(TenantOwnedModel):
    """One connected store. The UUID primary key is the unguessable id in the webhook URL."""

    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        DISCONNECTED = "disconnected", "Disconnected"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    platform = models.CharField(max_length=20, choices=Platform.choices)
    name = models.CharField(max_length=100)
    shop_domain = models.CharField(max_length=255, blank=True)
    api_url = models.URLField(blank=True)
    # Fernet tokens (integrations.crypto): API credentials JSON, webhook secrets.
    credentials_encrypted = models.TextField(blank=True)
    webhook_secret_encrypted = models.TextField(blank=True)
    previous_secret_encrypted = models.TextField(blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    # Adobe Commerce signs with an RSA key pair; the admin pastes the public key (PEM).
    public_key_pem = models.TextField(blank=True)
    status = models.CharField(max_length=20, choices=State.choices, default=State.ACTIVE)
    created_at = models.DateTimeField(default=now)
    disconnected_at = models.DateTimeField(null=True, blank=True)
    last_delivery_at = models.DateTimeField(null=True, blank=True)
    last_reconciled_at = models.DateTimeField(null=True, blank=True)
    reconcile_error = models.CharField(max_length=500, blank=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "status"], name="connection_status")]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_platform_display()})"

    @property
    def is_active(self) -> bool:
        return self.status == self.State.ACTIVE


class WebhookDelivery(TenantOwnedModel):
    """The inbox: every accepted delivery, stored verbatim before anything is processed."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Processed"
        IGNORED = "ignored", "Ignored"
        RETRYING = "retrying", "Retrying"
        DEAD = "dead", "Dead letter"

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="deliveries")
    delivery_id = models.CharField(max_length=200)  # platform delivery id, or a derived one
    event_id = models.CharField(max_length=200, blank=True)
    topic = models.CharField(max_length=100)
    received_at = models.DateTimeField(default=now)
    triggered_at = models.DateTimeField(null=True, blank=True)
    headers = models.JSONField(default=dict)
    body = models.TextField()  # the raw body, exactly as signed (UTF-8)
    status = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "connection", "delivery_id"], name="delivery_unique_id")
        ]
        indexes = [
            models.Index(fields=["tenant", "connection", "-received_at"], name="delivery_recent"),
            # The sweeper re-enqueues pending/retrying rows whose message was lost.
            models.Index(
                fields=["tenant", "next_attempt_at"],
                name="delivery_due",
                condition=Q(status__in=["pending", "retrying"]),
            ),
            # Dead letters per connection, newest first (the connection list's count, the health
            # page's list). Only dead rows: an index over every status offered the drain's claim
            # a path that sorts the whole pending backlog when statistics predate a burst.
            models.Index(
                fields=["tenant", "connection", "-received_at"],
                name="delivery_dead",
                condition=Q(status="dead"),
            ),
            # Shopify sends copies of one event to each subscription: the copy check by event id.
            models.Index(
                fields=["tenant", "connection", "event_id", "topic"],
                name="delivery_event",
                condition=~Q(event_id=""),
            ),
        ]


class Order(TenantOwnedModel):
    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="orders")
    external_id = models.CharField(max_length=64)
    number = models.CharField(max_length=40)  # what customers quote: "1042"
    name = models.CharField(max_length=60, blank=True)  # platform display name: "#1042"
    customer = models.ForeignKey(
        "tickets.Customer", null=True, blank=True, on_delete=models.SET_NULL, related_name="orders"
    )
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    total = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    subtotal = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    total_tax = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    refunded_total = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    financial_status = models.CharField(max_length=30, blank=True)
    fulfillment_status = models.CharField(max_length=30, blank=True)
    platform_status = models.CharField(max_length=30, blank=True)  # raw Woo/Magento status
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.CharField(max_length=30, blank=True)
    placed_at = models.DateTimeField(null=True, blank=True)
    platform_updated_at = models.DateTimeField(null=True, blank=True)
    shipping_address = models.JSONField(default=dict, blank=True)
    billing_address = models.JSONField(default=dict, blank=True)
    tags = models.CharField(max_length=500, blank=True)
    note = models.TextField(blank=True)
    redacted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=now)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "connection", "external_id"], name="order_unique_external")
        ]
        indexes = [
            models.Index(fields=["tenant", "number"], name="order_number"),
            models.Index(fields=["tenant", "customer", "-placed_at"], name="order_customer"),
            models.Index(fields=["tenant", "email"], name="order_email"),
        ]

    def __str__(self) -> str:
        return self.name or f"#{self.number}"

    @property
    def refundable(self):
        return max(self.total - self.refunded_total, 0)


class OrderLine(TenantOwnedModel):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    external_id = models.CharField(max_length=64)
    sku = models.CharField(max_length=100, blank=True)
    title = models.CharField(max_length=255)
    quantity = models.PositiveIntegerField(default=1)
    price = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    fulfillable_quantity = models.PositiveIntegerField(default=0)
    fulfillment_status = models.CharField(max_length=30, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "order", "external_id"], name="orderline_unique")]


class Fulfillment(TenantOwnedModel):
    """A shipment. `status` is canonical (CONTRACTS.md §6); `shipment_status` the platform's."""

    class Canonical(models.TextChoices):
        LABEL_CREATED = "label_created", "Label created"
        IN_TRANSIT = "in_transit", "In transit"
        OUT_FOR_DELIVERY = "out_for_delivery", "Out for delivery"
        PICKUP_READY = "pickup_ready", "Ready for pickup"
        ATTEMPT_FAILED = "attempt_failed", "Delivery attempt failed"
        DELIVERED = "delivered", "Delivered"
        EXCEPTION = "exception", "Exception"
        UNKNOWN = "unknown", "Unknown"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="fulfillments")
    external_id = models.CharField(max_length=64)
    name = models.CharField(max_length=60, blank=True)
    status = models.CharField(max_length=20, choices=Canonical.choices, default=Canonical.UNKNOWN)
    platform_status = models.CharField(max_length=30, blank=True)
    shipment_status = models.CharField(max_length=30, blank=True)
    carrier = models.CharField(max_length=100, blank=True)
    tracking_number = models.CharField(max_length=100, blank=True)
    tracking_url = models.URLField(max_length=500, blank=True)
    estimated_delivery_at = models.DateTimeField(null=True, blank=True)
    shipped_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_event_at = models.DateTimeField(null=True, blank=True)
    platform_updated_at = models.DateTimeField(null=True, blank=True)
    events = models.JSONField(default=list, blank=True)  # [{"at", "status", "message"}]

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "order", "external_id"], name="fulfillment_unique")]
        indexes = [models.Index(fields=["tenant", "status", "last_event_at"], name="fulfillment_status")]


class Refund(TenantOwnedModel):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="refunds")
    external_id = models.CharField(max_length=64)
    amount = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    currency = models.CharField(max_length=3, blank=True)
    note = models.CharField(max_length=500, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    lines = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "order", "external_id"], name="refund_unique")]


class Return(TenantOwnedModel):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="returns")
    external_id = models.CharField(max_length=64)
    name = models.CharField(max_length=60, blank=True)
    status = models.CharField(max_length=30)
    lines = models.JSONField(default=list, blank=True)
    decline_reason = models.CharField(max_length=200, blank=True)
    platform_updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "order", "external_id"], name="return_unique")]


class OrderAction(TenantOwnedModel):
    """A refund, cancel or address change requested from a ticket, run by a worker.

    The idempotency key goes to the platform with the call, so a retried job never refunds
    twice; the row records progress, the platform's answer and who approved it.
    """

    class Kind(models.TextChoices):
        REFUND = "refund", "Refund"
        CANCEL = "cancel", "Cancel order"
        ADDRESS = "address_change", "Change shipping address"

    class State(models.TextChoices):
        AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Done"
        FAILED = "failed", "Failed"
        REJECTED = "rejected", "Rejected"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="actions")
    ticket = models.ForeignKey("tickets.Ticket", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=20, choices=State.choices, default=State.QUEUED)
    params = models.JSONField(default=dict)  # amount, lines, reason, restock, notify, address
    idempotency_key = models.CharField(max_length=64)
    requested_by = models.ForeignKey(
        "helpdesk.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_by = models.ForeignKey("helpdesk.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(max_length=500, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    result = models.JSONField(default=dict, blank=True)
    error_message = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField(default=now)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "idempotency_key"], name="orderaction_unique_key")]
        indexes = [
            models.Index(fields=["tenant", "order", "-created_at"], name="orderaction_order"),
            models.Index(fields=["tenant", "status", "-created_at"], name="orderaction_status"),
        ]


class ActionLimit(TenantOwnedModel):
    """What a role may do without approval. Above the refund limit, a lead must approve."""

    role = models.CharField(max_length=10)
    max_refund = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    can_cancel = models.BooleanField(default=True)
    can_change_address = models.BooleanField(default=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "role"], name="actionlimit_unique_role")]


# Outbound notices live in their own module; importing them here registers the models.
from integrations.notices_models import (  # noqa: E402, F401
    FulfillmentDelay,
    Notice,
    NoticeEvent,
    NoticeRule,
    NoticeSettings,
    Suppression,
)
