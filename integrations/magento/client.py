"""Magento 2 / Adobe Commerce REST client (CONTRACTS.md §3): credit memos, cancel, address.

Refunds are offline credit memos (`POST /V1/order/{id}/refund`); the gateway is not
called, as for most Magento stores the merchant settles with the PSP. Our idempotency key
rides in the credit memo comment so a retry finds the memo an earlier try created.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from integrations.address import split_name
from integrations.clients import (
    AddressResult,
    BaseClient,
    CancelResult,
    LineRefund,
    PermanentError,
    RefundResult,
    decimal,
    parse_time,
    refund_marker,
)

if TYPE_CHECKING:
    from integrations.models import Order

PAGE_SIZE = 100


def search_criteria(
    field: str,
    value: str,
    condition: str = "eq",
    page: int | None = None,
    sort: str = "",
    page_size: int = PAGE_SIZE,
) -> list[tuple[str, str]]:
    """Magento's searchCriteria query parameters for one filter (and paging/sorting)."""
    prefix = "searchCriteria[filter_groups][0][filters][0]"
    query = [
        (f"{prefix}[field]", field),
        (f"{prefix}[value]", value),
        (f"{prefix}[condition_type]", condition),
    ]
    if sort:
        query += [
            ("searchCriteria[sortOrders][0][field]", sort),
            ("searchCriteria[sortOrders][0][direction]", "ASC"),
        ]
    if page is not None:
        query += [
            ("searchCriteria[pageSize]", str(page_size)),
            ("searchCriteria[currentPage]", str(page)),
        ]
    return query


