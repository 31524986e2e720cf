"""The standing cast: an agent, a lead and an admin of tenant A; an outsider of tenant B.

Every view and endpoint test uses these, and every one has an "outsider gets 404" case.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.test import Client
from rest_framework.test import APIClient

from helpdesk.bootstrap import bootstrap_tenant
from helpdesk.models import Role, Tenant, User
from tests.factories import MembershipFactory, TenantFactory, UserFactory, make_token

PASSWORD = "correct horse battery"


@dataclass
class Cast:
    tenant: Tenant
    other_tenant: Tenant
    agent: User
    lead: User
    admin: User
    owner: User
    outsider: User


@pytest.fixture
def cast(db) -> Cast:
    # `.create()` is what calling a factory does; it also types as Any for mypy, where the
    # call would type as the factory class (factory-boy leaves `__new__` unannotated).
    tenant = TenantFactory.create(name="Acme Socks", slug="acme")
    other = TenantFactory.create(name="Globex Hats", slug="globex")
    bootstrap_tenant(tenant)
    bootstrap_tenant(other)

    def member(t: Tenant, role: str, email: str, name: str) -> User:
        user = UserFactory.create(email=email, name=name)
        MembershipFactory.create(tenant=t, user=user, role=role)
        return user

    return Cast(
        tenant=tenant,
        other_tenant=other,
        agent=member(tenant, Role.AGENT, "agent@acme.test", "Ada Agent"),
        lead=member(tenant, Role.LEAD, "lead@acme.test", "Lee Lead"),
        admin=member(tenant, Role.ADMIN, "admin@acme.test", "Alex Admin"),
        owner=member(tenant, Role.OWNER, "owner@acme.test", "Olive Owner"),
        outsider=member(other, Role.ADMIN, "outsider@globex.test", "Otto Outsider"),
    )


def _logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user, backend="helpdesk.auth_backends.CachedModelBackend")
    return client


@pytest.fixture
def agent_client(cast) -> Client:
    return _logged_in(cast.agent)


@pytest.fixture
def lead_client(cast) -> Client:
    return _logged_in(cast.lead)


@pytest.fixture
def admin_client_a(cast) -> Client:
    """An admin of tenant A (named to avoid pytest-django's `admin_client`)."""
    return _logged_in(cast.admin)


@pytest.fixture
def outsider_client(cast) -> Client:
    return _logged_in(cast.outsider)


@pytest.fixture
def api(cast) -> APIClient:
    """An API client holding a bearer token of tenant A."""
    _token, plaintext = make_token(cast.tenant)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


@pytest.fixture
def outsider_api(cast) -> APIClient:
    """An API client holding a bearer token of tenant B."""
    _token, plaintext = make_token(cast.other_tenant)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client
