"""Signing in with an email, lockout after repeated failures, signing out, password reset."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from axes.utils import reset as axes_reset
from django.conf import settings
from django.contrib.auth.hashers import identify_hasher
from django.core import mail
from django.test import Client, override_settings
from django.urls import reverse

from helpdesk.models import Role, User
from tests.conftest import PASSWORD
from tests.factories import MembershipFactory

LOGIN = "/accounts/login/"
REMOTE_ADDR = "127.0.0.1"


@pytest.fixture(autouse=True)
def clean_lockouts(cast):
    """Lockout counters live in the cache (Redis), outside the test transaction: start and end clean."""
    emails = [cast.agent.email, cast.admin.email, cast.outsider.email, "nobody@acme.test"]
    for email in emails:
        axes_reset(ip=REMOTE_ADDR, username=email)
    yield
    for email in emails:
        axes_reset(ip=REMOTE_ADDR, username=email)


def sign_in(client: Client, email: str, password: str = PASSWORD, **extra):
    return client.post(LOGIN, {"username": email, "password": password, **extra}, REMOTE_ADDR=REMOTE_ADDR)


def is_signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


@pytest.mark.smoke
def test_the_login_page_opens(client, db):
    response = client.get(LOGIN)
    assert response.status_code == 200
    assert b'name="username"' in response.content
    assert b'type="email"' in response.content


def test_signing_in_with_email_lands_in_the_tenant_queue(client, cast):
    response = sign_in(client, "agent@acme.test")
    assert response.status_code == 302
    landed = client.get(response["Location"], follow=True)
    assert landed.request["PATH_INFO"] == "/t/acme/queue/"
    assert landed.status_code == 200
    assert is_signed_in(client)


def test_the_email_is_matched_whatever_its_case(client, cast):
    response = sign_in(client, "Agent@ACME.test")
    assert response.status_code == 302
    assert is_signed_in(client)


def test_signing_in_follows_a_safe_next_url(client, cast):
    response = sign_in(client, "admin@acme.test", next="/t/acme/settings/members/")
    assert response["Location"] == "/t/acme/settings/members/"


def test_signing_in_ignores_a_next_url_on_another_host(client, cast):
    response = sign_in(client, "admin@acme.test", next="https://evil.example/steal")
    assert urlsplit(response["Location"]).netloc == ""


def test_a_member_of_two_workspaces_lands_on_the_switcher(client, cast):
    MembershipFactory(tenant=cast.other_tenant, user=cast.agent, role=Role.AGENT)
    response = client.get(sign_in(client, "agent@acme.test")["Location"], follow=True)
    assert response.request["PATH_INFO"] == "/workspaces/"
    assert b"Acme Socks" in response.content
    assert b"Globex Hats" in response.content


def test_the_outsider_signs_in_to_its_own_store_and_gets_404_in_tenant_a(client, cast):
    landed = client.get(sign_in(client, "outsider@globex.test")["Location"], follow=True)
    assert landed.request["PATH_INFO"] == "/t/globex/queue/"
    assert client.get("/t/acme/queue/").status_code == 404


def test_a_wrong_password_says_so_and_signs_no_one_in(client, cast):
    response = sign_in(client, "agent@acme.test", "not the password")
    assert response.status_code == 200
    assert "That email and password don’t match an account" in response.content.decode()
    assert not is_signed_in(client)


def test_an_unknown_email_gets_the_same_message(client, cast):
    response = sign_in(client, "nobody@acme.test", "whatever it is")
    assert "That email and password don’t match an account" in response.content.decode()


def test_a_deactivated_user_cannot_sign_in(client, cast):
    User.objects.filter(pk=cast.agent.pk).update(is_active=False)
    response = sign_in(client, "agent@acme.test")
    assert response.status_code == 200
    assert not is_signed_in(client)


def test_repeated_failures_lock_the_account_even_for_the_right_password(client, cast):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, "agent@acme.test", "guess again")
    response = sign_in(client, "agent@acme.test")
    assert response.status_code == 429
    assert "Too many sign-in attempts" in response.content.decode()
    assert not is_signed_in(client)


def test_failures_below_the_limit_do_not_lock_the_account(client, cast):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        sign_in(client, "agent@acme.test", "guess again")
    assert sign_in(client, "agent@acme.test").status_code == 302


def test_a_lockout_of_one_account_leaves_others_alone(client, cast):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, "agent@acme.test", "guess again")
    assert sign_in(Client(), "admin@acme.test").status_code == 302


def test_signing_out_is_a_post_and_ends_the_session(agent_client):
    assert agent_client.get("/accounts/logout/").status_code == 405
    response = agent_client.post("/accounts/logout/")
    assert response.status_code == 302
    assert response["Location"] == reverse("login")
    after = agent_client.get("/t/acme/queue/")
    assert after.status_code == 302
    assert urlsplit(after["Location"]).path == LOGIN


def test_the_signed_in_user_comes_from_the_access_cache(client, cast, django_assert_num_queries):
    from helpdesk.auth_backends import CachedModelBackend

    sign_in(client, "agent@acme.test")
    user_id = client.session["_auth_user_id"]
    assert CachedModelBackend().get_user(user_id).email == "agent@acme.test"
    with django_assert_num_queries(0):
        assert CachedModelBackend().get_user(user_id).email == "agent@acme.test"
    assert CachedModelBackend().get_user("not-a-number") is None


def test_a_password_changed_elsewhere_ends_the_other_sessions_at_once(client, cast):
    sign_in(client, "agent@acme.test")
    assert client.get("/t/acme/queue/").status_code == 200  # the user is cached now
    user = User.objects.get(email="agent@acme.test")
    user.set_password("a-new-long-passphrase-2026")
    user.save()
    assert client.get("/t/acme/queue/").status_code == 302


def test_a_deactivated_user_is_signed_out_at_once(client, cast):
    sign_in(client, "agent@acme.test")
    assert client.get("/t/acme/queue/").status_code == 200
    user = User.objects.get(email="agent@acme.test")
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert client.get("/t/acme/queue/").status_code == 302


def test_a_signed_in_user_visiting_the_login_page_is_sent_on(agent_client):
    assert agent_client.get(LOGIN).status_code == 302


def _reset_link(message) -> str:
    match = re.search(r"https?://[^/\s]+(/accounts/reset/[^\s]+/)", message.body)
    assert match, message.body
    return match.group(1)


def test_password_reset_emails_a_link_that_sets_a_new_password(client, cast):
    response = client.post("/accounts/password-reset/", {"email": "agent@acme.test"})
    assert response["Location"] == "/accounts/password-reset/sent/"
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["agent@acme.test"]
    assert message.subject == "Reset your Storedesk password"

    form_page = client.get(_reset_link(message), follow=True)
    assert b"Choose a new password" in form_page.content
    new_password = "a fresh and long passphrase"
    done = client.post(
        form_page.request["PATH_INFO"],
        {"new_password1": new_password, "new_password2": new_password},
    )
    assert done["Location"] == "/accounts/reset/done/"

    assert sign_in(Client(), "agent@acme.test", PASSWORD).status_code == 200
    assert sign_in(Client(), "agent@acme.test", new_password).status_code == 302


def test_a_reset_link_works_only_once(client, cast):
    client.post("/accounts/password-reset/", {"email": "agent@acme.test"})
    link = _reset_link(mail.outbox[0])
    form_page = client.get(link, follow=True)
    new_password = "a fresh and long passphrase"
    client.post(
        form_page.request["PATH_INFO"],
        {"new_password1": new_password, "new_password2": new_password},
    )
    again = Client().get(link, follow=True)
    assert b"This link has expired" in again.content


def test_a_reset_for_an_unknown_email_sends_nothing_but_looks_the_same(client, cast):
    response = client.post("/accounts/password-reset/", {"email": "nobody@acme.test"})
    assert response["Location"] == "/accounts/password-reset/sent/"
    assert mail.outbox == []


def test_a_weak_new_password_is_refused(client, cast):
    client.post("/accounts/password-reset/", {"email": "agent@acme.test"})
    form_page = client.get(_reset_link(mail.outbox[0]), follow=True)
    response = client.post(form_page.request["PATH_INFO"], {"new_password1": "short", "new_password2": "short"})
    assert response.status_code == 200
    assert b"too short" in response.content


def test_argon2_is_the_production_password_hasher(client, cast):
    from helpdesk import settings as production

    assert production.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"
    with override_settings(PASSWORD_HASHERS=production.PASSWORD_HASHERS):
        cast.agent.set_password("a production passphrase")
        cast.agent.save(update_fields=["password"])
        assert identify_hasher(cast.agent.password).algorithm == "argon2"
        assert sign_in(client, "agent@acme.test", "a production passphrase").status_code == 302