class MagentoClient(BaseClient):
    platform = "magento"
    page_size = PAGE_SIZE

    def base_url(self) -> str:
        base = str(self.credentials.get("base_url") or self.connection.api_url or "").rstrip("/")
        if not base:
            raise PermanentError("The Magento connection has no store URL.")
        if "/rest/" in f"{base}/":
            return base if base.endswith("/V1") else f"{base}/V1"
        return f"{base}/rest/{self.credentials.get('store_code') or 'default'}/V1"

    def auth_headers(self) -> dict[str, str]:
        token = self.credentials.get("access_token") or self.credentials.get("token") or ""
        if not token:
            raise PermanentError("The Magento connection has no API access token.")
        return {"Authorization": f"Bearer {token}"}

    def _order(self, order_id: str) -> dict:
        return self.call("GET", f"/orders/{order_id}", what="read the order").json() or {}

    # --- refunds ---------------------------------------------------------------------

    def _existing_refund(self, order_id: str, marker: str) -> RefundResult | None:
        response = self.call(
            "GET",
            "/creditmemos",
            query=search_criteria("order_id", str(order_id)),
            what="list credit memos",
        )
        for memo in (response.json() or {}).get("items") or []:
            if any(marker in (c.get("comment") or "") for c in memo.get("comments") or []):
                return _memo_result(memo, reused=True)
        return None

    def refund(
        self,
        order: Order,
        amount: Decimal,
        lines: list[LineRefund],
        reason: str,
        idempotency_key: str,
        *,
        notify: bool = False,
    ) -> RefundResult:
        marker = refund_marker(idempotency_key)
        existing = self._existing_refund(order.external_id, marker)
        if existing is not None:
            return existing
        line_total = sum((line.price * line.quantity for line in lines), Decimal("0"))
        body = {
            "items": [{"order_item_id": _int(line.external_id), "qty": line.quantity} for line in lines],
            "notify": notify,
            "appendComment": True,
            "comment": {"comment": f"{reason} {marker}".strip(), "is_visible_on_front": 0},
            "arguments": {
                "shipping_amount": 0,
                # Credit memos add up items, shipping and adjustments; the adjustments make
                # the memo total the amount the agent asked for.
                "adjustment_positive": float(max(amount - line_total, Decimal("0"))),
                "adjustment_negative": float(max(line_total - amount, Decimal("0"))),
                "extension_attributes": {
                    "return_to_stock_items": [_int(line.external_id) for line in lines if line.restock]
                },
            },
        }
        response = self.call(
            "POST",
            f"/order/{order.external_id}/refund",
            body=body,
            what="refund",
            idempotency_key=idempotency_key,
        )
        memo_id = response.json()
        return RefundResult(
            external_id=str(memo_id),
            amount=amount,
            currency=order.currency,
            processed_at=datetime.now(UTC),
            lines=[{"line_item_id": line.external_id, "quantity": line.quantity} for line in lines],
            note=reason,
        )

    # --- cancel ----------------------------------------------------------------------

    def cancel(
        self,
        order: Order,
        reason: str,
        restock: bool,
        refund: bool,
        notify: bool,
        idempotency_key: str,
        *,
        refund_amount: Decimal = Decimal("0"),
    ) -> CancelResult:
        current = self._order(order.external_id)
        state = current.get("state") or current.get("status") or ""
        if state in ("canceled", "closed"):
            return CancelResult(
                cancelled_at=parse_time(current.get("updated_at")) or datetime.now(UTC),
                platform_status=state,
            )
        invoiced = decimal(current.get("total_invoiced") or current.get("total_paid"))
        refund_result = None
        if invoiced > 0:
            if not (refund and refund_amount > 0):
                raise PermanentError("Magento can't cancel an invoiced (paid) order; cancel it with a refund instead.")
            # A paid order is cancelled by refunding it in full: Magento then closes it.
            items = [
                LineRefund(
                    external_id=str(item.get("item_id")),
                    quantity=int(decimal(item.get("qty_invoiced")) - decimal(item.get("qty_refunded"))),
                    restock=restock,
                )
                for item in current.get("items") or []
                if not item.get("parent_item_id")
                and decimal(item.get("qty_invoiced")) > decimal(item.get("qty_refunded"))
            ]
            refund_result = self.refund(
                order,
                refund_amount,
                items,
                f"Order cancelled ({reason})",
                idempotency_key,
                notify=notify,
            )
            status = "closed"
        else:
            response = self.call(
                "POST",
                f"/orders/{order.external_id}/cancel",
                what="cancel the order",
                idempotency_key=idempotency_key,
            )
            if response.json() is not True:
                raise PermanentError("Magento refused to cancel this order in its current state.")
            status = "canceled"
        if notify:
            self.call(
                "POST",
                f"/orders/{order.external_id}/comments",
                body={
                    "statusHistory": {
                        "comment": "Your order has been cancelled.",
                        "is_customer_notified": 1,
                        "is_visible_on_front": 1,
                    }
                },
                what="notify the customer",
            )
        return CancelResult(cancelled_at=datetime.now(UTC), refund=refund_result, platform_status=status)

    # --- address ---------------------------------------------------------------------

    def update_shipping_address(self, order: Order, address: dict, idempotency_key: str) -> AddressResult:
        current = self._order(order.external_id)
        existing: dict = {}
        for assignment in (current.get("extension_attributes") or {}).get("shipping_assignments") or []:
            existing = ((assignment.get("shipping") or {}).get("address")) or {}
            if existing:
                break
        if not existing.get("entity_id"):
            raise PermanentError("Magento has no shipping address on this order to change (virtual order?).")
        first, last = split_name(address.get("name", ""))
        entity = {
            "entity_id": existing["entity_id"],
            "parent_id": existing.get("parent_id") or _int(order.external_id),
            "address_type": "shipping",
            "firstname": first,
            "lastname": last or first,
            "company": address.get("company", ""),
            "street": [s for s in (address.get("address1"), address.get("address2")) if s],
            "city": address.get("city", ""),
            "region_code": address.get("province", ""),
            "region": address.get("province", ""),
            "postcode": address.get("zip", ""),
            "country_id": address.get("country_code", ""),
            # Magento insists on a telephone; keep the old one when the agent gave none.
            "telephone": address.get("phone") or existing.get("telephone") or "-",
            "email": existing.get("email") or order.email,
        }
        self.call(
            "PUT",
            f"/orders/{entity['parent_id']}",
            body={"entity": entity},
            what="change the shipping address",
            idempotency_key=idempotency_key,
        )
        return AddressResult(address=dict(address))

    # --- reconciliation --------------------------------------------------------------

    def orders_updated_since(self, since: datetime) -> list[dict]:
        value = since.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        orders: list[dict] = []
        for page in range(1, 51):
            response = self.call(
                "GET",
                "/orders",
                query=search_criteria(
                    "updated_at",
                    value,
                    "gteq",
                    page=page,
                    sort="updated_at",
                    page_size=self.page_size,
                ),
                what="list changed orders",
            )
            data = response.json() or {}
            batch = data.get("items") or []
            orders.extend(batch)
            total = int(data.get("total_count") or 0)
            # Magento repeats the last page for pages past the end, so count instead.
            if not batch or len(orders) >= total or len(batch) < self.page_size:
                break
        return orders


def _int(value: str) -> int | str:
    return int(value) if str(value).isdigit() else value


def _memo_result(memo: dict, reused: bool = False) -> RefundResult:
    return RefundResult(
        external_id=str(memo.get("entity_id", "")),
        amount=decimal(memo.get("grand_total")),
        currency=memo.get("order_currency_code") or "",
        processed_at=parse_time(memo.get("created_at")),
        lines=[
            {
                "line_item_id": str(item.get("order_item_id")),
                "quantity": int(decimal(item.get("qty"))),
            }
            for item in memo.get("items") or []
        ],
        note=next((c.get("comment") for c in memo.get("comments") or [] if c.get("comment")), ""),
        reused=reused,
    )
