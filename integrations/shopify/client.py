"""Shopify Admin REST API client (CONTRACTS.md §1.6–1.7): refunds, cancel, address, paging.

REST is "legacy" at Shopify but still served; every call here has a GraphQL twin should a
store require it. Rate limits answer 429 with Retry-After, which `raise_for_status` turns
into a TransientError for the task's backoff.
"""

from __future__ import annotations

import re
import urllib.parse
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

API_VERSION = "2026-04"
PAGE_SIZE = 250
CANCEL_REASONS = {"customer", "fraud", "inventory", "declined", "other", "staff"}
_NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


class ShopifyClient(BaseClient):
    platform = "shopify"
    page_size = PAGE_SIZE

    def base_url(self) -> str:
        override = self.credentials.get("base_url")
        if override:
            return str(override)
        domain = (self.connection.shop_domain or "").strip().lower()
        if not domain:
            raise PermanentError("The Shopify connection has no shop domain.")
        return f"https://{domain}"

    def auth_headers(self) -> dict[str, str]:
        token = self.credentials.get("access_token") or self.credentials.get("token") or ""
        if not token:
            raise PermanentError("The Shopify connection has no Admin API access token.")
        return {"X-Shopify-Access-Token": str(token)}

    @property
    def api(self) -> str:
        return f"/admin/api/{self.credentials.get('api_version') or API_VERSION}"

    # --- refunds ---------------------------------------------------------------------

    def _existing_refund(self, order_id: str, marker: str) -> RefundResult | None:
        response = self.call("GET", f"{self.api}/orders/{order_id}/refunds.json", what="list refunds")
        for refund in (response.json() or {}).get("refunds", []):
            if marker in (refund.get("note") or ""):
                return _refund_result(refund, reused=True)
        return None

    def _refund_body(
        self,
        order: Order,
        amount: Decimal,
        lines: list[LineRefund],
        note: str,
        notify: bool,
        restock_type: str,
        key: str,
    ) -> dict:
        """Ask Shopify what it would refund, then spread `amount` over the paid transactions."""
        calculate = {
            "refund": {
                "shipping": {"amount": "0.00"},
                "refund_line_items": [
                    {
                        "line_item_id": _int(line.external_id),
                        "quantity": line.quantity,
                        "restock_type": restock_type if line.restock else "no_restock",
                    }
                    for line in lines
                ],
            }
        }
        if order.currency:
            calculate["refund"]["currency"] = order.currency
        response = self.call(
            "POST",
            f"{self.api}/orders/{order.external_id}/refunds/calculate.json",
            body=calculate,
            what="calculate the refund",
            idempotency_key=f"{key}-calc",
        )
        suggested = (response.json() or {}).get("refund") or {}
        transactions = []
        left = amount
        for txn in suggested.get("transactions") or []:
            if left <= 0:
                break
            ceiling = decimal(txn.get("maximum_refundable") or txn.get("amount"))
            take = min(left, ceiling) if ceiling > 0 else left
            transactions.append(
                {
                    "parent_id": txn.get("parent_id"),
                    "amount": f"{take:.2f}",
                    "kind": "refund",
                    "gateway": txn.get("gateway"),
                }
            )
            left -= take
        if not transactions:
            raise PermanentError("Shopify has no captured payment on this order to refund.")
        if left > 0:
            raise PermanentError(f"Shopify can refund at most {amount - left:.2f} on this order.")
        body = {
            "refund": {
                "notify": notify,
                "note": note,
                "refund_line_items": suggested.get("refund_line_items") or calculate["refund"]["refund_line_items"],
                "transactions": transactions,
            }
        }
        if order.currency:
            body["refund"]["currency"] = order.currency
        return body

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
        restock_type = "return" if order.fulfillment_status in ("fulfilled", "partial") else "cancel"
        note = f"{reason} {marker}".strip()
        body = self._refund_body(order, amount, lines, note, notify, restock_type, idempotency_key)
        response = self.call(
            "POST",
            f"{self.api}/orders/{order.external_id}/refunds.json",
            body=body,
            what="refund",
            idempotency_key=idempotency_key,
        )
        return _refund_result((response.json() or {}).get("refund") or {})

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
        if current.get("cancelled_at"):
            # An earlier attempt went through and its answer was lost.
            return _cancel_result(current, refund_marker(idempotency_key))
        body: dict = {"reason": reason if reason in CANCEL_REASONS else "other", "email": notify}
        if refund and refund_amount > 0:
            lines = [
                LineRefund(
                    external_id=str(li.get("id")),
                    quantity=int(li.get("fulfillable_quantity", li.get("quantity")) or 0),
                    restock=restock,
                )
                for li in current.get("line_items") or []
                if int(li.get("fulfillable_quantity", li.get("quantity")) or 0) > 0
            ]
            note = f"Cancelled from Storedesk {refund_marker(idempotency_key)}"
            body["refund"] = self._refund_body(order, refund_amount, lines, note, notify, "cancel", idempotency_key)[
                "refund"
            ]
        elif restock:
            body["restock"] = True
        response = self.call(
            "POST",
            f"{self.api}/orders/{order.external_id}/cancel.json",
            body=body,
            what="cancel the order",
            idempotency_key=idempotency_key,
        )
        data = (response.json() or {}).get("order") or {}
        if not data.get("cancelled_at"):
            # Newer API versions cancel asynchronously and answer with a job; read it back.
            data = self._order(order.external_id)
        return _cancel_result(data, refund_marker(idempotency_key))

    def _order(self, order_id: str) -> dict:
        response = self.call("GET", f"{self.api}/orders/{order_id}.json", what="read the order")
        return (response.json() or {}).get("order") or {}

    # --- address ---------------------------------------------------------------------

    def update_shipping_address(self, order: Order, address: dict, idempotency_key: str) -> AddressResult:
        first, last = split_name(address.get("name", ""))
        shipping = {
            "first_name": first,
            "last_name": last,
            "name": address.get("name", ""),
            "company": address.get("company", ""),
            "address1": address.get("address1", ""),
            "address2": address.get("address2", ""),
            "city": address.get("city", ""),
            "province_code": address.get("province", ""),
            "zip": address.get("zip", ""),
            "country_code": address.get("country_code", ""),
            "phone": address.get("phone", ""),
        }
        body = {"order": {"id": _int(order.external_id), "shipping_address": shipping}}
        response = self.call(
            "PUT",
            f"{self.api}/orders/{order.external_id}.json",
            body=body,
            what="change the shipping address",
            idempotency_key=idempotency_key,
        )
        saved = ((response.json() or {}).get("order") or {}).get("shipping_address") or {}
        return AddressResult(
            address={
                **address,
                **{k: saved[k] for k in ("city", "zip", "country_code") if saved.get(k)},
            }
        )

    # --- reconciliation --------------------------------------------------------------

    def orders_updated_since(self, since: datetime) -> list[dict]:
        query = {
            "updated_at_min": since.astimezone(UTC).isoformat(timespec="seconds"),
            "status": "any",
            "limit": self.page_size,
            "order": "updated_at asc",
        }
        url = self.url(f"{self.api}/orders.json", query)
        orders: list[dict] = []
        for _page in range(50):
            response = self.call("GET", url, what="list changed orders")
            orders.extend((response.json() or {}).get("orders") or [])
            match = _NEXT_LINK.search(response.header("Link"))
            if not match:
                break
            # Follow Shopify's cursor, but only ever to our own store's host.
            parts = urllib.parse.urlsplit(match.group(1))
            url = f"{self.base}{parts.path}?{parts.query}"
        return orders


