"""WooCommerce REST API v3 client (CONTRACTS.md §2.3): refunds, cancel, address, paging.

Woo has no idempotency keys, so every refund carries ours in its meta data and reason,
and a retry looks for it before posting again. Auth is HTTP Basic with the consumer key
and secret (or query parameters, for servers that strip the Authorization header).
"""

from __future__ import annotations

import base64
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
META_KEY = "_storedesk_idempotency_key"


class WooCommerceClient(BaseClient):
    platform = "woocommerce"
    page_size = PAGE_SIZE

    def base_url(self) -> str:
        base = str(self.credentials.get("base_url") or self.connection.api_url or "").rstrip("/")
        if not base:
            raise PermanentError("The WooCommerce connection has no store URL.")
        return base if "/wp-json/" in f"{base}/" else f"{base}/wp-json/wc/v3"

    def _keys(self) -> tuple[str, str]:
        key = str(self.credentials.get("consumer_key") or "")
        secret = str(self.credentials.get("consumer_secret") or "")
        if not key or not secret:
            raise PermanentError("The WooCommerce connection has no REST API consumer key and secret.")
        return key, secret

    def auth_headers(self) -> dict[str, str]:
        if self.credentials.get("query_auth"):
            return {}
        key, secret = self._keys()
        return {"Authorization": "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()}

    def url(self, path: str, query: dict | list | None = None) -> str:
        if self.credentials.get("query_auth"):
            key, secret = self._keys()
            query = {**dict(query or {}), "consumer_key": key, "consumer_secret": secret}
        return super().url(path, query)

    # --- refunds ---------------------------------------------------------------------

    def _existing_refund(self, order_id: str, key: str) -> RefundResult | None:
        response = self.call("GET", f"/orders/{order_id}/refunds", query={"per_page": PAGE_SIZE}, what="list refunds")
        marker = refund_marker(key)
        for refund in response.json() or []:
            meta = {m.get("key"): m.get("value") for m in refund.get("meta_data") or [] if isinstance(m, dict)}
            if meta.get(META_KEY) == key or marker in (refund.get("reason") or ""):
                return _refund_result(refund, reused=True)
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
        existing = self._existing_refund(order.external_id, idempotency_key)
        if existing is not None:
            return existing
        body = {
            "amount": f"{amount:.2f}",
            "reason": f"{reason} {refund_marker(idempotency_key)}".strip(),
            "api_refund": True,
            "api_restock": any(line.restock for line in lines),
            "line_items": [
                {
                    "id": _int(line.external_id),
                    "quantity": line.quantity,
                    "refund_total": f"{line.price * line.quantity:.2f}",
                }
                for line in lines
            ],
            "meta_data": [{"key": META_KEY, "value": idempotency_key}],
        }
        response = self.call(
            "POST",
            f"/orders/{order.external_id}/refunds",
            body=body,
            what="refund",
            idempotency_key=idempotency_key,
        )
        return _refund_result(response.json() or {}, currency=order.currency)

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
        current = (self.call("GET", f"/orders/{order.external_id}", what="read the order").json()) or {}
        refund_result = None
        if refund and refund_amount > 0:
            # Amount only: moving the order to "cancelled" is what restocks it in Woo (it
            # always does), so restocking lines here as well would count them back twice.
            refund_result = self.refund(order, refund_amount, [], f"Order cancelled ({reason})", idempotency_key)
        if current.get("status") != "cancelled":
            self.call(
                "PUT",
                f"/orders/{order.external_id}",
                body={"status": "cancelled"},
                what="cancel the order",
                idempotency_key=idempotency_key,
            )
            if notify:
                self.call(
                    "POST",
                    f"/orders/{order.external_id}/notes",
                    body={"note": "Your order has been cancelled.", "customer_note": True},
                    what="notify the customer",
                )
        return CancelResult(cancelled_at=datetime.now(UTC), refund=refund_result, platform_status="cancelled")

    # --- address ---------------------------------------------------------------------

    def update_shipping_address(self, order: Order, address: dict, idempotency_key: str) -> AddressResult:
        first, last = split_name(address.get("name", ""))
        shipping = {
            "first_name": first,
            "last_name": last,
            "company": address.get("company", ""),
            "address_1": address.get("address1", ""),
            "address_2": address.get("address2", ""),
            "city": address.get("city", ""),
            "state": address.get("province", ""),
            "postcode": address.get("zip", ""),
            "country": address.get("country_code", ""),
            "phone": address.get("phone", ""),
        }
        self.call(
            "PUT",
            f"/orders/{order.external_id}",
            body={"shipping": shipping},
            what="change the shipping address",
            idempotency_key=idempotency_key,
        )
        return AddressResult(address=dict(address))

    # --- reconciliation --------------------------------------------------------------

    def orders_updated_since(self, since: datetime) -> list[dict]:
        orders: list[dict] = []
        after = since.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds")
        for page in range(1, 51):
            response = self.call(
                "GET",
                "/orders",
                query={
                    "modified_after": after,
                    "dates_are_gmt": "true",
                    "per_page": self.page_size,
                    "page": page,
                    "orderby": "modified",
                    "order": "asc",
                },
                what="list changed orders",
            )
            batch = response.json() or []
            orders.extend(batch)
            total_pages = response.header("X-WP-TotalPages")
            if len(batch) < self.page_size or (total_pages.isdigit() and page >= int(total_pages)):
                break
        return orders


def _int(value: str) -> int | str:
    return int(value) if str(value).isdigit() else value


def _refund_result(refund: dict, reused: bool = False, currency: str = "") -> RefundResult:
    return RefundResult(
        external_id=str(refund.get("id", "")),
        amount=decimal(refund.get("amount") or refund.get("total")),
        currency=currency,
        processed_at=parse_time(refund.get("date_created_gmt")) or parse_time(refund.get("date_created")),
        lines=[
            {"line_item_id": str(li.get("id")), "quantity": abs(int(li.get("quantity") or 0))}
            for li in refund.get("line_items") or []
        ],
        note=refund.get("reason") or "",
        reused=reused,
    )
