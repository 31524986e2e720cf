"""REST resource `escalations`: list/retrieve/create and acknowledge/answer/resolve/cancel."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from helpdesk.api.base import TenantRequest, TenantScopedViewSet
from helpdesk.models import Membership
from tickets import services_escalations as services
from tickets.models import Escalation, Team, Ticket
from tickets.selectors_escalations import STATUS_FILTERS


class _Person(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    name = serializers.CharField()


class _Team(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


def _person(user) -> dict | None:
    return {"id": user.pk, "email": user.email, "name": user.name} if user is not None else None


class EscalationSerializer(serializers.ModelSerializer):
    ticket_number = serializers.IntegerField(source="ticket.number", read_only=True)
    team = serializers.SerializerMethodField()
    owner = serializers.SerializerMethodField()
    created_by = serializers.SerializerMethodField()
    overdue = serializers.SerializerMethodField()

    class Meta:
        model = Escalation
        fields = [
            "id",
            "ticket",
            "ticket_number",
            "team",
            "owner",
            "summary",
            "status",
            "due_at",
            "remind_at",
            "overdue",
            "answer",
            "created_by",
            "created_at",
            "acknowledged_at",
            "answered_at",
            "resolved_at",
        ]
        read_only_fields = fields

    @extend_schema_field(_Team())
    def get_team(self, obj: Escalation) -> dict:
        return {"id": obj.team_id, "name": obj.team.name}

    @extend_schema_field(_Person(allow_null=True))
    def get_owner(self, obj: Escalation) -> dict | None:
        return _person(obj.owner)

    @extend_schema_field(_Person(allow_null=True))
    def get_created_by(self, obj: Escalation) -> dict | None:
        return _person(obj.created_by)

    def get_overdue(self, obj: Escalation) -> bool:
        return obj.is_active and obj.due_at <= timezone.now()


class EscalationCreateSerializer(serializers.Serializer):
    ticket = serializers.IntegerField(min_value=1)
    summary = serializers.CharField(allow_blank=True, trim_whitespace=True)
    team = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    owner = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    due_at = serializers.DateTimeField(required=False, allow_null=True)

    def validate_summary(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("Write a summary the other team can act on.")
        return value

    def validate_due_at(self, value):
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("The due date is in the past.")
        return value

    def validate(self, attrs: dict) -> dict:
        tenant = self.context["tenant"]
        errors: dict[str, str] = {}
        ticket = Ticket.objects.filter(tenant=tenant, pk=attrs["ticket"]).select_related("tenant").first()
        if ticket is None:
            errors["ticket"] = "No such ticket."
        attrs["ticket"] = ticket
        if attrs.get("team") is not None:
            attrs["team"] = Team.objects.filter(tenant=tenant, pk=attrs["team"]).first()
            if attrs["team"] is None:
                errors["team"] = "No such team."
        if attrs.get("owner") is not None:
            membership = Membership.objects.filter(tenant=tenant, user_id=attrs["owner"]).select_related("user").first()
            if membership is None:
                errors["owner"] = "No such member of this workspace."
            attrs["owner"] = membership.user if membership else None
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class AnswerSerializer(serializers.Serializer):
    answer = serializers.CharField(allow_blank=True, trim_whitespace=True)


FILTERS = [
    OpenApiParameter("team", int, description="team id"),
    OpenApiParameter("status", str, description="open, acknowledged, answered, resolved, cancelled, or active"),
    OpenApiParameter("ticket", int, description="ticket id"),
]


class EscalationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Escalations of tickets to other teams. Create with `ticket`, `summary`, optional `team`, `owner`, `due_at`."""

    queryset = Escalation.objects.all()
    serializer_class = EscalationSerializer

    def safely_get_queryset(self, queryset):
        queryset = queryset.select_related("ticket", "team", "owner", "created_by")
        if self.action != "list":
            return queryset
        params = self.request.query_params
        errors: dict[str, list[str]] = {}
        for name in ("team", "ticket"):
            raw = params.get(name)
            if raw:
                if raw.isdigit():
                    queryset = queryset.filter(**{f"{name}_id": int(raw)})
                else:
                    errors[name] = [f"A {name} id."]
        raw_status = params.get("status")
        if raw_status:
            if raw_status == "active":
                queryset = queryset.filter(status__in=STATUS_FILTERS["active"][1])
            elif raw_status in Escalation.State.values:
                queryset = queryset.filter(status=raw_status)
            else:
                errors["status"] = ["One of open, acknowledged, answered, resolved, cancelled, active."]
        if errors:
            raise serializers.ValidationError(errors)
        return queryset

    @extend_schema(parameters=FILTERS)
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=EscalationCreateSerializer, responses={201: EscalationSerializer})
    def create(self, request: TenantRequest) -> Response:
        payload = EscalationCreateSerializer(data=request.data, context={"tenant": request.tenant})
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        esc = services.escalation_create(
            ticket=data["ticket"],
            actor=self.actor,
            summary=data["summary"],
            team=data.get("team"),
            owner=data.get("owner"),
            due_at=data.get("due_at"),
        )
        return Response(EscalationSerializer(self.get_queryset().get(pk=esc.pk)).data, status=status.HTTP_201_CREATED)

    def _after(self, esc: Escalation) -> Response:
        return Response(EscalationSerializer(self.get_queryset().get(pk=esc.pk)).data)

    @extend_schema(request=None, responses=EscalationSerializer)
    @action(detail=True, methods=["post"])
    def acknowledge(self, request: TenantRequest, pk: str) -> Response:
        return self._after(services.escalation_acknowledge(escalation=self.get_object(), actor=self.actor))

    @extend_schema(request=AnswerSerializer, responses=EscalationSerializer)
    @action(detail=True, methods=["post"])
    def answer(self, request: TenantRequest, pk: str) -> Response:
        esc = self.get_object()
        payload = AnswerSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        return self._after(
            services.escalation_answer(escalation=esc, actor=self.actor, answer=payload.validated_data["answer"])
        )

    @extend_schema(request=None, responses=EscalationSerializer)
    @action(detail=True, methods=["post"])
    def resolve(self, request: TenantRequest, pk: str) -> Response:
        return self._after(services.escalation_resolve(escalation=self.get_object(), actor=self.actor))

    @extend_schema(request=None, responses=EscalationSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: TenantRequest, pk: str) -> Response:
        return self._after(services.escalation_cancel(escalation=self.get_object(), actor=self.actor))


def register(router) -> None:
    router.register("escalations", EscalationViewSet, basename="escalation")
