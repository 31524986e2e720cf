"""Two requests creating the same new customer at once get one row and no error."""

from __future__ import annotations

import pytest

from tests.concurrency import at_once
from tickets import services
from tickets.models import Customer


@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_of_the_same_new_customer_share_one_row(cast):
    ids = at_once(
        lambda _: services.customer_get_or_create(tenant=cast.tenant, email="Race@Example.org", name="Rae").pk,
        threads=4,
        timeout=30,
    )
    assert len(ids) == 4
    assert len(set(ids)) == 1
    assert Customer.objects.filter(tenant=cast.tenant, email="race@example.org").count() == 1


def test_the_same_email_in_another_tenant_is_another_customer(cast):
    a = services.customer_get_or_create(tenant=cast.tenant, email="dana@example.org")
    b = services.customer_get_or_create(tenant=cast.other_tenant, email="dana@example.org")
    assert a.pk != b.pk
    assert services.customer_get_or_create(tenant=cast.tenant, email="DANA@example.org").pk == a.pk
