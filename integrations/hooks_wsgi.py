"""The webhook fast path: `POST /hooks/<platform>/<connection-uuid>/` without Django's
URL resolver and middleware stack.

helpdesk.wsgi sends every request whose PATH_INFO is exactly a webhook URL here; all
others (and these too, when something below says so) go to Django's handler unchanged.
The view logic is the same function (`receivers.handle`) the Django-routed view calls.

What Django's handler and MIDDLEWARE (see REVIEWED_MIDDLEWARE_SHA256) do for a webhook, and what
this does instead:

- request_started / request_finished are sent as WSGIHandler sends them (same sender), so
  close_old_connections honours CONN_MAX_AGE and health checks and replaces broken
  connections; the response is closed before it is handed to the server as a list (see
  `_as_list`), which sends request_finished.
- A Host not in ALLOWED_HOSTS (CommonMiddleware's get_host()), an HTTPS redirect
  (SecurityMiddleware), PREPEND_WWW, DISALLOWED_USER_AGENTS or a SCRIPT_NAME prefix: the
  request goes to Django, which answers it as it always has (400 JSON, 301, …).
- BodySizeLimitMiddleware: the same function (`body_size_error`), before the body is read.
- Responses get what XFrameOptionsMiddleware, CommonMiddleware (Content-Length) and
  SecurityMiddleware add, from those middlewares' own code (a body-size refusal only
  SecurityMiddleware's, as in the stack); 4xx/5xx are logged on `django.request` like
  Django does.
- An exception: 400/403/404 classes as Django answers them (JSON on /hooks/); anything
  else is logged and answered with the JSON 500 of handler500, never a debug page.
- Sessions, CSRF (the view is exempt), auth, messages, htmx, tenant, axes and WhiteNoise
  do nothing for a webhook: they are skipped. (A session cookie a sender might send is
  neither read nor expired.)
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core import signals
from django.core.exceptions import BadRequest, DisallowedHost, PermissionDenied, SuspiciousOperation
from django.core.handlers.exception import response_for_exception
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest
from django.http import Http404, HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.security import SecurityMiddleware
from django.test.signals import setting_changed
from django.utils.log import log_response

from helpdesk.middleware import body_size_error
from helpdesk.views.core import error_500
from integrations import receivers

# The MIDDLEWARE this module was checked against, as the SHA-256 of its dotted paths joined
# by newlines (tests compare): a change there needs a look at whether webhooks need it too.
REVIEWED_MIDDLEWARE_SHA256 = "6520d713f33f5a565f29c3bd4181324ff8abac534b748d730fb6bd527fdb3664"

# What hooks_urls routes, as Django's path converters match it (the uuid converter takes
# lower-case hex only). Anything else (no trailing slash, upper case) is Django's to answer.
HOOK_PATH = re.compile(
    "/hooks/(" + "|".join(re.escape(p) for p in receivers.RECEIVERS) + ")/"
    r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/\Z"
)

# Exceptions Django answers with 400/403/404 (handler400/403/404: JSON on /hooks/).
_CLIENT_ERRORS = (Http404, PermissionDenied, SuspiciousOperation, MultiPartParserError, BadRequest)

StartResponse = Callable[..., Any]


def _unused(request: HttpRequest) -> HttpResponse:  # pragma: no cover - never called
    raise AssertionError("only the middlewares' process_request/process_response are used")


class HooksApplication:
    """WSGI application: webhook URLs handled here, everything else by `django_app`; whole
    (not streaming) responses of both go to the server as one-item lists (`_as_list`)."""

    def __init__(self, django_app: Callable[[dict, StartResponse], Iterable[bytes]]):
        self.django_app = django_app
        self._load_middleware()
        # SecurityMiddleware reads its settings once; tests change them.
        setting_changed.connect(self._load_middleware)

    def _load_middleware(self, **kwargs: Any) -> None:
        self.security = SecurityMiddleware(_unused)
        self.xframe = XFrameOptionsMiddleware(_unused)

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        match = HOOK_PATH.match(environ.get("PATH_INFO", ""))
        if match is None:
            return _as_list(self.django_app(environ, start_response))
        request = WSGIRequest(environ)
        if not self._takes(request):
            return _as_list(self.django_app(environ, start_response))
        signals.request_started.send(sender=WSGIHandler, environ=environ)
        response = self._respond(request, match[1], uuid.UUID(match[2]))
        response._handler_class = WSGIHandler  # type: ignore[attr-defined]  # close() sends request_finished
        response._resource_closers.append(request.close)  # type: ignore[attr-defined]
        start_response(
            f"{response.status_code} {response.reason_phrase}",
            [*response.items(), *(("Set-Cookie", c.OutputString()) for c in response.cookies.values())],
        )
        return _as_list(response)

    def _takes(self, request: WSGIRequest) -> bool:
        """Whether this path answers as Django would; otherwise Django answers (rare cases)."""
        if request.path != request.path_info or settings.PREPEND_WWW or settings.DISALLOWED_USER_AGENTS:
            return False
        try:
            request.get_host()
        except DisallowedHost:
            return False
        return self.security.process_request(request) is None

    def _respond(self, request: WSGIRequest, platform: str, connection_uuid: uuid.UUID) -> HttpResponse:
        # What Django's middlewares add on the way out, in their order. A body-size refusal
        # comes from BodySizeLimitMiddleware, which sits inside SecurityMiddleware only.
        response = body_size_error(request)
        if response is None:
            try:
                response = receivers.handle(request, platform, connection_uuid)
            except Exception as exc:
                response = _failure(request, exc)
            self.xframe.process_response(request, response)
            if not response.has_header("Content-Length"):  # CommonMiddleware
                response.headers["Content-Length"] = str(len(response.content))
        self.security.process_response(request, response)
        if response.status_code >= 400:
            log_response("%s: %s", response.reason_phrase, request.path, response=response, request=request)
        return response


def _as_list(response: Any) -> Iterable[bytes]:
    """A whole (not streaming) response as a one-item list, closed: the server then writes
    it in one piece. granian iterates any other iterable from its own side while holding
    the GIL, which the process's other request threads then wait for."""
    if isinstance(response, HttpResponse):
        content = response.content
        response.close()
        return [content]
    return response


def _failure(request: WSGIRequest, exc: Exception) -> HttpResponse:
    """What Django answers for an exception a view raised, except that an unexpected one is
    always the JSON 500 (never the DEBUG page): platforms are programs."""
    if isinstance(exc, _CLIENT_ERRORS):
        return response_for_exception(request, exc)
    signals.got_request_exception.send(sender=None, request=request)
    response = error_500(request)
    log_response("%s: %s", response.reason_phrase, request.path, response=response, request=request, exception=exc)
    return response
