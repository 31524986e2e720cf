"""Playbooks per ticket type (versioned), approved reply and notice templates, checklist ticks."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.timezone import now

from helpdesk.models import TenantOwnedModel

# Ticket fields a playbook can require before the ticket may be solved.
REQUIRED_FIELD_CHOICES = {
    "order": "Linked order",
    "assignee": "Assignee",
    "team": "Team",
    "tags": "At least one tag",
}


class Playbook(TenantOwnedModel):
    """The playbook of one ticket type. Its content lives in versions; edits add a version."""

    ticket_type = models.ForeignKey("tickets.TicketType", on_delete=models.CASCADE, related_name="+")
    current_version = models.ForeignKey(
        "PlaybookVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=now)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "ticket_type"], name="playbook_one_per_type")]

    def __str__(self) -> str:
        return f"Playbook for {self.ticket_type_id}"


class PlaybookVersion(TenantOwnedModel):
    """One immutable version of a playbook. A ticket keeps the version it started with.

    `checklist` is `[{"key": "k1", "text": "...", "required": true}, ...]` in order; keys
    stay stable across versions so ticks survive re-ordering. `replies` lists the ids of
    the approved reply templates in the order agents see them.
    """

    playbook = models.ForeignKey(Playbook, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    owner_team = models.ForeignKey("tickets.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    owner_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    checklist = models.JSONField(default=list, blank=True)
    replies = models.JSONField(default=list, blank=True)
    required_fields = models.JSONField(default=list, blank=True)
    escalation_team = models.ForeignKey(
        "tickets.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Due-in time of an escalation, in the target team's business hours.
    escalation_due_minutes = models.PositiveIntegerField(null=True, blank=True)
    escalation_summary = models.TextField(blank=True)
    note = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "playbook", "number"], name="playbookversion_unique_number")
        ]
        ordering = ["-number"]

    def __str__(self) -> str:
        return f"v{self.number}"

    @property
    def required_items(self) -> list[dict]:
        return [item for item in self.checklist if item.get("required")]

    @property
    def has_escalation_path(self) -> bool:
        return self.escalation_team_id is not None


class ReplyTemplate(TenantOwnedModel):
    """An approved reply (agents insert it) or a notice (workers send it), with language variants."""

    class Kind(models.TextChoices):
        REPLY = "reply", "Approved reply"
        NOTICE = "notice", "Customer notice"

    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.REPLY)
    name = models.CharField(max_length=120)
    # Reply sets that are not tied to one ticket type ("Shipping policy", "Return policy").
    collection = models.CharField(max_length=80, blank=True)
    is_active = models.BooleanField(default=True)
    use_count = models.PositiveIntegerField(default=0)
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=now)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "kind", "name"], name="replytemplate_unique_name")]
        indexes = [models.Index(fields=["tenant", "kind", "last_used_at"], name="replytemplate_usage")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TemplateVariant(TenantOwnedModel):
    """The text of a template in one language ("" body = not written yet)."""

    template = models.ForeignKey(ReplyTemplate, on_delete=models.CASCADE, related_name="variants")
    language = models.CharField(max_length=8)
    subject = models.CharField(max_length=250, blank=True)
    body = models.TextField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "template", "language"], name="templatevariant_unique_language")
        ]
        ordering = ["language"]


class ChecklistTick(TenantOwnedModel):
    """An agent ticked a checklist item of the ticket's playbook version."""

    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.CASCADE, related_name="+")
    item_key = models.CharField(max_length=40)
    ticked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ticked_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "ticket", "item_key"], name="checklisttick_unique_item")
        ]
