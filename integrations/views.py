"""Settings → Store connections (admins only): list, connect, details, credentials, secret
rotation, disconnection, store health with dead letters and replay.

Thin views: resolve the tenant's object (404 for foreign, missing or malformed ids alike),
let a form parse the input, call a service, render or redirect. A new webhook secret is
shown in the response to the POST that made it, never stored for a later page.
"""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.forms import Form
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from helpdesk.models import Role
from helpdesk.services import actor_from_request
from helpdesk.tenancy import TenantHttpRequest, get_for_tenant
from helpdesk.views.decorators import role_required
from integrations import services
from integrations.forms import (
    PLATFORM_HELP,
    ConnectionCreateForm,
    ConnectionCredentialsForm,
    RotateSecretForm,
    credentials_from,
)
from integrations.models import Connection, Platform, WebhookDelivery

ACTIVE = "connections"


def get_connection_for(request: TenantHttpRequest, pk: str) -> Connection:
    """The request tenant's connection `pk`, or 404 (foreign, missing and malformed alike)."""
    try:
        key = uuid.UUID(pk)
    except ValueError:
        raise Http404("Not found") from None
    return get_for_tenant(Connection.objects.select_related("tenant"), request.tenant, pk=key)


def _apply_errors(form: Form, exc: ValidationError) -> None:
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc.messages)
        return
    for name, errors in exc.message_dict.items():
        target = name if name in form.fields else None
        if name == "credentials" and any(f.startswith("cred_") for f in form.fields):
            target = None
        form.add_error(target, errors)


def _detail(
    request: TenantHttpRequest,
    connection: Connection,
    revealed: str | None = None,
    rotated: bool = False,
) -> HttpResponse:
    expires = connection.previous_secret_expires_at
    context = {
        "connection": connection,
        "rotated": rotated,
        "previous_valid_until": expires if expires and expires > timezone.now() else None,
        "webhook_url": services.webhook_url(connection),
        "revealed": revealed,
        "rotate_form": RotateSecretForm(),
        "has_credentials": bool(connection.credentials_encrypted),
        "active": ACTIVE,
    }
    return render(request, "integrations/connection_detail.html", context)


@role_required(Role.ADMIN)
def connection_list(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    dead = (
        WebhookDelivery.objects.filter(
            tenant_id=OuterRef("tenant_id"),
            connection=OuterRef("pk"),
            status=WebhookDelivery.State.DEAD,
        )
        .order_by()
        .values("connection")
        .annotate(n=Count("id"))
        .values("n")
    )
    connections = (
        Connection.objects.filter(tenant=request.tenant)
        .annotate(dead_letters=Subquery(dead, output_field=IntegerField()))
        .order_by("status", "name", "created_at")
    )
    return render(request, "integrations/connections.html", {"connections": connections, "active": ACTIVE})


@role_required(Role.ADMIN)
def connection_create(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    platform = request.POST.get("platform") or request.GET.get("platform", "")
    if platform not in Platform.values:
        choices = [(value, label, PLATFORM_HELP[value]) for value, label in Platform.choices]
        return render(request, "integrations/connection_new.html", {"platforms": choices, "active": ACTIVE})
    form = ConnectionCreateForm(request.POST or None, platform=platform)
    if request.method == "POST" and form.is_valid():
        try:
            connection, secret = services.connection_create(
                tenant=request.tenant, actor=actor_from_request(request), **form.service_kwargs()
            )
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, f"“{connection.name}” is connected.")
            return _detail(request, connection, revealed=secret)
    context = {
        "form": form,
        "platform": platform,
        "platform_label": Platform(platform).label,
        "active": ACTIVE,
    }
    return render(request, "integrations/connection_form.html", context)


@role_required(Role.ADMIN)
def connection_detail(request: TenantHttpRequest, tenant_slug: str, pk: str) -> HttpResponse:
    return _detail(request, get_connection_for(request, pk))


@role_required(Role.ADMIN)
def connection_credentials(request: TenantHttpRequest, tenant_slug: str, pk: str) -> HttpResponse:
    connection = get_connection_for(request, pk)
    if not connection.is_active:
        messages.error(request, "This connection is disconnected.")
        return redirect("settings_connection_detail", tenant_slug=tenant_slug, pk=connection.pk)
    form = ConnectionCredentialsForm(
        request.POST or None, platform=connection.platform, initial={"name": connection.name}
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.connection_update_credentials(
                connection=connection,
                actor=actor_from_request(request),
                name=form.cleaned_data["name"],
                credentials=credentials_from(form.cleaned_data),
                public_key_pem=form.cleaned_data.get("public_key_pem"),
            )
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, "Connection settings saved.")
            return redirect("settings_connection_detail", tenant_slug=tenant_slug, pk=connection.pk)
    context = {"connection": connection, "form": form, "active": ACTIVE}
    return render(request, "integrations/connection_credentials.html", context)


@require_POST
@role_required(Role.ADMIN)
def connection_rotate_secret(request: TenantHttpRequest, tenant_slug: str, pk: str) -> HttpResponse:
    connection = get_connection_for(request, pk)
    form = RotateSecretForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError("Check the new secret.")
        secret = services.connection_rotate_secret(
            connection=connection,
            actor=actor_from_request(request),
            new_secret=form.cleaned_data["new_secret"],
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("settings_connection_detail", tenant_slug=tenant_slug, pk=connection.pk)
    messages.success(request, "New webhook secret made. The previous one keeps working for an hour.")
    return _detail(request, connection, revealed=secret, rotated=True)


@require_POST
@role_required(Role.ADMIN)
def connection_disconnect(request: TenantHttpRequest, tenant_slug: str, pk: str) -> HttpResponse:
    connection = get_connection_for(request, pk)
    services.connection_disconnect(connection=connection, actor=actor_from_request(request))
    messages.success(request, f"“{connection.name}” is disconnected. Its orders stay as history.")
    return redirect("settings_connection_detail", tenant_slug=tenant_slug, pk=connection.pk)


@role_required(Role.ADMIN)
def connection_health(request: TenantHttpRequest, tenant_slug: str, pk: str) -> HttpResponse:
    connection = get_connection_for(request, pk)
    context = {
        "connection": connection,
        "health": services.connection_health(connection=connection),
        "active": ACTIVE,
    }
    template = "integrations/connection_health.html"
    if request.htmx:
        template += "#figures"
    return render(request, template, context)


@require_POST
@role_required(Role.ADMIN)
def delivery_replay(request: TenantHttpRequest, tenant_slug: str, pk: str, delivery_pk: int) -> HttpResponse:
    connection = get_connection_for(request, pk)
    delivery = get_for_tenant(
        WebhookDelivery.objects.select_related("connection", "connection__tenant"),
        request.tenant,
        pk=delivery_pk,
        connection=connection,
    )
    try:
        services.delivery_replay(delivery=delivery, actor=actor_from_request(request))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Delivery {delivery.pk} ({delivery.topic}) is queued again.")
    return redirect("settings_connection_health", tenant_slug=tenant_slug, pk=connection.pk)
