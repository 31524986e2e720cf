"""REST resources: orders (read-only) and order actions (refund, cancel, address change).

POST /api/v1/order-actions/ {ticket, order, kind, params} answers 201 when the action is
queued and 202 when it waits for a lead's approval; approve/reject/retry are sub-routes.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.response import Response

from helpdesk.api.base import TenantRequest, TenantScopedViewSet
from helpdesk.api.permissions import role_at_least
from helpdesk.models import Role
from integrations import action_rules, actions, orders
from integrations.models import Fulfillment, Order, OrderAction, OrderLine, Refund, Return
from tickets.models import Ticket


class OrderLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = OrderLine
        fields = [
            "id",
            "external_id",
            "sku",
            "title",
            "quantity",
            "price",
            "fulfillable_quantity",
            "fulfillment_status",
        ]
        read_only_fields = fields


class FulfillmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Fulfillment
        fields = [
            "id",
            "external_id",
            "name",
            "status",
            "platform_status",
            "shipment_status",
            "carrier",
            "tracking_number",
            "tracking_url",
            "estimated_delivery_at",
            "shipped_at",
            "delivered_at",
            "last_event_at",
        ]
        read_only_fields = fields


class RefundSerializer(serializers.ModelSerializer):
    class Meta:
        model = Refund
        fields = ["id", "external_id", "amount", "currency", "note", "processed_at", "lines"]
        read_only_fields = fields


class ReturnSerializer(serializers.ModelSerializer):
    class Meta:
        model = Return
        fields = ["id", "external_id", "name", "status", "lines", "decline_reason"]
        read_only_fields = fields


class OrderSerializer(serializers.ModelSerializer):
    platform = serializers.CharField(source="connection.platform", read_only=True)
    refundable = serializers.DecimalField(max_digits=12, decimal_places=2, read_only=True)
    lines = OrderLineSerializer(many=True, read_only=True)
    fulfillments = FulfillmentSerializer(many=True, read_only=True)
    refunds = RefundSerializer(many=True, read_only=True)
    returns = ReturnSerializer(many=True, read_only=True)

    class Meta:
        model = Order
        fields = [
            "id",
            "connection",
            "platform",
            "external_id",
            "number",
            "name",
            "customer",
            "email",
            "phone",
            "currency",
            "total",
            "subtotal",
            "total_tax",
            "refunded_total",
            "refundable",
            "financial_status",
            "fulfillment_status",
            "platform_status",
            "cancelled_at",
            "cancel_reason",
            "placed_at",
            "platform_updated_at",
            "shipping_address",
            "billing_address",
            "tags",
            "note",
            "lines",
            "fulfillments",
            "refunds",
            "returns",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class OrderViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Orders mirrored from the connected stores, newest first."""

    queryset = Order.objects.all()
    serializer_class = OrderSerializer

    def safely_get_queryset(self, queryset):
        queryset = orders.with_details(queryset)
        if self.action != "list":
            return queryset
        params = self.request.query_params
        errors = {}
        if params.get("customer"):
            if params["customer"].isdigit():
                queryset = queryset.filter(customer_id=int(params["customer"]))
            else:
                errors["customer"] = ["A customer id."]
        if params.get("number"):
            queryset = queryset.filter(number__in=orders.normalise_number(params["number"]))
        if params.get("email"):
            queryset = queryset.filter(email=params["email"].strip().lower())
        if errors:
            raise serializers.ValidationError(errors)
        return queryset

    @extend_schema(
        parameters=[
            OpenApiParameter("customer", int, description="customer id"),
            OpenApiParameter("number", str, description="order number as customers quote it (`1042` or `#1042`)"),
            OpenApiParameter("email", str),
        ]
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)


class OrderActionSerializer(serializers.ModelSerializer):
    ticket_number = serializers.IntegerField(source="ticket.number", read_only=True, allow_null=True)
    requested_by = serializers.EmailField(source="requested_by.email", read_only=True, allow_null=True)
    decided_by = serializers.EmailField(source="decided_by.email", read_only=True, allow_null=True)
    summary = serializers.SerializerMethodField()

    class Meta:
        model = OrderAction
        fields = [
            "id",
            "kind",
            "status",
            "summary",
            "order",
            "ticket",
            "ticket_number",
            "params",
            "idempotency_key",
            "requested_by",
            "decided_by",
            "decided_at",
            "decision_note",
            "attempts",
            "result",
            "error_message",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_summary(self, obj: OrderAction) -> str:
        return action_rules.describe(obj.kind, obj.params)


class OrderActionCreateSerializer(serializers.Serializer):
    ticket = serializers.IntegerField(help_text="ticket id")
    order = serializers.IntegerField(help_text="order id")
    kind = serializers.ChoiceField(choices=OrderAction.Kind.choices)
    params = serializers.DictField(
        required=False,
        default=dict,
        help_text=(
            "refund: amount (or full: true), lines [{line, quantity}], reason, restock, notify; "
            "cancel: reason (customer/inventory/fraud/declined/staff/other), refund, restock, notify; "
            "address_change: name, company, address1, address2, city, province, zip, country_code, phone"
        ),
    )
    idempotency_key = serializers.CharField(required=False, allow_blank=True, max_length=64)


class DecisionSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=500)


class OrderActionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Refunds, cancellations and address changes requested from tickets."""

    queryset = OrderAction.objects.all()
    serializer_class = OrderActionSerializer

    def safely_get_queryset(self, queryset):
        queryset = queryset.select_related("ticket", "requested_by", "decided_by", "order")
        if self.action != "list":
            return queryset
        params = self.request.query_params
        errors = {}
        if params.get("status"):
            if params["status"] in OrderAction.State.values:
                queryset = queryset.filter(status=params["status"])
            else:
                errors["status"] = [f"One of {', '.join(OrderAction.State.values)}."]
        for name in ("ticket", "order"):
            if params.get(name):
                if params[name].isdigit():
                    queryset = queryset.filter(**{f"{name}_id": int(params[name])})
                else:
                    errors[name] = [f"A {name} id."]
        if errors:
            raise serializers.ValidationError(errors)
        return queryset

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, description=", ".join(OrderAction.State.values)),
            OpenApiParameter("ticket", int),
            OpenApiParameter("order", int),
        ]
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request=OrderActionCreateSerializer,
        responses={
            201: OrderActionSerializer,
            202: OrderActionSerializer,
            200: OrderActionSerializer,
        },
        description="201: queued. 202: waiting for a lead's approval. 200: an earlier request with the same "
        "`idempotency_key` (or `Idempotency-Key` header), returned as it stands.",
    )
    def create(self, request: TenantRequest) -> Response:
        payload = OrderActionCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        key = (data.get("idempotency_key") or request.headers.get("Idempotency-Key") or "").strip()
        if key:
            existing = self.get_queryset().filter(idempotency_key=key).first()
            if existing is not None:
                if existing.order_id != data["order"] or existing.kind != data["kind"]:
                    raise serializers.ValidationError({"idempotency_key": ["Already used for a different request."]})
                return Response(OrderActionSerializer(existing).data, status=status.HTTP_200_OK)
        tenant = request.tenant
        ticket = Ticket.objects.filter(tenant=tenant, pk=data["ticket"]).select_related("tenant").first()
        if ticket is None:  # another tenant's id reads as missing: 404, like a URL
            raise NotFound("No such ticket.")
        order = Order.objects.filter(tenant=tenant, pk=data["order"]).select_related("connection").first()
        if order is None:
            raise NotFound("No such order.")
        try:
            created = actions.order_action_request(
                ticket=ticket,
                order=order,
                kind=data["kind"],
                params=data.get("params") or {},
                actor=self.actor,
                idempotency_key=key,
            )
        except DjangoPermissionDenied as exc:
            raise PermissionDenied(str(exc)) from exc
        except DjangoValidationError:
            # Lost a race with a twin request carrying the same key: answer with the winner.
            twin = self.get_queryset().filter(idempotency_key=key).first() if key else None
            if twin is None or twin.order_id != order.pk or twin.kind != data["kind"]:
                raise
            return Response(OrderActionSerializer(twin).data, status=status.HTTP_200_OK)
        created = self.get_queryset().get(pk=created.pk)
        code = (
            status.HTTP_202_ACCEPTED
            if created.status == OrderAction.State.AWAITING_APPROVAL
            else status.HTTP_201_CREATED
        )
        return Response(OrderActionSerializer(created).data, status=code)

    def _decide(self, approve: bool) -> Response:
        target = self.get_object()  # another tenant's id is a 404 before any role check
        if not role_at_least(self.request, Role.LEAD):
            raise PermissionDenied("Only team leads and admins can approve or reject order actions.")
        payload = DecisionSerializer(data=self.request.data)
        payload.is_valid(raise_exception=True)
        try:
            actions.order_action_decide(
                action=target,
                actor=self.actor,
                approve=approve,
                note=payload.validated_data.get("note", ""),
            )
        except DjangoPermissionDenied as exc:
            raise PermissionDenied(str(exc)) from exc
        return Response(OrderActionSerializer(self.get_queryset().get(pk=target.pk)).data)

    @extend_schema(request=DecisionSerializer, responses=OrderActionSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request: TenantRequest, pk: str) -> Response:
        """Approve a request waiting for approval (team leads and admins); it is queued at once."""
        return self._decide(True)

    @extend_schema(request=DecisionSerializer, responses=OrderActionSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request: TenantRequest, pk: str) -> Response:
        """Reject a request waiting for approval (team leads and admins)."""
        return self._decide(False)

    @extend_schema(request=None, responses=OrderActionSerializer)
    @action(detail=True, methods=["post"])
    def retry(self, request: TenantRequest, pk: str) -> Response:
        """Run a failed action again, with the same idempotency key."""
        target = self.get_object()
        try:
            actions.order_action_retry(action=target, actor=self.actor)
        except DjangoPermissionDenied as exc:
            raise PermissionDenied(str(exc)) from exc
        return Response(OrderActionSerializer(self.get_queryset().get(pk=target.pk)).data)


def register(router) -> None:
    router.register("orders", OrderViewSet, basename="order")
    router.register("order-actions", OrderActionViewSet, basename="orderaction")
