"""The app shell in a real browser: sign in, the settings pages, the shortcuts dialog."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from helpdesk.models import ApiToken

pytestmark = pytest.mark.browser


def test_an_admin_signs_in_and_walks_through_settings(page, shot, sign_in, cast):
    page.goto("/accounts/login/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    shot("01-login")

    sign_in(page, "admin@acme.test")
    expect(page).to_have_url(re.compile(r"/t/acme/queue/$"))
    expect(page.locator('[data-nav="queue"]')).to_have_attribute("aria-current", "page")
    shot("02-queue")

    page.locator('[data-nav="settings"]').click()
    expect(page).to_have_url(re.compile(r"/t/acme/settings/general/$"))
    expect(page.get_by_role("heading", name="General", exact=True)).to_be_visible()
    expect(page.get_by_label("Name")).to_have_value("Acme Socks")
    shot("03-settings-general")

    page.get_by_role("navigation", name="Settings").get_by_role("link", name="Members").click()
    expect(page.get_by_role("heading", name="Members", exact=True)).to_be_visible()
    for email in ("agent@acme.test", "lead@acme.test", "owner@acme.test"):
        expect(page.get_by_text(email, exact=True)).to_be_visible()
    shot("04-settings-members")

    page.get_by_role("navigation", name="Settings").get_by_role("link", name="API tokens").click()
    expect(page.get_by_role("heading", name="API tokens", exact=True)).to_be_visible()
    shot("05-settings-tokens-empty")
    page.get_by_label("Name").fill("ERP sync")
    page.get_by_role("button", name="Create token").click()
    callout = page.locator(".callout.ok")
    expect(callout).to_be_visible()
    expect(callout).to_contain_text("won’t be shown again")
    secret = page.locator("#new-token").inner_text().strip()
    assert secret.startswith(f"sd_{cast.tenant.pk}_")
    assert ApiToken.objects.filter(tenant=cast.tenant, name="ERP sync").exists()
    shot("06-settings-tokens-created")

    page.get_by_role("navigation", name="Settings").get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("heading", name="Audit log", exact=True)).to_be_visible()
    expect(page.get_by_text("api_token.create")).to_be_visible()
    # The secret is on the creation response only.
    assert secret not in page.content()
    shot("07-settings-audit")

    page.locator("body").press("?")
    dialog = page.locator("dialog#shortcuts")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("heading", name="Keyboard shortcuts")).to_be_visible()
    shot("08-shortcuts-dialog")
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()


def test_a_wrong_password_is_explained_on_the_login_page(page, shot, sign_in, cast):
    sign_in(page, "agent@acme.test", "not the password")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    expect(page.get_by_role("alert")).to_contain_text("don’t match an account")
    shot("09-login-error")


def test_the_outsider_sees_the_not_found_page_for_tenant_a(page, shot, sign_in, cast):
    sign_in(page, "outsider@globex.test")
    expect(page).to_have_url(re.compile(r"/t/globex/"))
    response = page.goto("/t/acme/settings/")
    assert response.status == 404
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    assert "Acme" not in page.content()
    shot("10-not-found")


def test_an_admin_invites_someone_and_revokes_a_token(page, shot, sign_in, cast):
    from tests.factories import make_token

    make_token(cast.tenant, name="Old ERP")
    sign_in(page, "admin@acme.test")

    page.goto("/t/acme/settings/members/")
    page.get_by_label("Email").fill("new.hire@acme.test")
    page.get_by_label("Role", exact=True).select_option("lead")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.locator(".flash.success")).to_contain_text("Invitation sent to new.hire@acme.test")
    expect(page.get_by_role("cell", name="new.hire@acme.test")).to_be_visible()
    shot("11-members-invited")

    page.goto("/t/acme/settings/tokens/")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke").click()
    expect(page.locator(".flash.success")).to_contain_text("now get 401")
    expect(page.get_by_text("Revoked", exact=False).first).to_be_visible()
    shot("12-tokens-revoked")


def _queue_of_two(page, sign_in, cast):
    """An agent on the "All open" queue of two tickets: (its rows, the page body)."""
    from tests.tickets_fixtures import make_ticket

    make_ticket(cast, subject="Parcel lost", email="a@example.com")
    make_ticket(cast, subject="Wrong colour", email="b@example.com")
    sign_in(page, "agent@acme.test")
    page.goto("/t/acme/queue/?view=all")
    rows = page.locator("#queue-rows .qrow")
    expect(rows).to_have_count(2)
    return rows, page.locator("body")


def test_the_queue_is_worked_from_the_keyboard(page, sign_in, cast):
    rows, body = _queue_of_two(page, sign_in, cast)
    body.press("j")
    expect(rows.nth(0)).to_have_class(re.compile(r"\bis-cursor\b"))
    body.press("j")
    expect(rows.nth(1)).to_have_class(re.compile(r"\bis-cursor\b"))
    expect(rows.nth(0)).not_to_have_class(re.compile(r"\bis-cursor\b"))
    body.press("k")
    expect(rows.nth(0)).to_have_class(re.compile(r"\bis-cursor\b"))
    body.press("x")
    expect(rows.nth(0).locator('input[name="ids"]')).to_be_checked()
    expect(page.locator("#bulk-bar")).to_be_visible()
    href = rows.nth(0).get_attribute("data-href")
    body.press("Enter")
    expect(page).to_have_url(re.compile(re.escape(href) + "$"))
    expect(page.locator("#composer")).to_be_visible()


def test_the_queue_cursor_stays_on_its_ticket_when_the_rows_refresh(page, sign_in, cast):
    """The live refresh (and any other htmx swap, such as the bell's) keeps the agent's place."""
    from tests.tickets_fixtures import make_ticket

    rows, body = _queue_of_two(page, sign_in, cast)
    body.press("j")
    body.press("j")
    expect(rows.nth(1)).to_have_class(re.compile(r"\bis-cursor\b"))
    chosen = rows.nth(1).get_attribute("data-id")
    make_ticket(cast, subject="Urgent: charged twice", email="c@example.com", priority="urgent")
    page.evaluate(
        """() => new Promise((done) => {
            document.body.addEventListener("htmx:afterSettle", () => done(), { once: true });
            htmx.ajax("GET", "/t/acme/queue/?view=all&partial=rows", { target: "#queue-rows", swap: "outerHTML" });
        })"""
    )
    expect(rows).to_have_count(3)
    cursor = page.locator("#queue-rows .qrow.is-cursor")
    expect(cursor).to_have_count(1)
    expect(cursor).to_have_attribute("data-id", chosen)
    body.press("k")  # and moves on from there
    expect(page.locator("#queue-rows .qrow.is-cursor")).not_to_have_attribute("data-id", chosen)
