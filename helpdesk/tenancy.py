"""Tenant context for requests and tasks, and the access helpers that scope every lookup.

A request gets `request.tenant` and `request.membership` once, in TenantMiddleware. A
Celery task receives `tenant_id` explicitly and enters `tenant_context(tenant_id)`.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Callable, Iterator
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Exists, Model, OuterRef, Q, QuerySet
from django.http import Http404, HttpRequest
from django_htmx.middleware import HtmxDetails

from helpdesk.models import Membership, Tenant, User

_current_tenant_id: contextvars.ContextVar[int | None] = contextvars.ContextVar("tenant_id", default=None)


class AuthedHttpRequest(HttpRequest):
    """Static type of a request in a `login_required` view: the user is a real User."""

    user: User
    htmx: HtmxDetails


class TenantHttpRequest(AuthedHttpRequest):
    """Static type of a request in a /t/<tenant_slug>/ view, after TenantMiddleware."""

    tenant: Tenant
    membership: Membership


def current_tenant_id() -> int | None:
    """The tenant the current request or task works for, or None outside any."""
    return _current_tenant_id.get()


@contextlib.contextmanager
def tenant_context(tenant_id: int) -> Iterator[None]:
    token = _current_tenant_id.set(tenant_id)
    try:
        yield
    finally:
        _current_tenant_id.reset(token)


def tenant_task(func: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a Celery task body that takes `tenant_id` as its first argument.

    Loads the tenant (a deleted tenant makes the task a no-op) and runs the body inside
    `tenant_context`, passing the Tenant instance instead of the id.
    """

    @functools.wraps(func)
    def wrapper(tenant_id: int, *args: Any, **kwargs: Any) -> Any:
        tenant = Tenant.objects.filter(pk=tenant_id).first()
        if tenant is None:
            return None
        with tenant_context(tenant.pk):
            return func(tenant, *args, **kwargs)

    return wrapper


def scoped[M: Model](queryset: QuerySet[M], tenant: Tenant) -> QuerySet[M]:
    """Filter any tenant-owned queryset to one tenant."""
    return queryset.filter(tenant=tenant)


def get_for_tenant[M: Model](queryset: QuerySet[M], tenant: Tenant, **lookup: Any) -> M:
    """Fetch one object of `tenant` or raise Http404 — identical for foreign and missing ids."""
    try:
        return queryset.get(tenant=tenant, **lookup)
    except (ObjectDoesNotExist, ValueError, TypeError) as exc:
        raise Http404("Not found") from exc


def tenants_with_due(model: type[Model], *conditions: Q) -> list[int]:
    """Ids of tenants with a `model` row matching any of `conditions`, in id order.

    One EXISTS probe per tenant and condition, each served by the model's tenant-led partial
    index (the conditions must imply the index's predicate), so the beat sweeps' cost follows
    the number of tenants, not of rows, and they open transactions only where there is work.
    """
    probes = [Exists(model._default_manager.filter(condition, tenant_id=OuterRef("pk"))) for condition in conditions]
    due = Q()
    for probe in probes:
        due |= Q(probe)
    return list(Tenant.objects.filter(due).order_by("id").values_list("id", flat=True))
