"""The management commands of the public contract: create_tenant, create_api_token, seed_demo."""

from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from rest_framework.test import APIClient

from helpdesk.demo import DEMO_LOGINS, DEMO_PASSWORD, DEMO_SLUG
from helpdesk.models import ApiToken, AuditLog, Membership, Role, Tenant, User

REPO = Path(settings.BASE_DIR)


def run(*args, **options) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO(), **options)
    return out.getvalue()


def test_create_tenant_makes_the_workspace_and_its_owner(db):
    output = run(
        "create_tenant",
        "--name",
        "Initech Shoes",
        "--slug",
        "initech",
        "--owner-email",
        "Boss@Initech.test",
    )
    tenant = Tenant.objects.get(slug="initech")
    assert tenant.name == "Initech Shoes"
    owner = User.objects.get(email="boss@initech.test")
    assert Membership.objects.get(tenant=tenant, user=owner).role == Role.OWNER
    assert AuditLog.objects.filter(tenant=tenant, action="tenant.create").exists()
    assert "initech" in output
    assert "Forgot your password?" in output  # the owner has no password yet


def test_create_tenant_reuses_an_existing_user_as_owner(cast):
    run(
        "create_tenant",
        "--name",
        "Second Store",
        "--slug",
        "second",
        "--owner-email",
        "agent@acme.test",
    )
    assert Membership.objects.get(tenant__slug="second", user=cast.agent).role == Role.OWNER
    assert User.objects.filter(email="agent@acme.test").count() == 1


def test_create_tenant_with_a_taken_slug_fails_with_one_line_and_changes_nothing(cast):
    before = (Tenant.objects.count(), User.objects.count())
    with pytest.raises(CommandError) as excinfo:
        run("create_tenant", "--name", "Copycat", "--slug", "acme", "--owner-email", "copy@cat.test")
    message = str(excinfo.value)
    assert "acme" in message
    assert "\n" not in message
    assert (Tenant.objects.count(), User.objects.count()) == before


@pytest.mark.parametrize(
    ("option", "value"),
    [("--slug", "Not A Slug"), ("--timezone", "Mars/Olympus")],
    ids=["bad slug", "bad timezone"],
)
def test_create_tenant_with_a_bad_value_fails_with_one_line(db, option, value):
    args = {"--name": "Store", "--slug": "store", "--owner-email": "o@store.test", option: value}
    with pytest.raises(CommandError) as excinfo:
        run("create_tenant", *[part for pair in args.items() for part in pair])
    assert "\n" not in str(excinfo.value)
    assert not Tenant.objects.filter(name="Store").exists()


def test_create_api_token_prints_the_token_alone_on_the_last_line_and_it_works(cast):
    output = run("create_api_token", "--tenant", "acme", "--name", "Warehouse")
    token = output.strip().splitlines()[-1]
    assert token == token.strip()
    assert token.startswith(f"sd_{cast.tenant.pk}_")
    assert " " not in token
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = client.get("/api/v1/me/")
    assert response.status_code == 200
    assert response.json()["tenant"]["slug"] == "acme"
    assert ApiToken.objects.get(tenant=cast.tenant).name == "Warehouse"
    # Shown once: the stored row holds only a hash.
    assert token not in str(list(ApiToken.objects.values()))


def test_create_api_token_for_an_unknown_tenant_fails_with_one_line(db):
    with pytest.raises(CommandError) as excinfo:
        run("create_api_token", "--tenant", "nope", "--name", "X")
    assert "nope" in str(excinfo.value)
    assert "\n" not in str(excinfo.value)
    assert not ApiToken.objects.exists()


def test_create_api_token_with_a_blank_name_fails(cast):
    with pytest.raises(CommandError):
        run("create_api_token", "--tenant", "acme", "--name", "   ")
    assert not ApiToken.objects.exists()


def test_a_failing_command_exits_non_zero_with_one_line_on_stderr(db):
    """The real process: exit status and stderr, as a shell script would see them."""
    if connection.vendor != "postgresql":
        pytest.skip("a second process cannot see the in-memory SQLite test database")
    database = connection.settings_dict
    credentials = database["USER"] + (f":{database['PASSWORD']}" if database["PASSWORD"] else "")
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{credentials}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        "DJANGO_SETTINGS_MODULE": "helpdesk.settings_test",
    }
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "create_api_token",
            "--tenant",
            "no-such-store",
            "--name",
            "X",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == ["CommandError: No workspace with slug “no-such-store”."]


def _row_counts() -> dict[str, int]:
    return {
        model._meta.label: model._default_manager.count()
        for model in apps.get_models()
        if model._meta.managed and not model._meta.proxy
    }


@pytest.mark.smoke
def test_seed_demo_twice_is_idempotent_and_its_logins_work(client, db):
    """One test, because seeding the demo store is the slow part."""
    first = run("seed_demo")
    assert "created" in first
    demo = Tenant.objects.get(slug=DEMO_SLUG)
    assert Membership.objects.filter(tenant=demo).count() >= 4
    after_first = _row_counts()

    second = run("seed_demo")
    assert "already exists; nothing changed" in second
    assert _row_counts() == after_first
    quiet = run("seed_demo", "--once")
    assert "already exists" not in quiet
    assert _row_counts() == after_first

    for _role, email in DEMO_LOGINS:
        assert email in first
        assert User.objects.get(email=email).check_password(DEMO_PASSWORD)
    response = client.post("/accounts/login/", {"username": DEMO_LOGINS[-1][1], "password": DEMO_PASSWORD})
    assert response.status_code == 302


@pytest.mark.smoke
def test_the_health_check_answers_on_the_embedded_default_too(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
