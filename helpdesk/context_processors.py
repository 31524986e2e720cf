from django.http import HttpRequest

NAV = [
    ("queue", "Queue"),
    ("tickets", "Tickets"),
    ("customers", "Customers"),
    ("playbooks", "Playbooks"),
    ("reports", "Reports"),
    ("settings", "Settings"),
]


def shell(request: HttpRequest) -> dict:
    """What the base layout needs on every page: the tenant, the member, the nav."""
    tenant = getattr(request, "tenant", None)
    extra = []
    if tenant is not None:
        from tickets.views_sla import settings_links

        extra = settings_links(tenant.slug)
        membership = getattr(request, "membership", None)
        if membership is not None and membership.has_role("admin"):
            from django.urls import reverse

            extra = [
                *extra,
                (
                    "connections",
                    "Store connections",
                    reverse("settings_connections", args=[tenant.slug]),
                ),
            ]
    return {
        "settings_extra_links": extra,
        "tenant": tenant,
        "membership": getattr(request, "membership", None),
        "nav_items": NAV,
    }