def _int(value: str) -> int | str:
    return int(value) if str(value).isdigit() else value


def _refund_result(refund: dict, reused: bool = False) -> RefundResult:
    amount = sum(
        (decimal(t.get("amount")) for t in refund.get("transactions") or [] if t.get("kind", "refund") == "refund"),
        Decimal("0"),
    )
    currency = next((t.get("currency") for t in refund.get("transactions") or [] if t.get("currency")), "")
    lines = [
        {
            "line_item_id": str(li.get("line_item_id")),
            "quantity": li.get("quantity"),
            "restock_type": li.get("restock_type", ""),
        }
        for li in refund.get("refund_line_items") or []
    ]
    return RefundResult(
        external_id=str(refund.get("id", "")),
        amount=amount,
        currency=currency or "",
        processed_at=parse_time(refund.get("processed_at") or refund.get("created_at")),
        lines=lines,
        note=refund.get("note") or "",
        reused=reused,
    )


def _cancel_result(order: dict, marker: str) -> CancelResult:
    refund = next((r for r in order.get("refunds") or [] if marker in (r.get("note") or "")), None)
    return CancelResult(
        cancelled_at=parse_time(order.get("cancelled_at")) or datetime.now(UTC),
        refund=_refund_result(refund) if refund else None,
        platform_status="cancelled",
    )
