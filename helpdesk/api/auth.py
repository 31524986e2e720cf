"""API authentication: tenant bearer tokens, or the browser session."""

from __future__ import annotations

from rest_framework.authentication import (
    BaseAuthentication,
    SessionAuthentication,
    get_authorization_header,
)
from rest_framework.exceptions import AuthenticationFailed

from helpdesk.models import ApiToken
from helpdesk.services import api_token_authenticate


class ApiClient:
    """The principal behind an API token: authenticated, tied to exactly one tenant."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    pk = None
    id = None

    def __init__(self, token: ApiToken):
        self.token = token
        self.tenant = token.tenant

    def __str__(self) -> str:
        return f"token:{self.token.prefix}"


class BearerTokenAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            raise AuthenticationFailed("Malformed Authorization header: use “Bearer <token>”.")
        try:
            raw = parts[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise AuthenticationFailed("Malformed API token.") from exc
        token = api_token_authenticate(raw)
        if token is None:
            raise AuthenticationFailed("Invalid or revoked API token.")
        return ApiClient(token), token

    def authenticate_header(self, request) -> str:
        # Makes DRF answer 401 (not 403) to unauthenticated API requests.
        return 'Bearer realm="api"'


class TenantSessionAuthentication(SessionAuthentication):
    """Session auth for the browser (CSRF enforced); the tenant comes from X-Tenant."""
