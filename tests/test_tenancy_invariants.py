"""Invariant 1 as a schema check: every tenant-owned index and unique key is led by `tenant`.

Walks the live app registry, so models that other apps add later are checked too.
"""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import models
from django.test.utils import isolate_apps

from helpdesk.models import TenantOwnedModel


def tenant_owned_models() -> list[type[models.Model]]:
    return [
        model
        for model in apps.get_models()
        if issubclass(model, TenantOwnedModel) and not model._meta.abstract and not model._meta.proxy
    ]


def _label(model: type[models.Model]) -> str:
    return model._meta.label


def _first_field_name(model: type[models.Model], name: str) -> str:
    """The model field an index/constraint entry names ("-created_at" and "tenant_id" included)."""
    name = name.lstrip("-")
    try:
        return model._meta.get_field(name).name
    except Exception:  # an attname such as tenant_id
        for field in model._meta.concrete_fields:
            if field.attname == name:
                return field.name
        return name


def _leads_with_tenant(model: type[models.Model], names) -> bool:
    names = list(names)
    return bool(names) and _first_field_name(model, names[0]) == "tenant"


def index_problems(model: type[models.Model]) -> list[str]:
    problems = []
    for index in model._meta.indexes:
        if index.expressions:
            problems.append(f"{_label(model)}: index {index.name!r} is an expression index; lead it with tenant")
        elif not _leads_with_tenant(model, index.fields):
            problems.append(f"{_label(model)}: index {index.name!r} on {list(index.fields)} does not start with tenant")
    return problems


def unique_problems(model: type[models.Model]) -> list[str]:
    problems = []
    for constraint in model._meta.constraints:
        if not isinstance(constraint, models.UniqueConstraint):
            continue
        if constraint.expressions:
            problems.append(
                f"{_label(model)}: unique constraint {constraint.name!r} is an expression constraint; "
                "lead it with tenant"
            )
        elif not _leads_with_tenant(model, constraint.fields):
            problems.append(
                f"{_label(model)}: unique constraint {constraint.name!r} on {list(constraint.fields)} "
                "does not start with tenant"
            )
    for fields in model._meta.unique_together:
        if not _leads_with_tenant(model, fields):
            problems.append(f"{_label(model)}: unique_together {list(fields)} does not start with tenant")
    return problems


def unique_field_problems(model: type[models.Model]) -> list[str]:
    return [
        f"{_label(model)}.{field.name} has unique=True; use a UniqueConstraint led by tenant"
        for field in model._meta.concrete_fields
        if field.unique and not field.primary_key
    ]


def test_the_core_tenant_owned_models_are_found():
    names = {m._meta.label for m in tenant_owned_models()}
    assert {
        "helpdesk.Membership",
        "helpdesk.Invitation",
        "helpdesk.ApiToken",
        "helpdesk.AuditLog",
    } <= names


@pytest.mark.parametrize("model", tenant_owned_models(), ids=_label)
def test_every_index_of_a_tenant_owned_model_starts_with_tenant(model):
    assert index_problems(model) == []


@pytest.mark.parametrize("model", tenant_owned_models(), ids=_label)
def test_every_unique_constraint_of_a_tenant_owned_model_starts_with_tenant(model):
    assert unique_problems(model) == []


@pytest.mark.parametrize("model", tenant_owned_models(), ids=_label)
def test_no_field_of_a_tenant_owned_model_is_unique_on_its_own(model):
    assert unique_field_problems(model) == []


# The checks must catch what they claim to. These throwaway models live in an isolated app
# registry, so they never reach migrations or other tests walking the real registry.


@isolate_apps("helpdesk")
def test_the_checks_flag_indexes_and_unique_keys_not_led_by_tenant():
    class BadKeys(TenantOwnedModel):
        email = models.EmailField()
        created_at = models.DateTimeField()

        class Meta:
            app_label = "helpdesk"
            indexes = [models.Index(fields=["-created_at", "tenant"], name="bad_idx")]
            constraints = [models.UniqueConstraint(fields=["email", "tenant"], name="bad_unique")]
            unique_together = [("email", "created_at")]

    assert len(index_problems(BadKeys)) == 1
    assert len(unique_problems(BadKeys)) == 2


@isolate_apps("helpdesk")
def test_the_checks_flag_a_field_unique_on_its_own():
    class BadField(TenantOwnedModel):
        code = models.CharField(max_length=10, unique=True)

        class Meta:
            app_label = "helpdesk"

    assert unique_field_problems(BadField) == [
        "helpdesk.BadField.code has unique=True; use a UniqueConstraint led by tenant"
    ]


@isolate_apps("helpdesk")
def test_the_checks_accept_keys_led_by_tenant():
    class Good(TenantOwnedModel):
        email = models.EmailField()
        created_at = models.DateTimeField()

        class Meta:
            app_label = "helpdesk"
            indexes = [models.Index(fields=["tenant", "-created_at"], name="good_idx")]
            constraints = [models.UniqueConstraint(fields=["tenant_id", "email"], name="good_unique")]
            unique_together = [("tenant", "created_at")]

    assert index_problems(Good) == []
    assert unique_problems(Good) == []
    assert unique_field_problems(Good) == []
