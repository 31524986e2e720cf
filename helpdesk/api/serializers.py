from rest_framework import serializers

from helpdesk.models import ApiToken, AuditLog, Membership, Role


class UserSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    name = serializers.CharField()


class MembershipSerializer(serializers.ModelSerializer):
    user = UserSummarySerializer(read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "user", "role", "availability", "created_at"]
        read_only_fields = ["id", "user", "availability", "created_at"]


class MembershipRoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


class ApiTokenSerializer(serializers.ModelSerializer):
    prefix = serializers.CharField(source="display_prefix", read_only=True)
    active = serializers.BooleanField(source="is_active", read_only=True)

    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "active", "created_at", "last_used_at", "revoked_at"]
        read_only_fields = fields


class ApiTokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    token = serializers.CharField(read_only=True, help_text="Shown this once only.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]
        read_only_fields = fields


class AuditLogSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_label")
    target = serializers.SerializerMethodField()

    class Meta:
        model = AuditLog
        fields = [
            "id",
            "created_at",
            "actor_type",
            "actor",
            "action",
            "target",
            "changes",
            "ip_address",
        ]
        read_only_fields = fields

    def get_target(self, obj) -> dict:
        return {"type": obj.target_type, "id": obj.target_id, "label": obj.target_label}


class MeSerializer(serializers.Serializer):
    tenant = serializers.DictField()
    role = serializers.CharField()
    user = UserSummarySerializer(allow_null=True)
    token = serializers.CharField(allow_null=True)
