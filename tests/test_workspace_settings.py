"""Workspace settings pages: general, members and invitations, API tokens, audit log."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from helpdesk.models import ApiToken, AuditLog, Invitation, Membership, Role, User
from helpdesk.services import Actor, invitation_create, invitation_revoke
from tests.factories import make_token

BASE = "/t/acme/settings/"
MEMBERS = f"{BASE}members/"
TOKENS = f"{BASE}tokens/"
AUDIT = f"{BASE}audit/"
GENERAL = f"{BASE}general/"
NEW_PASSWORD = "a long and fresh passphrase"


def membership(user: User) -> Membership:
    return Membership.objects.get(user=user, tenant__slug="acme")


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def invite(tenant, email: str, role: str = Role.AGENT, by: User | None = None) -> tuple[Invitation, str]:
    """Invite through the service; returns the invitation and the path of its emailed link."""
    invitation, url = invitation_create(
        tenant=tenant, email=email, role=role, actor=Actor.for_user(by) if by else Actor.system()
    )
    match = re.search(r"/invite/\d+/[^/]+/", url)
    assert match is not None, url
    return invitation, match.group(0)


def api_status(plaintext: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client.get("/api/v1/me/").status_code


# --- General ----------------------------------------------------------------------------


def test_general_settings_save_name_and_timezone_and_are_audited(admin_client_a, cast):
    response = admin_client_a.post(
        GENERAL,
        {"name": "Acme Socks & Co", "timezone": "America/New_York", "default_language": "de"},
    )
    assert response.status_code == 302
    cast.tenant.refresh_from_db()
    assert (cast.tenant.name, cast.tenant.timezone, cast.tenant.default_language) == (
        "Acme Socks & Co",
        "America/New_York",
        "de",
    )
    entry = AuditLog.objects.get(tenant=cast.tenant, action="tenant.update")
    assert entry.actor_user == cast.admin
    assert entry.changes == {
        "name": ["Acme Socks", "Acme Socks & Co"],
        "timezone": ["Europe/Berlin", "America/New_York"],
        "default_language": ["en", "de"],
    }
    page = admin_client_a.get(response["Location"])
    assert "Workspace settings saved." in messages_of(page)


def test_settings_open_on_general_for_admins_and_on_members_for_agents(admin_client_a, agent_client):
    assert admin_client_a.get(BASE)["Location"] == GENERAL
    assert agent_client.get(BASE)["Location"] == MEMBERS


def test_saving_unchanged_settings_writes_no_audit_entry(admin_client_a, cast):
    admin_client_a.post(GENERAL, {"name": "Acme Socks", "timezone": "Europe/Berlin", "default_language": "en"})
    assert not AuditLog.objects.filter(tenant=cast.tenant, action="tenant.update").exists()


def test_an_unknown_timezone_is_a_form_error_and_changes_nothing(admin_client_a, cast):
    response = admin_client_a.post(GENERAL, {"name": "Renamed", "timezone": "Mars/Olympus", "default_language": "en"})
    assert response.status_code == 200
    assert response.context["form"].errors["timezone"]
    cast.tenant.refresh_from_db()
    assert cast.tenant.name == "Acme Socks"
    assert not AuditLog.objects.filter(tenant=cast.tenant).exists()


def test_an_agent_cannot_open_general_settings(agent_client, lead_client):
    assert agent_client.get(GENERAL).status_code == 403
    assert lead_client.get(GENERAL).status_code == 403
    assert (
        agent_client.post(GENERAL, {"name": "Mine now", "timezone": "UTC", "default_language": "en"}).status_code == 403
    )


# --- Members ----------------------------------------------------------------------------


def test_the_members_page_lists_every_member_with_role(agent_client, cast):
    response = agent_client.get(MEMBERS)
    assert response.status_code == 200
    content = response.content.decode()
    for person in (cast.agent, cast.lead, cast.admin, cast.owner):
        assert person.email in content
    assert cast.outsider.email not in content
    # Agents see the team but not the management controls.
    assert "Send invitation" not in content
    assert f'action="/t/acme/settings/members/{membership(cast.lead).pk}/"' not in content


def test_an_agent_cannot_invite_people(agent_client, cast):
    response = agent_client.post(MEMBERS, {"email": "friend@acme.test", "role": "admin"}, follow=True)
    assert "Only admins can invite people." in messages_of(response)
    assert not Invitation.objects.filter(tenant=cast.tenant).exists()


def test_an_admin_invites_by_email_and_the_email_carries_the_link(
    admin_client_a, cast, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client_a.post(MEMBERS, {"email": "New.Hire@Acme.test", "role": "lead"})
    assert response.status_code == 302
    invitation = Invitation.objects.get(tenant=cast.tenant)
    assert (invitation.email, invitation.role, invitation.invited_by) == (
        "new.hire@acme.test",
        "lead",
        cast.admin,
    )
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["new.hire@acme.test"]
    assert "Acme Socks" in message.subject
    link = re.search(r"https?://\S+(/invite/\d+/\S+/)", message.body).group(1)
    assert Client().get(link).status_code == 200
    page = admin_client_a.get(MEMBERS).content.decode()
    assert "new.hire@acme.test" in page
    assert AuditLog.objects.filter(tenant=cast.tenant, action="invitation.create").exists()


def test_inviting_an_existing_member_is_a_form_error(admin_client_a, cast, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client_a.post(MEMBERS, {"email": "agent@acme.test", "role": "agent"})
    assert response.status_code == 200
    assert "already a member" in str(response.context["form"].errors)
    assert mail.outbox == []


def test_nobody_can_be_invited_as_owner(admin_client_a, cast):
    response = admin_client_a.post(MEMBERS, {"email": "boss@acme.test", "role": "owner"})
    assert response.status_code == 200
    assert response.context["form"].errors["role"]
    assert not Invitation.objects.filter(tenant=cast.tenant).exists()


def test_accepting_an_invitation_as_a_new_person_creates_the_account_and_membership(cast):
    _invitation, link = invite(cast.tenant, "newbie@acme.test", Role.LEAD, by=cast.admin)
    client = Client()
    page = client.get(link)
    assert page.status_code == 200
    assert "newbie@acme.test" in page.content.decode()
    response = client.post(link, {"name": "Nina Newbie", "password": NEW_PASSWORD})
    assert response.status_code == 302
    user = User.objects.get(email="newbie@acme.test")
    assert user.name == "Nina Newbie"
    assert user.check_password(NEW_PASSWORD)
    assert membership(user).role == Role.LEAD
    assert client.get(response["Location"], follow=True).status_code == 200
    assert client.session["_auth_user_id"] == str(user.pk)
    # The link is spent.
    assert Client().get(link).status_code == 404


def test_accepting_with_a_weak_password_is_a_form_error(cast):
    _invitation, link = invite(cast.tenant, "newbie@acme.test")
    response = Client().post(link, {"name": "Nina", "password": "short"})
    assert response.status_code == 200
    assert response.context["form"].errors["password"]
    assert not User.objects.filter(email="newbie@acme.test").exists()


def test_an_existing_account_is_asked_to_sign_in_to_accept(cast):
    _invitation, link = invite(cast.tenant, cast.outsider.email)
    response = Client().get(link)
    assert response.status_code == 200
    assert "Sign in to accept" in response.content.decode()


def test_a_signed_in_invitee_accepts_with_one_click(outsider_client, cast):
    _invitation, link = invite(cast.tenant, cast.outsider.email, Role.AGENT)
    response = outsider_client.post(link)
    assert response["Location"] == "/t/acme/"
    assert membership(cast.outsider).role == Role.AGENT


def test_accepting_while_signed_in_with_another_email_is_refused(outsider_client, cast):
    invitation, link = invite(cast.tenant, "someone.else@acme.test")
    response = outsider_client.post(link, follow=True)
    assert any("was sent to someone.else@acme.test" in m for m in messages_of(response))
    assert not Membership.objects.filter(tenant=cast.tenant, user=cast.outsider).exists()
    invitation.refresh_from_db()
    assert invitation.accepted_at is None


@pytest.mark.parametrize("spoil", ["expired", "revoked", "tampered", "other tenant", "used"])
def test_a_spoiled_invitation_link_shows_the_invalid_page_with_404(cast, spoil):
    invitation, link = invite(cast.tenant, "newbie@acme.test")
    if spoil == "expired":
        Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    elif spoil == "revoked":
        invitation_revoke(invitation=invitation, actor=Actor.system())
    elif spoil == "tampered":
        link = link[:-3] + ("AA/" if not link.endswith("AA/") else "BB/")
    elif spoil == "other tenant":
        link = link.replace(f"/invite/{cast.tenant.pk}/", f"/invite/{cast.other_tenant.pk}/")
    elif spoil == "used":
        Invitation.objects.filter(pk=invitation.pk).update(accepted_at=timezone.now())
    client = Client()
    for response in (client.get(link), client.post(link, {"name": "N", "password": NEW_PASSWORD})):
        assert response.status_code == 404
        assert "This invitation isn’t valid" in response.content.decode()
    assert not User.objects.filter(email="newbie@acme.test").exists()


def test_an_admin_revokes_a_pending_invitation(admin_client_a, cast):
    invitation, link = invite(cast.tenant, "newbie@acme.test")
    response = admin_client_a.post(f"{BASE}invitations/{invitation.pk}/revoke/")
    assert response.status_code == 302
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None
    assert Client().get(link).status_code == 404


def test_an_admin_changes_a_members_role_and_it_is_audited(admin_client_a, cast):
    target = membership(cast.agent)
    response = admin_client_a.post(f"{MEMBERS}{target.pk}/", {"role": "lead"}, follow=True)
    assert "agent@acme.test is now Team lead." in messages_of(response)
    target.refresh_from_db()
    assert target.role == Role.LEAD
    entry = AuditLog.objects.get(tenant=cast.tenant, action="member.role")
    assert entry.changes == {"role": ["agent", "lead"]}


def test_an_admin_removes_a_member(admin_client_a, cast):
    target = membership(cast.agent)
    admin_client_a.post(f"{MEMBERS}{target.pk}/", {"remove": "1"})
    assert not Membership.objects.filter(pk=target.pk).exists()
    assert User.objects.filter(pk=cast.agent.pk).exists()


def test_the_last_owner_cannot_be_demoted_or_removed(cast):
    owner_client = Client()
    owner_client.force_login(cast.owner, backend="helpdesk.auth_backends.CachedModelBackend")
    target = membership(cast.owner)
    response = owner_client.post(f"{MEMBERS}{target.pk}/", {"role": "admin"}, follow=True)
    assert "A workspace needs at least one owner." in messages_of(response)
    response = owner_client.post(f"{MEMBERS}{target.pk}/", {"remove": "1"}, follow=True)
    assert "The last owner cannot be removed." in messages_of(response)
    target.refresh_from_db()
    assert target.role == Role.OWNER


def test_an_owner_may_step_down_once_there_is_another_owner(cast):
    owner_client = Client()
    owner_client.force_login(cast.owner, backend="helpdesk.auth_backends.CachedModelBackend")
    owner_client.post(f"{MEMBERS}{membership(cast.admin).pk}/", {"role": "owner"})
    owner_client.post(f"{MEMBERS}{membership(cast.owner).pk}/", {"role": "admin"})
    assert membership(cast.admin).role == Role.OWNER
    assert membership(cast.owner).role == Role.ADMIN


def test_an_admin_cannot_make_anyone_an_owner(admin_client_a, cast):
    response = admin_client_a.post(f"{MEMBERS}{membership(cast.admin).pk}/", {"role": "owner"}, follow=True)
    assert "Only an owner can grant or change the owner role." in messages_of(response)
    admin_client_a.post(f"{MEMBERS}{membership(cast.agent).pk}/", {"role": "owner"})
    assert membership(cast.admin).role == Role.ADMIN
    assert membership(cast.agent).role == Role.AGENT


def test_an_admin_cannot_demote_or_remove_an_owner(admin_client_a, cast):
    owner_client = Client()
    owner_client.force_login(cast.owner, backend="helpdesk.auth_backends.CachedModelBackend")
    owner_client.post(f"{MEMBERS}{membership(cast.lead).pk}/", {"role": "owner"})
    assert membership(cast.lead).role == Role.OWNER
    admin_client_a.post(f"{MEMBERS}{membership(cast.lead).pk}/", {"role": "agent"})
    response = admin_client_a.post(f"{MEMBERS}{membership(cast.owner).pk}/", {"remove": "1"}, follow=True)
    assert "Only an owner can remove an owner." in messages_of(response)
    assert membership(cast.lead).role == Role.OWNER
    assert membership(cast.owner).role == Role.OWNER


def test_an_admin_sees_no_owner_controls(admin_client_a, cast):
    content = admin_client_a.get(MEMBERS).content.decode()
    assert f'action="/t/acme/settings/members/{membership(cast.agent).pk}/"' in content
    assert f'action="/t/acme/settings/members/{membership(cast.owner).pk}/"' not in content
    assert '<option value="owner"' not in content


def test_an_owner_sees_the_owner_option(cast):
    owner_client = Client()
    owner_client.force_login(cast.owner, backend="helpdesk.auth_backends.CachedModelBackend")
    assert '<option value="owner"' in owner_client.get(MEMBERS).content.decode()


def test_an_agent_cannot_change_roles(agent_client, cast):
    assert agent_client.post(f"{MEMBERS}{membership(cast.agent).pk}/", {"role": "admin"}).status_code == 403
    assert membership(cast.agent).role == Role.AGENT


# --- API tokens -------------------------------------------------------------------------


def test_a_new_token_is_shown_once_and_works(admin_client_a, cast):
    response = admin_client_a.post(TOKENS, {"name": "ERP sync"})
    assert response.status_code == 200
    match = re.search(r'<code id="new-token">(sd_[^<]+)</code>', response.content.decode())
    assert match, "the one-time secret callout is missing"
    plaintext = match.group(1)
    assert api_status(plaintext) == 200
    later = admin_client_a.get(TOKENS).content.decode()
    assert "ERP sync" in later
    assert plaintext not in later
    # sd_<tenant>_<prefix>_<secret>; the secret is URL-safe base64, itself free to hold "_"
    # (the last "_"-part was once just "css", found in the page's stylesheet link).
    assert plaintext.split("_", 3)[3] not in later
    assert 'id="new-token"' not in later


def test_a_token_without_a_name_is_a_form_error(admin_client_a, cast):
    response = admin_client_a.post(TOKENS, {"name": ""})
    assert response.context["form"].errors["name"]
    assert not ApiToken.objects.filter(tenant=cast.tenant).exists()


def test_revoking_a_token_in_the_ui_makes_the_api_answer_401(admin_client_a, cast):
    token, plaintext = make_token(cast.tenant, name="ERP sync")
    assert api_status(plaintext) == 200
    response = admin_client_a.post(f"{TOKENS}{token.pk}/revoke/", follow=True)
    assert any("revoked" in m for m in messages_of(response))
    assert api_status(plaintext) == 401
    assert AuditLog.objects.filter(tenant=cast.tenant, action="api_token.revoke").exists()


def test_an_agent_cannot_see_or_create_tokens(agent_client, cast):
    assert agent_client.get(TOKENS).status_code == 403
    assert agent_client.post(TOKENS, {"name": "sneaky"}).status_code == 403
    assert not ApiToken.objects.filter(tenant=cast.tenant).exists()


# --- Audit log --------------------------------------------------------------------------


def test_the_audit_log_shows_recent_changes_to_admins(admin_client_a, cast):
    admin_client_a.post(TOKENS, {"name": "ERP sync"})
    response = admin_client_a.get(AUDIT)
    assert response.status_code == 200
    content = response.content.decode()
    assert "api_token.create" in content
    assert "admin@acme.test" in content


def test_the_audit_log_filters_by_action(admin_client_a, cast):
    make_token(cast.tenant, name="One")
    invite(cast.tenant, "newbie@acme.test")
    content = admin_client_a.get(AUDIT, {"action": "invitation.create"}).content.decode()
    assert "<code>invitation.create</code>" in content
    assert "<code>api_token.create</code>" not in content


def test_the_audit_log_shows_times_in_the_workspace_time_zone(admin_client_a, cast):
    make_token(cast.tenant, name="One")
    AuditLog.objects.filter(tenant=cast.tenant).update(created_at=datetime(2026, 1, 15, 12, 30, tzinfo=UTC))
    content = admin_client_a.get(AUDIT).content.decode()
    assert "Jan 15, 13:30" in content  # Europe/Berlin is UTC+1 in January


def test_the_audit_log_is_403_to_agents_and_leads(agent_client, lead_client):
    assert agent_client.get(AUDIT).status_code == 403
    assert lead_client.get(AUDIT).status_code == 403


# --- Availability -----------------------------------------------------------------------


def test_the_availability_switch_saves_and_returns_to_the_page(agent_client, cast):
    response = agent_client.post("/t/acme/availability/", {"availability": "away", "next": MEMBERS})
    assert response["Location"] == MEMBERS
    assert membership(cast.agent).availability == "away"


def test_the_availability_switch_answers_htmx_with_the_menu_partial(agent_client, cast):
    response = agent_client.post("/t/acme/availability/", {"availability": "offline"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    content = response.content.decode()
    assert 'id="availability-menu"' in content
    assert "<html" not in content
    assert membership(cast.agent).availability == "offline"


def test_an_unknown_availability_changes_nothing(agent_client, cast):
    before = membership(cast.agent).availability
    response = agent_client.post("/t/acme/availability/", {"availability": "asleep"}, follow=True)
    assert "Choose online, away or offline." in messages_of(response)
    assert membership(cast.agent).availability == before


def test_the_availability_switch_ignores_an_offsite_next(agent_client):
    response = agent_client.post("/t/acme/availability/", {"availability": "away", "next": "https://evil.example/"})
    assert response["Location"] == "/t/acme/"


# --- Outsider ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["", "general/", "members/", "tokens/", "audit/"])
def test_outsider_gets_404_on_every_settings_page_of_tenant_a(outsider_client, path):
    assert outsider_client.get(f"{BASE}{path}").status_code == 404


@pytest.fixture
def tenant_a_targets(cast):
    token, plaintext = make_token(cast.tenant, name="Acme ERP")
    invitation, _link = invite(cast.tenant, "newbie@acme.test")
    return {
        "token": token,
        "plaintext": plaintext,
        "invitation": invitation,
        "member": membership(cast.agent),
    }


@pytest.mark.parametrize("slug", ["acme", "globex"], ids=["under tenant A", "under its own tenant"])
def test_outsider_gets_404_on_member_update_with_a_tenant_a_id(outsider_client, tenant_a_targets, slug):
    member = tenant_a_targets["member"]
    for data in ({"role": "owner"}, {"remove": "1"}):
        assert outsider_client.post(f"/t/{slug}/settings/members/{member.pk}/", data).status_code == 404
    member.refresh_from_db()
    assert member.role == Role.AGENT


@pytest.mark.parametrize("slug", ["acme", "globex"], ids=["under tenant A", "under its own tenant"])
def test_outsider_gets_404_on_token_revoke_with_a_tenant_a_id(outsider_client, tenant_a_targets, slug):
    token = tenant_a_targets["token"]
    assert outsider_client.post(f"/t/{slug}/settings/tokens/{token.pk}/revoke/").status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
    assert api_status(tenant_a_targets["plaintext"]) == 200


@pytest.mark.parametrize("slug", ["acme", "globex"], ids=["under tenant A", "under its own tenant"])
def test_outsider_gets_404_on_invitation_revoke_with_a_tenant_a_id(outsider_client, tenant_a_targets, slug):
    invitation = tenant_a_targets["invitation"]
    assert outsider_client.post(f"/t/{slug}/settings/invitations/{invitation.pk}/revoke/").status_code == 404
    invitation.refresh_from_db()
    assert invitation.revoked_at is None


def test_outsider_posts_to_tenant_a_settings_change_nothing(outsider_client, cast):
    assert (
        outsider_client.post(GENERAL, {"name": "Pwned", "timezone": "UTC", "default_language": "en"}).status_code == 404
    )
    assert outsider_client.post(TOKENS, {"name": "backdoor"}).status_code == 404
    assert outsider_client.post(MEMBERS, {"email": "spy@globex.test", "role": "admin"}).status_code == 404
    assert outsider_client.post("/t/acme/availability/", {"availability": "online"}).status_code == 404
    cast.tenant.refresh_from_db()
    assert cast.tenant.name == "Acme Socks"
    assert not ApiToken.objects.filter(tenant=cast.tenant).exists()
    assert not Invitation.objects.filter(tenant=cast.tenant).exists()
