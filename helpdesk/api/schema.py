"""Describe our authentication classes in the OpenAPI schema."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "helpdesk.api.auth.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A workspace API token (Settings → API tokens), sent as `Authorization: Bearer sd_…`.",
        }


class SessionScheme(OpenApiAuthenticationExtension):
    target_class = "helpdesk.api.auth.TenantSessionAuthentication"
    name = "sessionAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": "sessionid",
            "description": "Browser session; name the workspace with the X-Tenant header.",
        }
