"""Store connections pointed at the fake platform, and orders made with the ORM.

Register with `pytest_plugins = ["tests.orders_fixtures"]` (it pulls in the fake server,
the tickets helpers and their fixtures).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from integrations.crypto import encrypt_json
from integrations.models import Connection, Order, OrderLine
from tests.fake_platform import (
    MAGENTO_TOKEN,
    SHOP_DOMAIN,
    SHOPIFY_TOKEN,
    WOO_KEY,
    WOO_SECRET,
    FakePlatform,
)
from tickets.models import Customer

pytest_plugins = ["tests.fake_platform", "tests.tickets_fixtures"]

CLIENT_TIMEOUT = 0.4  # seconds; the fake's stalls are longer


def make_connection(
    tenant: Any, fake: FakePlatform | None, platform: str = "shopify", **credentials: Any
) -> Connection:
    base: dict[str, Any] = {
        "shopify": {"access_token": SHOPIFY_TOKEN},
        "woocommerce": {"consumer_key": WOO_KEY, "consumer_secret": WOO_SECRET},
        "magento": {"access_token": MAGENTO_TOKEN},
        "generic": {},
    }[platform]
    if fake is not None:
        base = {**base, "base_url": fake.base_url, "timeout": CLIENT_TIMEOUT}
    return Connection.objects.create(
        tenant=tenant,
        platform=platform,
        name=f"Test {platform}",
        shop_domain=SHOP_DOMAIN if platform == "shopify" else "",
        api_url="https://shop.example" if platform in ("woocommerce", "magento") else "",
        credentials_encrypted=encrypt_json({**base, **credentials}),
    )


def make_order(
    connection: Connection,
    *,
    external_id: str,
    number: str,
    customer: Customer | None = None,
    total: str = "50.00",
    currency: str = "EUR",
    lines: list[tuple[str, str, int, str]] | None = None,
    placed_at: datetime | None = None,
    **fields: Any,
) -> Order:
    """An order row (upserts belong to another module); lines are (external_id, title, qty, price)."""
    order = Order.objects.create(
        tenant_id=connection.tenant_id,
        connection=connection,
        external_id=external_id,
        number=number,
        name=f"#{number}",
        customer=customer,
        email=customer.email if customer else "",
        currency=currency,
        total=Decimal(total),
        subtotal=Decimal(total),
        financial_status=fields.pop("financial_status", "paid"),
        placed_at=placed_at or datetime(2026, 3, 1, 10, 0, tzinfo=UTC),
        platform_updated_at=datetime(2026, 3, 1, 10, 0, tzinfo=UTC),
        shipping_address=fields.pop(
            "shipping_address",
            {
                "name": "Carla Customer",
                "address1": "Calle Mayor 5",
                "city": "Madrid",
                "zip": "28013",
                "country_code": "ES",
            },
        ),
        **fields,
    )
    half = str(Decimal(total) / 2)
    for ext, title, quantity, price in lines if lines is not None else [(f"{external_id}1", "Red socks", 2, half)]:
        OrderLine.objects.create(
            tenant_id=connection.tenant_id,
            order=order,
            external_id=ext,
            title=title,
            quantity=quantity,
            price=Decimal(price),
        )
    return order


@pytest.fixture
def shop(cast, fake_platform) -> Connection:
    """Tenant A's Shopify store, talking to the fake platform."""
    return make_connection(cast.tenant, fake_platform, "shopify")


def days_ago(days: int) -> datetime:
    return datetime(2026, 3, 2, 9, 0, tzinfo=UTC) - timedelta(days=days)
