"""What the base layout needs on every page."""

from __future__ import annotations

from functools import partial

from django.http import HttpRequest


def _settings_links(request: HttpRequest, tenant) -> list[tuple[str, str, str]]:
    from django.urls import reverse

    from tickets.views_sla import settings_links

    extra = settings_links(tenant.slug)
    membership = getattr(request, "membership", None)
    if membership is not None and membership.has_role("admin"):
        extra = [*extra, ("connections", "Store connections", reverse("settings_connections", args=[tenant.slug]))]
    return extra


def shell(request: HttpRequest) -> dict:
    """The tenant and the member; the settings pages' extra links are computed only when a
    template reads them (templates call callables). The main navigation is built by
    base.html's {% shell_nav %} (tickets/templatetags/shell_ui.py)."""
    tenant = getattr(request, "tenant", None)
    return {
        "settings_extra_links": partial(_settings_links, request, tenant) if tenant is not None else [],
        "tenant": tenant,
        "membership": getattr(request, "membership", None),
    }
