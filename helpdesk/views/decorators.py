from __future__ import annotations

import functools
from collections.abc import Callable

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from helpdesk.models import Role


def role_required(role: str) -> Callable:
    """Allow a tenant view only to members holding at least `role` (403 otherwise)."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            membership = request.membership  # type: ignore[attr-defined]
            if membership is None or not membership.has_role(role):
                # The page's 403 says "your role doesn't allow it"; this says who may.
                raise PermissionDenied(f"This page is for {Role(role).label.lower()}s and above.")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
