from rest_framework.throttling import SimpleRateThrottle

from helpdesk.models import ApiToken


class TokenRateThrottle(SimpleRateThrottle):
    """Requests per token (or per signed-in user, or per IP) in a sliding window."""

    scope = "token"

    def get_cache_key(self, request, view):
        if isinstance(request.auth, ApiToken):
            ident = f"t{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"u{request.user.pk}"
        else:
            ident = f"ip{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
