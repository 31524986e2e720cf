"""Core API resources: who am I, members, API tokens, the audit log."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from helpdesk import services
from helpdesk.api import serializers as s
from helpdesk.api.base import TenantRequest, TenantScopedViewSet
from helpdesk.models import ApiToken, AuditLog, Membership, Role, User


class MeViewSet(TenantScopedViewSet):
    queryset = Membership.objects.none()
    pagination_class = None

    @extend_schema(responses=s.MeSerializer)
    def list(self, request: TenantRequest) -> Response:
        tenant = request.tenant
        user = request.user if request.membership else None
        return Response(
            {
                "tenant": {
                    "id": tenant.pk,
                    "slug": tenant.slug,
                    "name": tenant.name,
                    "timezone": tenant.timezone,
                },
                "role": request.role,
                "user": {"id": user.pk, "email": user.email, "name": user.name} if isinstance(user, User) else None,
                "token": request.auth.display_prefix if isinstance(request.auth, ApiToken) else None,
            }
        )


class MemberViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    queryset = Membership.objects.all()
    serializer_class = s.MembershipSerializer
    required_write_role = Role.ADMIN

    def safely_get_queryset(self, queryset):
        return queryset.select_related("user")

    @extend_schema(request=s.MembershipRoleSerializer, responses=s.MembershipSerializer)
    def partial_update(self, request: TenantRequest, pk: str) -> Response:
        membership = self.get_object()
        payload = s.MembershipRoleSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        services.membership_set_role(membership=membership, role=payload.validated_data["role"], actor=self.actor)
        return Response(s.MembershipSerializer(membership).data)


class ApiTokenViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """API tokens of this workspace. Admins only; the secret is returned once, on create."""

    queryset = ApiToken.objects.all()
    serializer_class = s.ApiTokenSerializer
    required_role = Role.ADMIN

    @extend_schema(request=s.ApiTokenCreateSerializer, responses={201: s.ApiTokenCreatedSerializer})
    def create(self, request: TenantRequest) -> Response:
        payload = s.ApiTokenCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        token, plaintext = services.api_token_create(
            tenant=request.tenant, name=payload.validated_data["name"], actor=self.actor
        )
        data = dict(s.ApiTokenSerializer(token).data, token=plaintext)
        return Response(data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=s.ApiTokenSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request: TenantRequest, pk: str) -> Response:
        token = services.api_token_revoke(token=self.get_object(), actor=self.actor)
        return Response(s.ApiTokenSerializer(token).data)


class AuditLogViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """The workspace's audit trail, newest first. Admins only."""

    queryset = AuditLog.objects.all()
    serializer_class = s.AuditLogSerializer
    required_role = Role.ADMIN

    def safely_get_queryset(self, queryset):
        action_name = self.request.query_params.get("action")
        if action_name:
            queryset = queryset.filter(action=action_name)
        return queryset
