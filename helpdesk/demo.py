"""The demo store that `seed_demo` builds: a mid-size apparel shop and its support team.

Each app adds its part (tickets, orders, playbooks) in `seed_<app>(tenant, people)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction

from helpdesk.models import Membership, Role, Tenant, User
from helpdesk.services import tenant_create

DEMO_SLUG = "northwind-apparel"
DEMO_PASSWORD = "storedesk-demo"

OWNER = ("Maya Lindqvist", "owner@northwind.example")
LEADS = [("Jonas Weber", "lead@northwind.example"), ("Priya Raman", "priya.lead@northwind.example")]
AGENTS = [
    ("Sam Okafor", "agent@northwind.example"),
    ("Lucía Fernández", "lucia@northwind.example"),
    ("Tom Becker", "tom@northwind.example"),
    ("Aiko Tanaka", "aiko@northwind.example"),
    ("Noah Martin", "noah@northwind.example"),
    ("Elif Yılmaz", "elif@northwind.example"),
]
ADMIN = ("Chris Doyle", "admin@northwind.example")


@dataclass
class DemoPeople:
    owner: User
    admin: User
    leads: list[User] = field(default_factory=list)
    agents: list[User] = field(default_factory=list)


def _member(tenant: Tenant, name: str, email: str, role: str, availability: str = "offline") -> User:
    user = User.objects.filter(email=email).first()
    if user is None:
        user = User.objects.create_user(email=email, password=DEMO_PASSWORD, name=name)
    Membership.objects.get_or_create(tenant=tenant, user=user, defaults={"role": role, "availability": availability})
    return user


@transaction.atomic
def seed_demo() -> tuple[Tenant, DemoPeople, bool]:
    """Build the demo store once; returns (tenant, people, created_now)."""
    tenant = Tenant.objects.filter(slug=DEMO_SLUG).first()
    created = tenant is None
    if tenant is None:
        tenant, owner = tenant_create(
            name="Northwind Apparel",
            slug=DEMO_SLUG,
            owner_email=OWNER[1],
            owner_name=OWNER[0],
            owner_password=DEMO_PASSWORD,
            time_zone="Europe/Berlin",
            default_language="en",
        )
    owner = User.objects.get(email=OWNER[1])
    people = DemoPeople(owner=owner, admin=_member(tenant, *ADMIN, Role.ADMIN, "online"))
    people.leads = [_member(tenant, name, email, Role.LEAD, "online") for name, email in LEADS]
    availabilities = ["online", "online", "online", "away", "online", "offline"]
    people.agents = [
        _member(tenant, name, email, Role.AGENT, availabilities[i]) for i, (name, email) in enumerate(AGENTS)
    ]
    if created:
        from helpdesk.bootstrap import seed_apps

        seed_apps(tenant, people)
    return tenant, people, created


DEMO_LOGINS = [
    ("owner", OWNER[1]),
    ("admin", ADMIN[1]),
    ("team lead", LEADS[0][1]),
    ("agent", AGENTS[0][1]),
]
