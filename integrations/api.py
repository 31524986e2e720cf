"""REST resource: store connections (`/api/v1/connections/`), admins and API tokens only.

Create answers 201 with `id`, `webhook_url` and `webhook_secret` — the secret this once.
List and retrieve never carry secrets or credentials. Actions: `rotate-secret` (the new
secret, once; the previous one verifies for another hour), `credentials`, `disconnect`.
"""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.routers import DefaultRouter

from helpdesk.api.base import TenantRequest, TenantScopedViewSet
from helpdesk.api.pagination import CursorPagination
from helpdesk.models import Role
from integrations import services
from integrations.models import Connection, Platform


class ConnectionSerializer(serializers.ModelSerializer):
    webhook_url = serializers.SerializerMethodField()
    has_credentials = serializers.SerializerMethodField()
    has_public_key = serializers.SerializerMethodField()
    previous_secret_valid_until = serializers.SerializerMethodField(
        help_text="After a rotation, until when the previous secret still verifies."
    )

    class Meta:
        model = Connection
        fields = [
            "id",
            "platform",
            "name",
            "shop_domain",
            "api_url",
            "status",
            "webhook_url",
            "has_credentials",
            "has_public_key",
            "previous_secret_valid_until",
            "created_at",
            "disconnected_at",
            "last_delivery_at",
            "last_reconciled_at",
        ]
        read_only_fields = fields

    def get_webhook_url(self, obj: Connection) -> str:
        return services.webhook_url(obj)

    def get_has_credentials(self, obj: Connection) -> bool:
        return bool(obj.credentials_encrypted)

    def get_has_public_key(self, obj: Connection) -> bool:
        return bool(obj.public_key_pem)

    def get_previous_secret_valid_until(self, obj: Connection) -> str | None:
        expires = obj.previous_secret_expires_at
        if expires is None or expires <= timezone.now() or not obj.previous_secret_encrypted:
            return None
        return serializers.DateTimeField().to_representation(expires)


class ConnectionCreatedSerializer(ConnectionSerializer):
    webhook_secret = serializers.CharField(read_only=True, help_text="Shown this once only.")

    class Meta(ConnectionSerializer.Meta):
        fields = [*ConnectionSerializer.Meta.fields, "webhook_secret"]
        read_only_fields = fields


class ConnectionCreateSerializer(serializers.Serializer):
    platform = serializers.ChoiceField(choices=Platform.choices)
    name = serializers.CharField(max_length=100)
    shop_domain = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=255,
        help_text="Shopify: the myshopify.com domain.",
    )
    api_url = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=200,
        help_text="WooCommerce/Magento: the store URL.",
    )
    credentials = serializers.DictField(
        child=serializers.CharField(allow_blank=True, max_length=500),
        required=False,
        help_text=(
            "Shopify {access_token}; WooCommerce {consumer_key, consumer_secret}; Magento {access_token}; generic {}."
        ),
    )
    webhook_secret = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=200,
        help_text="Shopify: the app's client secret (or signing key). Omit to have one generated.",
    )
    public_key_pem = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=10000,
        help_text="Adobe Commerce webhook public key.",
    )


class RotateSecretSerializer(serializers.Serializer):
    webhook_secret = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=200,
        help_text="The new secret; omit to generate one.",
    )


class CredentialsSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, max_length=100)
    credentials = serializers.DictField(child=serializers.CharField(allow_blank=True, max_length=500), required=False)
    public_key_pem = serializers.CharField(required=False, allow_blank=True, max_length=10000)


class SecretSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    webhook_url = serializers.CharField()
    webhook_secret = serializers.CharField(help_text="Shown this once only.")
    previous_secret_valid_until = serializers.DateTimeField()


class ConnectionPagination(CursorPagination):
    ordering = "-created_at"


class ConnectionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """The workspace's store connections. Admins (and API tokens) only."""

    queryset = Connection.objects.all()
    serializer_class = ConnectionSerializer
    pagination_class = ConnectionPagination
    required_role = Role.ADMIN
    # UUIDs; a malformed id reaches get_object and is the same 404 as a missing one.
    lookup_value_regex = r"[^/.]+"

    @extend_schema(request=ConnectionCreateSerializer, responses={201: ConnectionCreatedSerializer})
    def create(self, request: TenantRequest) -> Response:
        payload = ConnectionCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        connection, secret = services.connection_create(
            tenant=request.tenant, actor=self.actor, **payload.validated_data
        )
        data = dict(ConnectionSerializer(connection).data, webhook_secret=secret)
        return Response(data, status=status.HTTP_201_CREATED)

    @extend_schema(request=RotateSecretSerializer, responses=SecretSerializer)
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: TenantRequest, pk: str) -> Response:
        connection = self.get_object()
        payload = RotateSecretSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        secret = services.connection_rotate_secret(
            connection=connection,
            actor=self.actor,
            new_secret=payload.validated_data.get("webhook_secret", ""),
        )
        return Response(
            {
                "id": str(connection.pk),
                "webhook_url": services.webhook_url(connection),
                "webhook_secret": secret,
                "previous_secret_valid_until": serializers.DateTimeField().to_representation(
                    connection.previous_secret_expires_at
                ),
            }
        )

    @extend_schema(request=CredentialsSerializer, responses=ConnectionSerializer)
    @action(detail=True, methods=["post"])
    def credentials(self, request: TenantRequest, pk: str) -> Response:
        connection = self.get_object()
        payload = CredentialsSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        services.connection_update_credentials(
            connection=connection,
            actor=self.actor,
            credentials=data.get("credentials"),
            public_key_pem=data.get("public_key_pem"),
            name=data.get("name"),
        )
        return Response(ConnectionSerializer(connection).data)

    @extend_schema(request=None, responses=ConnectionSerializer)
    @action(detail=True, methods=["post"])
    def disconnect(self, request: TenantRequest, pk: str) -> Response:
        connection = services.connection_disconnect(connection=self.get_object(), actor=self.actor)
        return Response(ConnectionSerializer(connection).data)


def register(router: DefaultRouter) -> None:
    router.register("connections", ConnectionViewSet, basename="connection")
