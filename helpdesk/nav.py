"""The main navigation, built in Python once per page (it is on every page of the app).

Each entry: the URL name it links to, its label, its icon, and the URL names (or prefixes
ending in "_") that mark it as the current section.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from django.http import HttpRequest
from django.urls import NoReverseMatch, get_script_prefix, get_urlconf, reverse
from django.utils.safestring import SafeString, mark_safe

ICONS: dict[str, SafeString] = {
    "queue": mark_safe(  # noqa: S308 - constant markup
        '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true"><path d="M4 6h16M4 12h10M4 18h7"/></svg>'
    ),
    "tickets": mark_safe(  # noqa: S308 - constant markup
        '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true"><path d="M4 7a2 2 0 0 1 2-2h12a2 2 0 0 1 2 2v3a2 2 0 0 0 0 4v3a2 2 0 0 1-2 2H6a2 2 0 0 1-2-2v-3a2 2 0 0 0 0-4z"/></svg>'
    ),
    "customers": mark_safe(  # noqa: S308 - constant markup
        '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true"><circle cx="9" cy="8" r="3.5"/><path d="M2.5 20a6.5 6.5 0 0 1 13 0M16 4.5a3.5 3.5 0 0 1 0 7M18 14.5a6.5 6.5 0 0 1 3.5 5.5"/></svg>'
    ),
    "playbooks": mark_safe(  # noqa: S308 - constant markup
        '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true"><path d="M5 4h11a3 3 0 0 1 3 3v13H8a3 3 0 0 1-3-3z"/><path d="M9 9l2 2 4-4"/></svg>'
    ),
    "reports": mark_safe(  # noqa: S308 - constant markup
        '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true"><path d="M4 20V10M10 20V4M16 20v-7M22 20H2"/></svg>'
    ),
    "settings": mark_safe(  # noqa: S308 - constant markup
        '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true"><circle cx="12" cy="12" r="3"/><path d="M19.4 15a1.7 1.7 0 0 0 .3 1.8l.1.1a2 2 0 1 1-2.8 2.8l-.1-.1a1.7 1.7 0 0 0-1.8-.3 1.7 1.7 0 0 0-1 1.5V21a2 2 0 1 1-4 0v-.1a1.7 1.7 0 0 0-1.1-1.5 1.7 1.7 0 0 0-1.8.3l-.1.1a2 2 0 1 1-2.8-2.8l.1-.1a1.7 1.7 0 0 0 .3-1.8 1.7 1.7 0 0 0-1.5-1H3a2 2 0 1 1 0-4h.1a1.7 1.7 0 0 0 1.5-1.1 1.7 1.7 0 0 0-.3-1.8l-.1-.1a2 2 0 1 1 2.8-2.8l.1.1a1.7 1.7 0 0 0 1.8.3H9a1.7 1.7 0 0 0 1-1.5V3a2 2 0 1 1 4 0v.1a1.7 1.7 0 0 0 1 1.5 1.7 1.7 0 0 0 1.8-.3l.1-.1a2 2 0 1 1 2.8 2.8l-.1.1a1.7 1.7 0 0 0-.3 1.8V9a1.7 1.7 0 0 0 1.5 1H21a2 2 0 1 1 0 4h-.1a1.7 1.7 0 0 0-1.5 1z"/></svg>'
    ),
    "escalations": mark_safe(  # noqa: S308 - constant markup
        '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true"><path d="M12 19V5M5 12l7-7 7 7"/></svg>'
    ),
}

# (key, label, url name, current when the view's URL name is one of / starts with these)
NAV: list[tuple[str, str, str, tuple[str, ...]]] = [
    ("queue", "Queue", "queue", ("queue",)),
    ("tickets", "Tickets", "tickets", ("tickets", "ticket_")),
    ("escalations", "Escalations", "escalations", ("escalations", "escalation_")),
    ("customers", "Customers", "customers", ("customers", "customer_")),
    ("playbooks", "Playbooks", "playbooks", ("playbooks", "playbook_")),
    ("reports", "Reports", "reports", ("reports", "reports_")),
    ("settings", "Settings", "settings_home", ("settings_",)),
]


@dataclass(frozen=True, slots=True)
class NavLink:
    key: str
    label: str
    url: str
    icon: SafeString
    current: bool


def _is_current(url_name: str, marks: tuple[str, ...]) -> bool:
    return any(url_name == m or (m.endswith("_") and url_name.startswith(m)) for m in marks)


def nav_links(request: HttpRequest, tenant_slug: str) -> list[NavLink]:
    match = getattr(request, "resolver_match", None)
    url_name = (match.url_name or "") if match else ""
    links = []
    for key, label, name, marks in NAV:
        try:
            url = tenant_url(name, tenant_slug)
        except NoReverseMatch:  # a section whose app is not installed
            continue
        links.append(NavLink(key, label, url, ICONS[key], _is_current(url_name, marks)))
    return links


# --- Cached reversing -----------------------------------------------------------------------
# reverse() costs ~40 µs; a page links to the same few named URLs of one workspace (and of
# one ticket) many times. The URLconf does not change while a process runs, so a URL is
# reversed once per (urlconf, script prefix, name, workspace) and per-ticket URLs are built
# from the prefix and suffix around the ticket number.

_NUMBER = 987654321  # a stand-in ticket number: reversed once, then replaced


@lru_cache(maxsize=4096)
def _cached_reverse(urlconf: str | None, prefix: str, name: str, args: tuple) -> str:
    return reverse(name, args=args)


def site_url(name: str) -> str:
    """reverse(name) for a URL without arguments, remembered."""
    return _cached_reverse(get_urlconf(), get_script_prefix(), name, ())


def tenant_url(name: str, tenant_slug: str) -> str:
    """reverse(name, args=[tenant_slug]), remembered."""
    return _cached_reverse(get_urlconf(), get_script_prefix(), name, (tenant_slug,))


@lru_cache(maxsize=4096)
def _number_parts(urlconf: str | None, prefix: str, name: str, tenant_slug: str) -> tuple[str, str]:
    url = reverse(name, args=[tenant_slug, _NUMBER])
    before, marker, after = url.partition(str(_NUMBER))
    if not marker or str(_NUMBER) in after:
        raise NoReverseMatch(f"{name}: the ticket number is not one path segment")
    return before, after


def number_url(name: str, tenant_slug: str, number: int) -> str:
    """reverse(name, args=[tenant_slug, number]) for URLs like /t/<slug>/tickets/<int:number>/…"""
    before, after = _number_parts(get_urlconf(), get_script_prefix(), name, tenant_slug)
    return f"{before}{int(number)}{after}"
