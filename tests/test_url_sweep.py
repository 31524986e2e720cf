"""One sweep over every URL the live resolver knows, so new pages inherit the access rules.

Anonymous visitors are sent to sign in (UI) or answered 401 (API); the outsider — a member
of tenant B only — gets 404 on every page of tenant A; nothing answers 5xx. Routes are read
from `get_resolver()` at collection time, never from a list, so pages added by other apps
(tickets, playbooks, …) are swept the day they land.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.utils.regex_helper import normalize

from helpdesk.models import ApiToken, AuditLog, Invitation, Membership, TenantOwnedModel
from helpdesk.services import Actor, invitation_create
from tests.factories import make_token

# Routes anyone may open. Everything else needs a session (UI) or a token (API).
PUBLIC_NAMES = {
    "healthz",
    "login",
    # Signing out is harmless when signed out; it is POST-only, so GET answers 405.
    "logout",
    "password_reset",
    "password_reset_done",
    "password_reset_confirm",
    "password_reset_complete",
    "invitation_accept",
    "notice_unsubscribe",  # the customer's signed opt-out link
    # The CSAT survey: a signed link in the customer's email, no session (tests/test_csat.py).
    "csat_survey",
    "api-schema",
    "api-docs",
}
# Public by the design's contract: the help center (customers) and webhooks (signed by the
# platform, not a session). Their own suites test their authentication.
PUBLIC_PREFIXES = (settings.STATIC_URL, "/help/", "/hooks/")

# Path segments that name a model differently from its model name.
SEGMENT_ALIASES = {
    "members": Membership,
    "tokens": ApiToken,
    "audit": AuditLog,
    "audit-log": AuditLog,
}


@dataclass(frozen=True)
class Route:
    template: str  # "/t/%(tenant_slug)s/settings/members/%(pk)s/"
    params: tuple[str, ...]
    name: str | None
    view_class: type | None

    def __str__(self) -> str:
        return self.template

    @property
    def is_public(self) -> bool:
        return self.name in PUBLIC_NAMES or self.template.startswith(PUBLIC_PREFIXES)

    @property
    def is_api(self) -> bool:
        return self.template.startswith("/api/")

    @property
    def is_tenant_page(self) -> bool:
        return self.template.startswith("/t/%(tenant_slug)s/")


def _walk(patterns, prefix: str = ""):
    for entry in patterns:
        regex = prefix + entry.pattern.regex.pattern.lstrip("^")
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, regex)
        elif isinstance(entry, URLPattern):
            template, params = normalize(regex)[0]
            yield Route(
                template="/" + template,
                params=tuple(params),
                name=entry.name,
                view_class=getattr(entry.callback, "cls", None),
            )


ROUTES = sorted(set(_walk(get_resolver().url_patterns)), key=str)
TENANT_ROUTES = [r for r in ROUTES if r.is_tenant_page]
PRIVATE_UI_ROUTES = [r for r in ROUTES if not r.is_public and not r.is_api]
PRIVATE_API_ROUTES = [r for r in ROUTES if not r.is_public and r.is_api]
API_OBJECT_ROUTES = [r for r in PRIVATE_API_ROUTES if "pk" in r.params]


def _model_for(route: Route, param: str) -> type[TenantOwnedModel] | None:
    """The tenant-owned model an id in this route points at, when it can be told."""
    queryset = getattr(route.view_class, "queryset", None)
    if queryset is not None and issubclass(queryset.model, TenantOwnedModel):
        return queryset.model
    before = route.template.split(f"%({param})s")[0].rstrip("/").rsplit("/", 1)[-1]
    if before in SEGMENT_ALIASES:
        return SEGMENT_ALIASES[before]
    from django.apps import apps

    for model in apps.get_models():
        if not issubclass(model, TenantOwnedModel):
            continue
        meta = model._meta
        names = {
            meta.model_name,
            f"{meta.model_name}s",
            str(meta.verbose_name_plural).replace(" ", "-"),
        }
        if before in names:
            return model
    return None


@pytest.fixture
def tenant_a_objects(cast):
    """One object of each core kind in tenant A, made through the services."""
    make_token(cast.tenant, name="Sweep token")
    invitation_create(
        tenant=cast.tenant,
        email="invitee@acme.test",
        role="agent",
        actor=Actor.for_user(cast.admin),
    )
    return cast


def _object_value(route: Route, param: str, cast) -> str | None:
    """A real value for this id-like parameter from a row of tenant A, when there is one."""
    model = _model_for(route, param)
    if model is None:
        return None
    field = "pk"
    if param not in ("pk", "id") and any(f.name == param for f in model._meta.concrete_fields):
        field = param  # e.g. tickets/<number>/ looks tickets up by their per-tenant number
    value = model._default_manager.filter(tenant=cast.tenant).order_by("pk").values_list(field, flat=True).first()
    return None if value is None else str(value)


def _fill_route(route: Route, cast) -> tuple[str, bool]:
    """The route's URL with plausible values, and whether any id had to be made up."""
    values = {}
    made_up = False
    for param in route.params:
        if param == "tenant_slug":
            values[param] = cast.tenant.slug
        elif param == "tenant_id":
            values[param] = str(cast.tenant.pk)
        elif param == "format":
            values[param] = "json"
        elif param == "uidb64":
            values[param] = "MQ"
        elif param in ("token", "secret"):
            values[param] = "x" * 43
        elif param.endswith("uuid"):
            values[param] = str(uuid.uuid4())
        else:
            value = _object_value(route, param, cast)
            made_up = made_up or value is None
            values[param] = value or "1"
    url = route.template % values
    # The filled URL must reach the route we meant (not a neighbour), or the sweep lies.
    resolve(url)
    return url, made_up


