"""The API's shared behaviour: auth, tenancy, the one error shape, pagination, limits."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings
from rest_framework.test import APIClient

from helpdesk.api.throttling import TokenRateThrottle
from helpdesk.models import ApiToken, Membership, Role
from helpdesk.services import Actor, api_token_authenticate, api_token_revoke
from tests.factories import MembershipFactory, make_token

ME = "/api/v1/me/"
TOKENS = "/api/v1/tokens/"
MEMBERS = "/api/v1/members/"


def bearer(plaintext: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]


# --- Authentication -------------------------------------------------------------------


def test_a_bearer_token_acts_as_an_admin_of_its_own_tenant(api, cast):
    response = api.get(ME)
    assert response.status_code == 200
    body = response.json()
    assert body["tenant"]["slug"] == "acme"
    assert body["role"] == Role.ADMIN
    assert body["user"] is None
    assert body["token"].startswith(f"sd_{cast.tenant.pk}_")


def test_no_credentials_is_401_with_a_bearer_challenge(client, cast):
    error = assert_error(client.get(ME), 401, "not_authenticated")
    assert error["fields"] == {}
    assert client.get(ME)["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize(
    "header",
    [
        "Bearer sd_1_abcdefgh_not-the-secret",
        "Bearer not-a-storedesk-token",
        "Bearer sd_x_abcdefgh_secret",
        "Bearer",
        "Bearer two parts",
        "Bearer sd_\u00b2_abcdefgh_secret",
        "Bearer sd_1_abc.defgh_secret",
        "Bearer sd_1_abcdefghijklmnopq_secret",
        "Bearer sd_99999999999999999999999_abcdefgh_secret",
    ],
    ids=[
        "unknown token",
        "foreign format",
        "non-numeric tenant",
        "no token",
        "extra words",
        "superscript digit as tenant",
        "punctuation in the prefix",
        "over-long prefix",
        "tenant id over bigint",
    ],
)
def test_a_bad_or_malformed_token_is_401(cast, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get(ME)
    assert_error(response, 401, "authentication_failed")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_token_with_a_wrong_secret_but_a_real_prefix_is_401(cast):
    token, plaintext = make_token(cast.tenant)
    forged = plaintext[:-4] + ("aaaa" if not plaintext.endswith("aaaa") else "bbbb")
    assert_error(bearer(forged).get(ME), 401, "authentication_failed")


def test_a_token_naming_another_tenant_in_its_text_is_401(cast):
    token, plaintext = make_token(cast.tenant)
    moved = plaintext.replace(f"sd_{cast.tenant.pk}_", f"sd_{cast.other_tenant.pk}_", 1)
    assert_error(bearer(moved).get(ME), 401, "authentication_failed")


def test_a_non_ascii_token_is_401(cast):
    client = APIClient()
    response = client.get(ME, HTTP_AUTHORIZATION="Bearer sd_1_ab\u00e9_x".encode().decode("latin-1"))
    assert_error(response, 401, "authentication_failed")


def test_a_revoked_token_is_401(cast):
    token, plaintext = make_token(cast.tenant)
    client = bearer(plaintext)
    assert client.get(ME).status_code == 200
    api_token_revoke(token=token, actor=Actor.system())
    assert_error(client.get(ME), 401, "authentication_failed")


def test_a_known_token_is_served_from_the_access_cache_until_revoked(cast, django_assert_num_queries):
    token, plaintext = make_token(cast.tenant)
    client = bearer(plaintext)
    assert client.get(ME).status_code == 200  # looks the token up, touches last_used_at
    with django_assert_num_queries(0):
        assert api_token_authenticate(plaintext).pk == token.pk
    api_token_revoke(token=token, actor=Actor.system())
    assert api_token_authenticate(plaintext) is None


def test_revoking_a_token_through_the_api_makes_it_stop_working(api, cast):
    victim, plaintext = make_token(cast.tenant, name="ERP")
    response = api.post(f"{TOKENS}{victim.pk}/revoke/")
    assert response.status_code == 200
    assert response.json()["active"] is False
    assert_error(bearer(plaintext).get(ME), 401, "authentication_failed")


def test_creating_a_token_returns_the_secret_once_and_it_works(api):
    response = api.post(TOKENS, {"name": "Warehouse"}, format="json")
    assert response.status_code == 201
    plaintext = response.json()["token"]
    assert bearer(plaintext).get(ME).status_code == 200
    listed = api.get(f"{TOKENS}{response.json()['id']}/").json()
    assert "token" not in listed
    assert plaintext not in str(api.get(TOKENS).json())


# --- Permissions and tenancy ----------------------------------------------------------


def test_an_agent_session_is_403_on_the_admin_only_tokens_endpoint(agent_client):
    error = assert_error(agent_client.get(TOKENS, HTTP_X_TENANT="acme"), 403, "permission_denied")
    assert error["fields"] == {}


def test_an_agent_session_may_read_members_but_not_change_roles(agent_client, cast):
    assert agent_client.get(MEMBERS, HTTP_X_TENANT="acme").status_code == 200
    membership = cast.agent.memberships.get()
    response = agent_client.patch(
        f"{MEMBERS}{membership.pk}/",
        {"role": "owner"},
        content_type="application/json",
        HTTP_X_TENANT="acme",
    )
    assert_error(response, 403, "permission_denied")
    membership.refresh_from_db()
    assert membership.role == Role.AGENT


def test_a_session_with_x_tenant_of_its_own_workspace_works(agent_client):
    response = agent_client.get(ME, HTTP_X_TENANT="acme")
    assert response.status_code == 200
    body = response.json()
    assert body["tenant"]["slug"] == "acme"
    assert body["role"] == Role.AGENT
    assert body["user"]["email"] == "agent@acme.test"
    assert body["token"] is None


def test_a_session_with_one_membership_needs_no_x_tenant(agent_client):
    assert agent_client.get(ME).json()["tenant"]["slug"] == "acme"


def test_a_session_naming_another_tenant_is_404_like_a_missing_one(agent_client):
    foreign = agent_client.get(ME, HTTP_X_TENANT="globex")
    missing = agent_client.get(ME, HTTP_X_TENANT="no-such-store")
    assert_error(foreign, 404, "not_found")
    assert foreign.json() == missing.json()


def test_a_session_with_two_memberships_and_no_x_tenant_is_400(agent_client, cast):
    MembershipFactory(tenant=cast.other_tenant, user=cast.agent, role=Role.AGENT)
    error = assert_error(agent_client.get(ME), 400, "validation_error")
    assert "X-Tenant" in error["fields"]
    assert agent_client.get(ME, HTTP_X_TENANT="globex").json()["tenant"]["slug"] == "globex"


def test_a_session_write_without_a_csrf_token_is_refused(cast):
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.admin, backend="helpdesk.auth_backends.CachedModelBackend")
    response = client.post(TOKENS, {"name": "x"}, content_type="application/json", HTTP_X_TENANT="acme")
    assert_error(response, 403, "permission_denied")
    assert not ApiToken.objects.filter(tenant=cast.tenant, name="x").exists()


def test_outsider_gets_404_for_a_token_of_tenant_a(outsider_api, cast):
    token, _ = make_token(cast.tenant, name="ERP")
    assert_error(outsider_api.get(f"{TOKENS}{token.pk}/"), 404, "not_found")
    assert_error(outsider_api.post(f"{TOKENS}{token.pk}/revoke/"), 404, "not_found")
    token.refresh_from_db()
    assert token.revoked_at is None


def test_outsider_lists_only_its_own_members_and_tokens(outsider_api, cast):
    emails = [m["user"]["email"] for m in outsider_api.get(MEMBERS).json()["results"]]
    assert emails == ["outsider@globex.test"]
    make_token(cast.tenant, name="Acme only")
    names = [t["name"] for t in outsider_api.get(TOKENS).json()["results"]]
    assert "Acme only" not in names


# --- Errors ---------------------------------------------------------------------------


def test_a_validation_error_names_the_field(api):
    error = assert_error(api.post(TOKENS, {}, format="json"), 400, "validation_error")
    assert list(error["fields"]) == ["name"]
    assert error["fields"]["name"]


def test_a_service_validation_error_is_a_400_with_fields(api, cast):
    owner_membership = cast.owner.memberships.get()
    error = assert_error(
        api.patch(f"{MEMBERS}{owner_membership.pk}/", {"role": "agent"}, format="json"),
        400,
        "validation_error",
    )
    assert "role" in error["fields"]
    owner_membership.refresh_from_db()
    assert owner_membership.role == Role.OWNER


def test_a_token_cannot_make_anyone_an_owner(api, cast):
    agent_membership = cast.agent.memberships.get()
    error = assert_error(
        api.patch(f"{MEMBERS}{agent_membership.pk}/", {"role": "owner"}, format="json"),
        400,
        "validation_error",
    )
    assert "role" in error["fields"]
    agent_membership.refresh_from_db()
    assert agent_membership.role == Role.AGENT


def test_a_token_changes_a_members_role(api, cast):
    agent_membership = cast.agent.memberships.get()
    response = api.patch(f"{MEMBERS}{agent_membership.pk}/", {"role": "lead"}, format="json")
    assert response.status_code == 200
    assert response.json()["role"] == Role.LEAD


def test_a_missing_id_is_404_with_the_same_body_as_another_tenants_id(api, cast):
    foreign, _ = make_token(cast.other_tenant, name="Globex ERP")
    missing = api.get(f"{TOKENS}999999999/")
    other = api.get(f"{TOKENS}{foreign.pk}/")
    assert_error(missing, 404, "not_found")
    assert other.status_code == 404
    assert other.json() == missing.json()
    assert other.content == missing.content


def test_an_unknown_api_path_is_a_json_404(api):
    assert_error(api.get("/api/v1/no-such-thing/"), 404, "not_found")


def test_a_method_the_resource_does_not_have_is_405(api, cast):
    token, _ = make_token(cast.tenant)
    assert_error(api.delete(f"{TOKENS}{token.pk}/"), 405, "method_not_allowed")
    assert_error(api.put(ME, {}, format="json"), 405, "method_not_allowed")


def test_malformed_json_is_400_parse_error(api, cast):
    response = api.post(TOKENS, data='{"name": "half', content_type="application/json")
    assert_error(response, 400, "parse_error")
    assert not ApiToken.objects.filter(tenant=cast.tenant, name__startswith="half").exists()


def test_a_form_encoded_body_is_415(api):
    response = api.post(TOKENS, data="name=x", content_type="application/x-www-form-urlencoded")
    assert_error(response, 415, "unsupported_media_type")


@override_settings(MAX_BODY_BYTES=200)
def test_a_body_over_the_limit_is_413_and_creates_nothing(api, cast):
    body = '{"name": "' + "x" * 300 + '"}'
    response = api.post(TOKENS, data=body, content_type="application/json")
    error = assert_error(response, 413, "payload_too_large")
    assert "200" in error["message"]
    assert response.request["CONTENT_LENGTH"] == str(len(body))
    assert ApiToken.objects.filter(tenant=cast.tenant).count() == 1  # the fixture's own


@override_settings(MAX_BODY_BYTES=200)
def test_a_body_just_under_the_limit_is_accepted(api):
    body = '{"name": "' + "x" * 50 + '"}'
    assert api.post(TOKENS, data=body, content_type="application/json").status_code == 201


def test_a_garbled_content_length_is_400(api):
    response = api.post(TOKENS, data="{}", content_type="application/json", CONTENT_LENGTH="lots")
    assert_error(response, 400, "bad_request")


def test_too_many_requests_is_429_with_retry_after(monkeypatch, cast):
    monkeypatch.setattr(TokenRateThrottle, "THROTTLE_RATES", {"token": "3/min"})
    _token, plaintext = make_token(cast.tenant, name="Chatty")
    client = bearer(plaintext)
    for _ in range(3):
        assert client.get(ME).status_code == 200
    response = client.get(ME)
    error = assert_error(response, 429, "throttled")
    assert 1 <= int(response["Retry-After"]) <= 60
    assert "retry in" in error["message"]


def test_the_throttle_window_slides_and_refusals_do_not_count(monkeypatch, cast):
    monkeypatch.setattr(TokenRateThrottle, "THROTTLE_RATES", {"token": "4/min"})
    clock = {"now": 6_000_000 * 60 + 50.0}  # 50 s into a minute window
    monkeypatch.setattr(TokenRateThrottle, "timer", lambda self: clock["now"])
    _token, plaintext = make_token(cast.tenant, name="Steady")
    client = bearer(plaintext)
    assert [client.get(ME).status_code for _ in range(6)] == [200, 200, 200, 200, 429, 429]
    clock["now"] += 15  # 5 s into the next window: 4 × 55/60 ≈ 3.7 still count
    response = client.get(ME)
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    clock["now"] += 15  # 20 s in: 4 × 40/60 ≈ 2.7 + 1 fits, the refusals were not counted
    assert client.get(ME).status_code == 200
    clock["now"] += 120  # two quiet windows later, the full allowance again
    assert [client.get(ME).status_code for _ in range(5)] == [200, 200, 200, 200, 429]


def test_the_window_counters_take_one_round_trip_and_keep_their_first_ttl(db):
    """helpdesk.cache.RedisCache.count_in_window, which the throttle uses on Redis."""
    from django.core.cache import cache

    if not hasattr(cache, "count_in_window"):
        pytest.skip("the Redis cache")
    cache.set("w:prev", 7)
    assert cache.count_in_window("w:now", "w:prev", 120) == (1, 7)
    client = cache._cache.get_client(write=True)
    key = cache.make_and_validate_key("w:now")
    client.expire(key, 50)  # later increments must not push the window's end back
    assert cache.count_in_window("w:now", "w:prev", 120) == (2, 7)
    assert 0 < client.ttl(key) <= 50
    assert cache.count_in_window("w:other", "w:none", 120) == (1, 0)
    assert cache.get("w:now") == 2 and cache.incr("w:now") == 3  # plain counters to the cache API


def test_the_throttle_counts_each_token_separately(monkeypatch, cast):
    monkeypatch.setattr(TokenRateThrottle, "THROTTLE_RATES", {"token": "2/min"})
    _a, first = make_token(cast.tenant, name="First")
    _b, second = make_token(cast.tenant, name="Second")
    for _ in range(3):
        bearer(first).get(ME)
    assert bearer(first).get(ME).status_code == 429
    assert bearer(second).get(ME).status_code == 200


# --- Pagination -----------------------------------------------------------------------


def test_lists_are_cursor_paginated(api, cast):
    first = api.get(MEMBERS, {"page_size": 2})
    assert first.status_code == 200
    page = first.json()
    assert set(page) == {"results", "next", "previous"}
    assert len(page["results"]) == 2
    assert page["previous"] is None
    assert "cursor=" in page["next"]
    seen = [m["id"] for m in page["results"]]
    while page["next"]:
        page = api.get(page["next"]).json()
        assert page["previous"] is not None
        seen += [m["id"] for m in page["results"]]
    expected = sorted(Membership.objects.filter(tenant=cast.tenant).values_list("pk", flat=True), reverse=True)
    assert seen == expected


@pytest.mark.parametrize("page_size", ["101", "0", "-1", "lots"])
def test_a_page_size_outside_1_to_100_is_400(api, page_size):
    error = assert_error(api.get(MEMBERS, {"page_size": page_size}), 400, "validation_error")
    assert "page_size" in error["fields"]


def test_a_page_size_of_100_is_allowed(api):
    assert api.get(MEMBERS, {"page_size": 100}).status_code == 200


def test_a_forged_cursor_is_answered_in_the_error_shape(api):
    response = api.get(MEMBERS, {"cursor": "not-a-cursor"})
    assert response.status_code == 400
    assert set(response.json()["error"]) == {"code", "message", "fields"}
    assert "cursor" in response.json()["error"]["fields"]


# --- Open pages -----------------------------------------------------------------------


@pytest.mark.smoke
def test_the_health_check_answers_ok(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_the_health_check_is_not_redirected_to_https_but_pages_are(client, db, settings):
    """Probes (compose, load balancers) speak plain HTTP from inside."""
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz").status_code == 200
    assert client.get("/api/v1/schema/").status_code == 301


def test_the_schema_is_readable_without_a_token(client, db):
    response = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    content = response.content.decode()
    assert "/api/v1/tokens/" in content
    assert "bearerAuth" in content


def test_the_api_docs_are_readable_without_a_token(client, db):
    response = client.get("/api/v1/docs/")
    assert response.status_code == 200
    assert b"swagger" in response.content.lower()
