"""Request-level plumbing: tenant resolution for /t/<slug>/ URLs and body-size limits."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from helpdesk.access_cache import membership_for
from helpdesk.tenancy import _current_tenant_id

# Paths whose clients are programs: they get JSON errors (413) rather than HTML pages.
_MACHINE_PREFIXES = ("/api/", "/hooks/")


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    """The one JSON error shape of the public contract."""
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def body_size_error(request: HttpRequest) -> HttpResponse | None:
    """The answer for a machine path whose declared body length is invalid (400) or over
    MAX_BODY_BYTES (413), before the body is read; None when the request may go on.

    BodySizeLimitMiddleware and the webhook fast path (integrations.hooks_wsgi) share it.
    A missing length is 0: Django then reads no body at all (so a chunked body reads empty).
    """
    if not request.path.startswith(_MACHINE_PREFIXES):
        return None
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return JsonResponse(error_body("bad_request", "Invalid Content-Length header."), status=400)
    if length > settings.MAX_BODY_BYTES:
        return JsonResponse(
            error_body(
                "payload_too_large",
                f"Request body is {length} bytes; the limit is {settings.MAX_BODY_BYTES} bytes.",
            ),
            status=413,
        )
    return None


class BodySizeLimitMiddleware:
    """Answer 413 before reading a body whose declared length is over MAX_BODY_BYTES."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return body_size_error(request) or self.get_response(request)


class TenantMiddleware:
    """Resolve `request.tenant` and `request.membership` once for /t/<tenant_slug>/ views.

    An unknown slug and a tenant the user does not belong to are the same 404, so the
    existence of other stores never leaks. Anonymous users are sent to the login page.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.tenant = None  # type: ignore[attr-defined]
        request.membership = None  # type: ignore[attr-defined]
        token = _current_tenant_id.set(None)
        try:
            return self.get_response(request)
        finally:
            _current_tenant_id.reset(token)
            timezone.deactivate()

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> HttpResponse | None:
        slug = view_kwargs.get("tenant_slug")
        if slug is None:
            return None
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        membership = membership_for(request.user, slug)
        if membership is None:
            raise Http404("No such workspace")
        request.tenant = membership.tenant  # type: ignore[attr-defined]
        request.membership = membership  # type: ignore[attr-defined]
        _current_tenant_id.set(membership.tenant_id)
        # Pages show times in the workspace's time zone (Settings → General), not UTC.
        try:
            timezone.activate(zoneinfo.ZoneInfo(membership.tenant.timezone))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            timezone.deactivate()
        return None