def _fill(route: Route, cast) -> str:
    return _fill_route(route, cast)[0]


def _tenant_a_state(cast) -> dict:
    """A fingerprint of tenant A's rows that a refused request must leave alone."""
    return {
        "audit": AuditLog.objects.filter(tenant=cast.tenant).count(),
        "members": sorted(Membership.objects.filter(tenant=cast.tenant).values_list("pk", "role", "availability")),
        "tokens": sorted(ApiToken.objects.filter(tenant=cast.tenant).values_list("pk", "revoked_at")),
        "invitations": sorted(Invitation.objects.filter(tenant=cast.tenant).values_list("pk", "revoked_at")),
        "tenant": (cast.tenant.name, cast.tenant.timezone),
    }


def test_the_sweep_sees_the_core_routes():
    names = {r.name for r in ROUTES}
    assert {
        "healthz",
        "login",
        "settings_members",
        "token_revoke",
        "token-detail",
        "api-schema",
    } <= names
    assert len(TENANT_ROUTES) >= 10
    assert len(API_OBJECT_ROUTES) >= 3


@pytest.mark.parametrize("route", PRIVATE_UI_ROUTES, ids=str)
def test_anonymous_get_of_a_private_page_redirects_to_the_login_page(client, tenant_a_objects, route):
    url = _fill(route, tenant_a_objects)
    response = client.get(url)
    assert response.status_code == 302, f"{url} answered {response.status_code}"
    location = urlsplit(response["Location"])
    assert location.path == reverse("login")
    assert "next=" in location.query


@pytest.mark.parametrize("route", PRIVATE_API_ROUTES, ids=str)
def test_anonymous_get_of_an_api_route_is_401_with_a_challenge(client, tenant_a_objects, route):
    url = _fill(route, tenant_a_objects)
    response = client.get(url)
    assert response.status_code == 401, f"{url} answered {response.status_code}"
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.parametrize("route", [r for r in ROUTES if r.is_public], ids=str)
def test_anonymous_get_of_a_public_route_never_fails_on_our_side(client, tenant_a_objects, route):
    url = _fill(route, tenant_a_objects)
    response = client.get(url)
    assert response.status_code < 500, f"{url} answered {response.status_code}"


