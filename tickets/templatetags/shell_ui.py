"""The app shell's repeated pieces (templates/base.html), built in Python.

Every page renders the navigation, the member's availability menu and the keyboard
shortcuts dialog; as template loops and includes they cost ~1 ms a page. The markup mirrors
templates/components/availability.html and shortcuts.html (tests/test_page_render.py
compares them); change both together.
"""

from __future__ import annotations

from html import escape

from django import template
from django.utils.safestring import SafeString, mark_safe

from helpdesk.nav import nav_links, site_url, tenant_url

register = template.Library()

_AVAILABILITY = (("online", "● Online"), ("away", "◐ Away"), ("offline", "○ Offline"))


def _csrf(context) -> str:
    token = context.get("csrf_token")
    return f'<input type="hidden" name="csrfmiddlewaretoken" value="{escape(str(token))}">' if token else ""


@register.simple_tag(takes_context=True)
def shell_nav(context) -> SafeString:
    """The main navigation links (the current section marked with aria-current)."""
    request, tenant = context.get("request"), context.get("tenant")
    if request is None or tenant is None:
        return mark_safe("")
    section = context.get("section")
    parts = []
    for n in nav_links(request, tenant.slug):
        current = ' aria-current="page"' if n.current or n.key == section else ""
        parts.append(
            f'<a href="{escape(n.url)}"{current} data-nav="{escape(n.key)}">{n.icon}<span>{escape(n.label)}</span></a>\n      '
        )
    return mark_safe("".join(parts))  # noqa: S308 - escaped; icons are constant markup


@register.simple_tag(takes_context=True)
def shell_url(context, name: str) -> str:
    """{% shell_url 'notifications' %}: a URL of the current workspace (reversed once)."""
    return tenant_url(name, context["tenant"].slug)


@register.simple_tag
def shell_url_site(name: str) -> str:
    """{% shell_url_site 'workspaces' %}: a URL without arguments (reversed once)."""
    return site_url(name)


@register.simple_tag(takes_context=True)
def shell_availability(context) -> SafeString:
    """components/availability.html: who is signed in, and the availability menu."""
    request, tenant, membership = context.get("request"), context.get("tenant"), context.get("membership")
    user = request.user
    current = membership.availability if membership is not None else ""
    options = "\n      ".join(
        f'<option value="{value}" {"selected" if current == value else ""}>{label}</option>'
        for value, label in _AVAILABILITY
    )
    url = escape(tenant_url("set_availability", tenant.slug))
    csrf = _csrf(context)
    return mark_safe(  # noqa: S308 - every value is escaped or constant
        '<div class="me">\n'
        f'  <span class="avatar">{escape(user.initials)}<span class="presence {escape(str(current))}"></span></span>\n'
        f'  <div class="who"><strong>{escape(user.display_name)}</strong><span>{escape(user.email)}</span></div>\n'
        "</div>\n\n"
        '<div class="row" id="availability-menu">\n'
        f'  <form method="post" action="{url}" hx-post="{url}" hx-target="#availability-menu" '
        'hx-swap="outerHTML" hx-trigger="change">\n'
        f'    {csrf}<input type="hidden" name="next" value="{escape(request.get_full_path())}">\n'
        '    <label class="sr-only" for="availability">Availability</label>\n'
        '    <select id="availability" name="availability">\n'
        f"      {options}\n"
        "    </select>\n"
        '    <noscript><button class="linkish">Set</button></noscript>\n'
        "  </form>\n"
        f'  <form method="post" action="{escape(site_url("logout"))}">{csrf}'
        '<button class="linkish" type="submit">Sign out</button></form>\n'
        "</div>\n\n"
    )


_SHORTCUTS_HEAD = (
    '<dialog id="shortcuts" aria-labelledby="shortcuts-title">\n'
    '  <div class="card-head"><h2 id="shortcuts-title">Keyboard shortcuts</h2>'
    '<button class="btn ghost sm" type="button" data-close>Close</button></div>\n'
    '  <div class="card-body">\n'
    '    <table class="table"><tbody>\n'
    "      <tr><td><kbd>?</kbd></td><td>Show this list</td></tr>\n"
    "      <tr><td><kbd>g</kbd> then <kbd>q</kbd></td><td>Go to the queue</td></tr>\n"
    "      <tr><td><kbd>g</kbd> then <kbd>t</kbd></td><td>Go to tickets</td></tr>\n"
    "      <tr><td><kbd>g</kbd> then <kbd>c</kbd></td><td>Go to customers</td></tr>\n"
    "      <tr><td><kbd>g</kbd> then <kbd>s</kbd></td><td>Go to settings</td></tr>\n"
    "      "
)
_SHORTCUTS_TAIL = (
    "\n      <tr><td><kbd>Esc</kbd></td><td>Close dialogs, leave a text field</td></tr>\n"
    "    </tbody></table>\n"
    "  </div>\n"
    "</dialog>\n"
)


@register.simple_tag(takes_context=True)
def shell_shortcuts(context) -> SafeString:
    """components/shortcuts.html: the dialog `?` opens, with the page's own shortcuts."""
    rows = "".join(
        f"<tr><td><kbd>{escape(str(key))}</kbd></td><td>{escape(str(what))}</td></tr>"
        for key, what in context.get("page_shortcuts") or ()
    )
    return mark_safe(f"{_SHORTCUTS_HEAD}{rows}{_SHORTCUTS_TAIL}")  # noqa: S308 - escaped
