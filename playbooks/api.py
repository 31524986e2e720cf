"""REST resources: `playbooks` (one per ticket type, versioned) and a ticket's checklist."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.response import Response

from helpdesk.api.base import TenantRequest, TenantScopedViewSet
from helpdesk.models import Membership, Role
from playbooks import services
from playbooks.models import REQUIRED_FIELD_CHOICES, Playbook, PlaybookVersion
from tickets.models import Team, Ticket, TicketType


class ChecklistItemSerializer(serializers.Serializer):
    key = serializers.CharField(required=False, allow_blank=True, max_length=40)
    text = serializers.CharField(max_length=200)
    required = serializers.BooleanField(default=False)  # type: ignore[assignment]


class VersionSerializer(serializers.ModelSerializer):
    owner_team: serializers.PrimaryKeyRelatedField = serializers.PrimaryKeyRelatedField(read_only=True)
    owner_user: serializers.PrimaryKeyRelatedField = serializers.PrimaryKeyRelatedField(read_only=True)
    escalation_team: serializers.PrimaryKeyRelatedField = serializers.PrimaryKeyRelatedField(read_only=True)
    checklist = ChecklistItemSerializer(many=True, read_only=True)
    replies = serializers.ListField(child=serializers.IntegerField(), read_only=True)
    required_fields = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = PlaybookVersion
        fields = [
            "number",
            "owner_team",
            "owner_user",
            "checklist",
            "replies",
            "required_fields",
            "escalation_team",
            "escalation_due_minutes",
            "escalation_summary",
            "note",
            "created_at",
        ]


class PlaybookSerializer(serializers.ModelSerializer):
    ticket_type: serializers.SlugRelatedField = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    version = VersionSerializer(source="current_version", read_only=True)

    class Meta:
        model = Playbook
        fields = ["id", "ticket_type", "version", "updated_at"]


class PlaybookWriteSerializer(serializers.Serializer):
    ticket_type = serializers.SlugField(help_text="The ticket type's slug; saving adds a new version.")
    owner_team = serializers.IntegerField(required=False, allow_null=True)
    owner_user = serializers.IntegerField(required=False, allow_null=True)
    checklist = ChecklistItemSerializer(many=True, required=False)
    replies = serializers.ListField(child=serializers.IntegerField(), required=False, max_length=30)
    required_fields = serializers.ListField(
        child=serializers.ChoiceField(choices=list(REQUIRED_FIELD_CHOICES)), required=False
    )
    escalation_team = serializers.IntegerField(required=False, allow_null=True)
    escalation_due_minutes = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    escalation_summary = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    note = serializers.CharField(required=False, allow_blank=True, max_length=200)


def _team(tenant, pk, field: str) -> Team | None:
    if pk is None:
        return None
    team = Team.objects.filter(tenant=tenant, pk=pk).first()
    if team is None:
        raise serializers.ValidationError({field: ["No such team."]})
    return team


class PlaybookViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Playbooks per ticket type. `POST` saves a new version of the type's playbook (leads)."""

    queryset = Playbook.objects.all()
    serializer_class = PlaybookSerializer
    required_write_role = Role.LEAD  # reading is for every member; saving a version for leads

    def safely_get_queryset(self, queryset):
        return queryset.select_related("ticket_type", "current_version").order_by("-id")

    @extend_schema(request=PlaybookWriteSerializer, responses={201: PlaybookSerializer})
    def create(self, request: TenantRequest) -> Response:
        payload = PlaybookWriteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        tenant = request.tenant
        ticket_type = TicketType.objects.filter(tenant=tenant, slug=data["ticket_type"]).first()
        if ticket_type is None:
            raise serializers.ValidationError({"ticket_type": ["No such ticket type."]})
        owner_user = None
        if data.get("owner_user") is not None:
            membership = Membership.objects.filter(tenant=tenant, user_id=data["owner_user"]).select_related("user")
            found = membership.first()
            if found is None:
                raise serializers.ValidationError({"owner_user": ["No such member of this workspace."]})
            owner_user = found.user
        version = services.playbook_save(
            tenant=tenant,
            ticket_type=ticket_type,
            actor=self.actor,
            owner_team=_team(tenant, data.get("owner_team"), "owner_team"),
            owner_user=owner_user,
            checklist=data.get("checklist", []),
            replies=data.get("replies", []),
            required_fields=data.get("required_fields", []),
            escalation_team=_team(tenant, data.get("escalation_team"), "escalation_team"),
            escalation_due_minutes=data.get("escalation_due_minutes"),
            escalation_summary=data.get("escalation_summary", ""),
            note=data.get("note", ""),
        )
        playbook = self.get_queryset().get(pk=version.playbook_id)
        return Response(PlaybookSerializer(playbook).data, status=status.HTTP_201_CREATED)


class TickSerializer(serializers.Serializer):
    item = serializers.CharField(max_length=40)
    ticked = serializers.BooleanField(default=True)


class ChecklistStateItemSerializer(ChecklistItemSerializer):
    ticked = serializers.BooleanField()
    ticked_at = serializers.DateTimeField(allow_null=True)


class ChecklistStateSerializer(serializers.Serializer):
    playbook_version = serializers.IntegerField(allow_null=True)
    items = ChecklistStateItemSerializer(many=True)
    can_solve = serializers.BooleanField()
    missing = serializers.ListField(child=serializers.CharField(), help_text="What blocks solving, in words.")


class TicketChecklistViewSet(TenantScopedViewSet):
    """`/tickets/{id}/checklist/`: the ticket's playbook checklist; POST ticks or unticks an item."""

    queryset = Ticket.objects.all()
    serializer_class = ChecklistStateSerializer
    pagination_class = None

    def _ticket(self) -> Ticket:
        try:
            return self.get_queryset().select_related("customer").get(pk=int(self.kwargs["ticket_pk"]))
        except (Ticket.DoesNotExist, ValueError) as exc:
            raise Http404("No such ticket") from exc

    def _state(self, ticket: Ticket) -> dict:
        version = services.version_for(ticket)
        ticks = services.ticked_keys(ticket) if version else {}
        missing = services.solve_blockers(ticket, version) if version else []
        return {
            "playbook_version": version.number if version else None,
            "items": [
                {
                    **item,
                    "ticked": item["key"] in ticks,
                    "ticked_at": ticks[item["key"]].ticked_at if item["key"] in ticks else None,
                }
                for item in (version.checklist if version else [])
            ],
            "can_solve": not missing,
            "missing": missing,
        }

    @extend_schema(responses=ChecklistStateSerializer)
    def list(self, request: TenantRequest, ticket_pk: str) -> Response:
        return Response(self._state(self._ticket()))

    @extend_schema(request=TickSerializer, responses=ChecklistStateSerializer)
    def create(self, request: TenantRequest, ticket_pk: str) -> Response:
        ticket = self._ticket()
        payload = TickSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        services.checklist_tick(
            ticket=ticket,
            item_key=payload.validated_data["item"],
            actor=self.actor,
            ticked=payload.validated_data["ticked"],
        )
        return Response(self._state(ticket))


def register(router) -> None:
    router.register("playbooks", PlaybookViewSet, basename="playbook")
    router.register(r"tickets/(?P<ticket_pk>[0-9]+)/checklist", TicketChecklistViewSet, basename="ticket-checklist")