@pytest.mark.parametrize("route", TENANT_ROUTES, ids=str)
def test_outsider_gets_404_on_every_page_of_tenant_a(outsider_client, tenant_a_objects, route):
    url = _fill(route, tenant_a_objects)
    before = _tenant_a_state(tenant_a_objects)
    for method in ("get", "post"):
        response = getattr(outsider_client, method)(url, {"role": "owner", "name": "Pwned", "remove": "1"})
        assert response.status_code == 404, f"{method.upper()} {url} answered {response.status_code}"
        assert b"Acme" not in response.content
    assert _tenant_a_state(tenant_a_objects) == before


@pytest.mark.parametrize("route", TENANT_ROUTES, ids=str)
def test_outsider_gets_404_for_an_unknown_workspace_slug_too(outsider_client, tenant_a_objects, route):
    url = _fill(route, tenant_a_objects).replace("/t/acme/", "/t/no-such-store/", 1)
    assert outsider_client.get(url).status_code == 404


@pytest.mark.parametrize("route", API_OBJECT_ROUTES, ids=str)
def test_outsider_token_gets_404_for_tenant_a_ids_on_every_api_object_route(outsider_api, tenant_a_objects, route):
    url = _fill(route, tenant_a_objects)
    before = _tenant_a_state(tenant_a_objects)
    answers = {}
    for method in ("get", "post", "patch", "delete"):
        response = getattr(outsider_api, method)(url, {"role": "owner"}, format="json")
        answers[method] = response.status_code
        assert response.status_code in (404, 405), f"{method.upper()} {url} answered {response.status_code}"
    assert 404 in answers.values(), f"{url}: no method reached the object lookup ({answers})"
    assert _tenant_a_state(tenant_a_objects) == before


@pytest.mark.parametrize("route", TENANT_ROUTES, ids=str)
def test_every_tenant_page_opens_for_the_admin_without_a_server_error(admin_client_a, tenant_a_objects, route):
    url, made_up = _fill_route(route, tenant_a_objects)
    response = admin_client_a.get(url, follow=True)
    # POST-only actions answer 405 to GET; everything else opens (or redirects into a page).
    # An id with no row behind it (no such object in the cast) is an honest 404.
    allowed = {200, 405} | ({404} if made_up else set())
    assert response.status_code in allowed, f"{url} answered {response.status_code}"


@pytest.mark.parametrize("route", TENANT_ROUTES, ids=str)
def test_every_tenant_page_answers_the_agent_without_a_server_error(agent_client, tenant_a_objects, route):
    url, made_up = _fill_route(route, tenant_a_objects)
    response = agent_client.get(url, follow=True)
    # Admin-only pages answer 403 to an agent: they are tenant A's pages, so no 404 here.
    allowed = {200, 403, 405} | ({404} if made_up else set())
    assert response.status_code in allowed, f"{url} answered {response.status_code}"


def test_fill_resolves_ids_to_tenant_a_rows(tenant_a_objects):
    by_name = {r.name: r for r in ROUTES}
    token_url = _fill(by_name["token_revoke"], tenant_a_objects)
    token_pk = int(re.search(r"/tokens/(\d+)/", token_url).group(1))
    assert ApiToken.objects.get(pk=token_pk).tenant == tenant_a_objects.tenant
    member_url = _fill(by_name["member_update"], tenant_a_objects)
    member_pk = int(re.search(r"/members/(\d+)/", member_url).group(1))
    assert Membership.objects.get(pk=member_pk).tenant == tenant_a_objects.tenant
    invitation_url = _fill(by_name["invitation_revoke"], tenant_a_objects)
    invitation_pk = int(re.search(r"/invitations/(\d+)/", invitation_url).group(1))
    assert Invitation.objects.get(pk=invitation_pk).tenant == tenant_a_objects.tenant
