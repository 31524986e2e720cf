"""A test client that goes through a WSGI application, as a WSGI server (granian) calls it.

Django's test Client calls its own handler, so it never runs helpdesk/wsgi.py and its
webhook fast path (integrations.hooks_wsgi). `WsgiClient` builds the same environ the test
Client would (Django's RequestFactory), calls `helpdesk.wsgi.application` (or any WSGI
app), reads the body and closes the response like a server, and answers a small response
object with the test Client's usual reading API (`status_code`, `content`, `json()`,
`response["Header"]`).

Like the test Client, it keeps `close_old_connections` off the request signals by default:
inside a test's transaction it would close the connection (autocommit differs). Pass
`lifecycle=True` (with `transactional_db`) to run them as in production.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from django.core import signals
from django.db import close_old_connections
from django.test import RequestFactory
from django.utils.datastructures import CaseInsensitiveMapping

WsgiApp = Callable[[dict, Callable[..., Any]], Iterable[bytes]]


class WsgiResponse:
    def __init__(self, status: str, header_list: list[tuple[str, str]], content: bytes):
        self.status_code = int(status.split(" ", 1)[0])
        self.status = status
        self.header_list = header_list
        self.headers = CaseInsensitiveMapping(dict(header_list))
        self.content = content

    def json(self) -> Any:
        return json.loads(self.content)

    def __getitem__(self, name: str) -> str:
        return self.headers[name]

    def has_header(self, name: str) -> bool:
        return name in self.headers

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)


def call(app: WsgiApp, environ: dict, *, lifecycle: bool = False) -> WsgiResponse:
    """Call `app` with `environ`, consume and close its answer like a WSGI server."""
    got: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        got["status"], got["headers"] = status, headers

    if not lifecycle:
        signals.request_started.disconnect(close_old_connections)
        signals.request_finished.disconnect(close_old_connections)
    try:
        result = app(environ, start_response)
        try:
            content = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
    finally:
        if not lifecycle:
            signals.request_started.connect(close_old_connections)
            signals.request_finished.connect(close_old_connections)
    return WsgiResponse(got["status"], got["headers"], content)


def default_app() -> WsgiApp:
    from helpdesk.wsgi import application

    return application


class WsgiClient:
    """`post`/`get`/`generic` like django.test.Client, through a WSGI application."""

    def __init__(self, app: WsgiApp | None = None, *, lifecycle: bool = False, **defaults: Any):
        self.app = app or default_app()
        self.lifecycle = lifecycle
        self.factory = RequestFactory(**defaults)

    def environ(self, method: str, path: str, data: Any = b"", content_type: str = "", **extra: Any) -> dict:
        if method == "POST":
            request = self.factory.post(path, data=data, content_type=content_type or "application/json", **extra)
        else:
            request = self.factory.generic(method, path, data=data, content_type=content_type, **extra)
        return request.environ

    def request(self, environ: dict) -> WsgiResponse:
        return call(self.app, environ, lifecycle=self.lifecycle)

    def post(self, path: str, data: Any = b"", content_type: str = "application/json", **extra: Any) -> WsgiResponse:
        return self.request(self.environ("POST", path, data, content_type, **extra))

    def get(self, path: str, **extra: Any) -> WsgiResponse:
        return self.request(self.environ("GET", path, **extra))

    def generic(self, method: str, path: str, data: Any = b"", content_type: str = "", **extra: Any) -> WsgiResponse:
        return self.request(self.environ(method, path, data, content_type, **extra))
