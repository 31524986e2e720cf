"""A real local HTTP server speaking the Shopify, WooCommerce and Magento REST shapes.

The order-action clients talk to it over TCP exactly as they would to a store: auth
headers, JSON bodies, status codes, Retry-After, Link paging. It keeps orders and refunds
in memory, records every call, and can be told to misbehave for the next N matching calls:

    fake.fail_next(status=422, body={"errors": {...}})      # a platform refusal
    fake.rate_limit_next(retry_after=2)                      # 429 + Retry-After
    fake.time_out_next(seconds=1.5)                          # stall, never process
    fake.time_out_next(seconds=1.5, after=True)              # process, then stall (lost answer)

Shopify honours `Idempotency-Key` on refunds (a repeated key answers the same refund);
WooCommerce and Magento don't, as in life, so the clients' own look-up is what is tested.

Use it through the `fake_platform` fixture (register with
`pytest_plugins = ["tests.fake_platform"]`).
"""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

SHOPIFY_TOKEN = "shpat_fake_token"
WOO_KEY = "ck_fake"
WOO_SECRET = "cs_fake"
MAGENTO_TOKEN = "mg_fake_token"
SHOP_DOMAIN = "acme-socks.myshopify.com"


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any

    def __repr__(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class Fault:
    kind: str  # status / rate_limit / timeout / timeout_after
    times: int
    path: str | None = None  # substring the path must contain
    method: str | None = None
    status: int = 500
    body: Any = None
    retry_after: str = "1"
    seconds: float = 1.0


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _money(value: Any) -> Decimal:
    return Decimal(str(value or "0"))


@dataclass
class FakePlatform:
    """The server's state and controls. All mutation happens under `lock`."""

    calls: list[Call] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    shopify_orders: dict[str, dict] = field(default_factory=dict)
    shopify_refund_keys: dict[str, dict] = field(default_factory=dict)
    woo_orders: dict[str, dict] = field(default_factory=dict)
    woo_refunds: dict[str, list[dict]] = field(default_factory=dict)
    woo_notes: dict[str, list[dict]] = field(default_factory=dict)
    magento_orders: dict[str, dict] = field(default_factory=dict)
    magento_memos: list[dict] = field(default_factory=list)
    magento_comments: dict[str, list[dict]] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    server: ThreadingHTTPServer | None = None
    _ids: int = 700000

    # --- lifecycle ------------------------------------------------------------------

    def start(self) -> FakePlatform:
        fake = self

        class Handler(_Handler):
            platform = fake

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    @property
    def base_url(self) -> str:
        assert self.server is not None
        port = self.server.server_address[1]
        return f"http://127.0.0.1:{port}"

    def next_id(self) -> int:
        with self.lock:
            self._ids += 1
            return self._ids

    # --- controls -------------------------------------------------------------------

    def fail_next(
        self,
        status: int = 422,
        body: Any = None,
        times: int = 1,
        path: str | None = None,
        method: str | None = None,
    ) -> None:
        self.faults.append(Fault("status", times, path, method, status=status, body=body))

    def rate_limit_next(
        self,
        retry_after: str | int = 1,
        times: int = 1,
        path: str | None = None,
        method: str | None = None,
    ) -> None:
        self.faults.append(Fault("rate_limit", times, path, method, retry_after=str(retry_after)))

    def time_out_next(
        self,
        seconds: float = 1.0,
        times: int = 1,
        path: str | None = None,
        method: str | None = None,
        after: bool = False,
    ) -> None:
        self.faults.append(Fault("timeout_after" if after else "timeout", times, path, method, seconds=seconds))

    def calls_to(self, method: str, path_pattern: str) -> list[Call]:
        regex = re.compile(path_pattern)
        return [c for c in self.calls if c.method == method and regex.search(c.path)]

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.times > 0 and (fault.path is None or fault.path in path) and (fault.method in (None, method)):
                    fault.times -= 1
                    return fault
        return None

    # --- seeding --------------------------------------------------------------------

    def add_shopify_order(
        self,
        order_id: int,
        *,
        number: int,
        total: str = "50.00",
        lines: list[dict] | None = None,
        **extra: Any,
    ) -> dict:
        lines = (
            lines
            if lines is not None
            else [
                {
                    "id": order_id * 10 + 1,
                    "title": "Red socks",
                    "quantity": 2,
                    "price": str(_money(total) / 2),
                }
            ]
        )
        order = {
            "id": order_id,
            "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
            "name": f"#{number}",
            "order_number": number,
            "email": "carla@example.com",
            "currency": "EUR",
            "total_price": total,
            "subtotal_price": total,
            "total_tax": "0.00",
            "financial_status": "paid",
            "fulfillment_status": None,
            "cancelled_at": None,
            "cancel_reason": None,
            "created_at": "2026-03-01T10:00:00+00:00",
            "updated_at": "2026-03-01T10:00:00+00:00",
            "customer": {
                "id": 555,
                "email": "carla@example.com",
                "first_name": "Carla",
                "last_name": "Customer",
            },
            "shipping_address": {
                "name": "Carla Customer",
                "address1": "Calle Mayor 5",
                "city": "Madrid",
                "zip": "28013",
                "country_code": "ES",
            },
            "line_items": [{"fulfillable_quantity": li["quantity"], "sku": "", "variant_id": 1, **li} for li in lines],
            "fulfillments": [],
            "refunds": [],
            "_parent_transaction": order_id + 9000,
        }
        order.update(extra)
        with self.lock:
            self.shopify_orders[str(order_id)] = order
        return order

    def add_woo_order(self, order_id: int, *, total: str = "54.00", status: str = "processing", **extra: Any) -> dict:
        order = {
            "id": order_id,
            "parent_id": 0,
            "number": str(order_id),
            "order_key": f"wc_order_{order_id}",
            "status": status,
            "currency": "USD",
            "date_created": "2026-03-01T09:15:00",
            "date_created_gmt": "2026-03-01T14:15:00",
            "date_modified": "2026-03-01T09:15:00",
            "date_modified_gmt": "2026-03-01T14:15:00",
            "total": total,
            "total_tax": "0.00",
            "customer_id": 7,
            "billing": {
                "first_name": "Lee",
                "last_name": "Park",
                "email": "lee@example.com",
                "phone": "+15550001",
                "country": "US",
            },
            "shipping": {
                "first_name": "Lee",
                "last_name": "Park",
                "address_1": "1 Main St",
                "city": "Austin",
                "state": "TX",
                "postcode": "78701",
                "country": "US",
            },
            "line_items": [
                {
                    "id": order_id * 10 + 1,
                    "name": "Mug",
                    "product_id": 93,
                    "quantity": 2,
                    "total": total,
                    "price": float(_money(total) / 2),
                    "sku": "MUG-01",
                }
            ],
            "refunds": [],
        }
        order.update(extra)
        with self.lock:
            self.woo_orders[str(order_id)] = order
            self.woo_refunds.setdefault(str(order_id), [])
        return order

    def add_magento_order(
        self,
        entity_id: int,
        *,
        total: str = "72.50",
        state: str = "processing",
        invoiced: bool = True,
        **extra: Any,
    ) -> dict:
        order = {
            "entity_id": entity_id,
            "increment_id": f"{entity_id:09d}",
            "state": state,
            "status": state,
            "order_currency_code": "EUR",
            "grand_total": float(_money(total)),
            "total_paid": float(_money(total)) if invoiced else 0,
            "total_invoiced": float(_money(total)) if invoiced else 0,
            "total_refunded": 0,
            "customer_email": "kim@example.com",
            "customer_firstname": "Kim",
            "customer_lastname": "Lee",
            "created_at": "2026-03-01 10:00:00",
            "updated_at": "2026-03-01 10:00:00",
            "items": [
                {
                    "item_id": entity_id * 10 + 1,
                    "sku": "HAT-1",
                    "name": "Hat",
                    "qty_ordered": 1,
                    "qty_invoiced": 1 if invoiced else 0,
                    "qty_refunded": 0,
                    "price": float(_money(total)),
                    "row_total": float(_money(total)),
                }
            ],
            "extension_attributes": {
                "shipping_assignments": [
                    {
                        "shipping": {
                            "address": {
                                "entity_id": entity_id * 100,
                                "parent_id": entity_id,
                                "address_type": "shipping",
                                "firstname": "Kim",
                                "lastname": "Lee",
                                "street": ["Hauptstr. 1"],
                                "city": "Berlin",
                                "postcode": "10115",
                                "country_id": "DE",
                                "telephone": "030123",
                            }
                        }
                    }
                ]
            },
        }
        order.update(extra)
        with self.lock:
            self.magento_orders[str(entity_id)] = order
        return order

    # --- Shopify --------------------------------------------------------------------

    def shopify(self, method: str, path: str, query: dict, body: Any, headers: dict) -> tuple[int, Any, dict]:
        if headers.get("x-shopify-access-token") != SHOPIFY_TOKEN:
            return (
                401,
                {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"},
                {},
            )
        rest = re.sub(r"^/admin/api/[^/]+", "", path)
        if method == "GET" and rest == "/orders.json":
            return self._shopify_list(query)
        match = re.fullmatch(r"/orders/(\d+)(/.*)?\.json", rest)
        if not match:
            return 404, {"errors": "Not Found"}, {}
        order = self.shopify_orders.get(match.group(1))
        if order is None:
            return 404, {"errors": "Not Found"}, {}
        tail = match.group(2) or ""
        if tail == "" and method == "GET":
            return 200, {"order": _public(order)}, {}
        if tail == "" and method == "PUT":
            changes = (body or {}).get("order") or {}
            if "shipping_address" in changes:
                order["shipping_address"] = {k: v for k, v in changes["shipping_address"].items() if v}
            order["updated_at"] = _now()
            return 200, {"order": _public(order)}, {}
        if tail == "/refunds" and method == "GET":
            return 200, {"refunds": copy.deepcopy(order["refunds"])}, {}
        if tail == "/refunds/calculate" and method == "POST":
            return self._shopify_calculate(order, body or {})
        if tail == "/refunds" and method == "POST":
            return self._shopify_refund(order, body or {}, headers.get("idempotency-key", ""))
        if tail == "/cancel" and method == "POST":
            return self._shopify_cancel(order, body or {})
        return 404, {"errors": "Not Found"}, {}

    def _shopify_remaining(self, order: dict) -> Decimal:
        refunded = sum((_money(t["amount"]) for r in order["refunds"] for t in r["transactions"]), Decimal("0"))
        return _money(order["total_price"]) - refunded

    def _shopify_list(self, query: dict) -> tuple[int, Any, dict]:
        since = (query.get("updated_at_min") or [""])[0]
        limit = int((query.get("limit") or ["50"])[0])
        offset = int((query.get("page_info") or ["p0"])[0][1:])
        rows = sorted(
            (
                o
                for o in self.shopify_orders.values()
                if not since or datetime.fromisoformat(o["updated_at"]) >= datetime.fromisoformat(since)
            ),
            key=lambda o: (o["updated_at"], o["id"]),
        )
        page = rows[offset : offset + limit]
        headers = {}
        if offset + limit < len(rows):
            # Shopify answers with its own host; the client must stay on its base URL.
            headers["Link"] = (
                f'<https://{SHOP_DOMAIN}/admin/api/2026-04/orders.json?limit={limit}&page_info=p{offset + limit}>; rel="next"'
            )
        return 200, {"orders": [_public(o) for o in page]}, headers

    def _shopify_calculate(self, order: dict, body: dict) -> tuple[int, Any, dict]:
        refund = body.get("refund") or {}
        lines = {str(li["id"]): li for li in order["line_items"]}
        items = []
        subtotal = Decimal("0")
        for rli in refund.get("refund_line_items") or []:
            line = lines.get(str(rli.get("line_item_id")))
            if line is None:
                return 422, {"errors": {"refund_line_items": ["line_item_id is invalid"]}}, {}
            if int(rli.get("quantity") or 0) > int(line["quantity"]):
                return (
                    422,
                    {"errors": {"refund_line_items": ["quantity cannot refund more items than were purchased"]}},
                    {},
                )
            line_subtotal = _money(line["price"]) * int(rli["quantity"])
            subtotal += line_subtotal
            items.append(
                {
                    **rli,
                    "location_id": 40001,
                    "subtotal": f"{line_subtotal:.2f}",
                    "total_tax": "0.00",
                }
            )
        remaining = self._shopify_remaining(order)
        txn = {
            "order_id": order["id"],
            "kind": "suggested_refund",
            "gateway": "bogus",
            "parent_id": order["_parent_transaction"],
            "amount": f"{min(subtotal, remaining):.2f}",
            "maximum_refundable": f"{remaining:.2f}",
            "currency": order["currency"],
        }
        return (
            200,
            {
                "refund": {
                    "shipping": {"amount": "0.00"},
                    "refund_line_items": items,
                    "transactions": [txn] if remaining > 0 else [],
                }
            },
            {},
        )

    def _shopify_refund(self, order: dict, body: dict, key: str) -> tuple[int, Any, dict]:
        with self.lock:
            if key and key in self.shopify_refund_keys:
                return 201, {"refund": copy.deepcopy(self.shopify_refund_keys[key])}, {}
            refund = body.get("refund") or {}
            amount = sum((_money(t.get("amount")) for t in refund.get("transactions") or []), Decimal("0"))
            remaining = self._shopify_remaining(order)
            if amount > remaining:
                return (
                    422,
                    {
                        "errors": {
                            "base": [f"Refund amount cannot be greater than the refundable amount ({remaining:.2f})."]
                        }
                    },
                    {},
                )
            created = self._shopify_make_refund(order, amount, refund)
            if key:
                self.shopify_refund_keys[key] = copy.deepcopy(created)
            return 201, {"refund": created}, {}

    def _shopify_make_refund(self, order: dict, amount: Decimal, refund: dict) -> dict:
        created = {
            "id": self.next_id(),
            "order_id": order["id"],
            "created_at": _now(),
            "processed_at": _now(),
            "note": refund.get("note") or "",
            "refund_line_items": [
                {
                    "id": self.next_id(),
                    "line_item_id": rli.get("line_item_id"),
                    "quantity": rli.get("quantity"),
                    "restock_type": rli.get("restock_type", "no_restock"),
                }
                for rli in refund.get("refund_line_items") or []
            ],
            "transactions": [
                {
                    "id": self.next_id(),
                    "order_id": order["id"],
                    "kind": "refund",
                    "gateway": "bogus",
                    "status": "success",
                    "amount": f"{amount:.2f}",
                    "currency": order["currency"],
                    "parent_id": order["_parent_transaction"],
                }
            ],
        }
        order["refunds"].append(created)
        order["financial_status"] = "refunded" if self._shopify_remaining(order) <= 0 else "partially_refunded"
        order["updated_at"] = _now()
        return copy.deepcopy(created)

    def _shopify_cancel(self, order: dict, body: dict) -> tuple[int, Any, dict]:
        with self.lock:
            if order["cancelled_at"]:
                return 422, {"errors": "Order has already been cancelled"}, {}
            if order.get("fulfillment_status") == "fulfilled":
                return (
                    422,
                    {"errors": {"base": ["Cannot cancel an order that has been fulfilled"]}},
                    {},
                )
            refund = body.get("refund")
            if refund:
                amount = sum(
                    (_money(t.get("amount")) for t in refund.get("transactions") or []),
                    Decimal("0"),
                )
                self._shopify_make_refund(order, amount, refund)
            order["cancelled_at"] = _now()
            order["cancel_reason"] = body.get("reason") or "other"
            order["_cancel_request"] = body
            order["updated_at"] = _now()
            return 200, {"order": _public(order)}, {}

    # --- WooCommerce ----------------------------------------------------------------

    def woo(self, method: str, path: str, query: dict, body: Any, headers: dict) -> tuple[int, Any, dict]:
        expected = "Basic " + base64.b64encode(f"{WOO_KEY}:{WOO_SECRET}".encode()).decode()
        if headers.get("authorization") != expected:
            return (
                401,
                {
                    "code": "woocommerce_rest_cannot_view",
                    "message": "Sorry, you cannot list resources.",
                    "data": {"status": 401},
                },
                {},
            )
        rest = path[len("/wp-json/wc/v3") :]
        if method == "GET" and rest == "/orders":
            return self._woo_list(query)
        match = re.fullmatch(r"/orders/(\d+)(/refunds|/notes)?", rest)
        order = self.woo_orders.get(match.group(1)) if match else None
        if match is None or order is None:
            return (
                404,
                {
                    "code": "woocommerce_rest_shop_order_invalid_id",
                    "message": "Invalid ID.",
                    "data": {"status": 404},
                },
                {},
            )
        tail = match.group(2) or ""
        order_id = match.group(1)
        with self.lock:
            if tail == "" and method == "GET":
                return 200, copy.deepcopy(order), {}
            if tail == "" and method == "PUT":
                body = body or {}
                if body.get("status") == "cancelled" and order["status"] == "completed":
                    return (
                        400,
                        {
                            "code": "woocommerce_rest_invalid_status",
                            "message": "Completed orders can't be cancelled.",
                            "data": {"status": 400},
                        },
                        {},
                    )
                for key in ("status", "shipping"):
                    if key in body:
                        order[key] = body[key]
                order["date_modified_gmt"] = datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="seconds")
                return 200, copy.deepcopy(order), {}
            if tail == "/notes" and method == "POST":
                self.woo_notes.setdefault(order_id, []).append(body or {})
                return 201, {"id": self.next_id(), **(body or {})}, {}
            if tail == "/refunds" and method == "GET":
                return 200, copy.deepcopy(self.woo_refunds[order_id]), {}
            if tail == "/refunds" and method == "POST":
                body = body or {}
                amount = _money(body.get("amount"))
                refunded = sum((_money(r["amount"]) for r in self.woo_refunds[order_id]), Decimal("0"))
                if amount <= 0 or amount > _money(order["total"]) - refunded:
                    return (
                        400,
                        {
                            "code": "woocommerce_rest_cannot_create_order_refund",
                            "message": "Invalid refund amount.",
                            "data": {"status": 400},
                        },
                        {},
                    )
                refund = {
                    "id": self.next_id(),
                    "date_created": _now()[:19],
                    "date_created_gmt": datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="seconds"),
                    "amount": f"{amount:.2f}",
                    "reason": body.get("reason", ""),
                    "refunded_by": 1,
                    "refunded_payment": bool(body.get("api_refund", True)),
                    "meta_data": [{"id": self.next_id(), **m} for m in body.get("meta_data") or []],
                    "line_items": [
                        {
                            "id": self.next_id(),
                            "quantity": -int(li.get("quantity") or 0),
                            "meta_data": [{"key": "_refunded_item_id", "value": li.get("id")}],
                        }
                        for li in body.get("line_items") or []
                    ],
                }
                self.woo_refunds[order_id].append(refund)
                order["refunds"].append({"id": refund["id"], "reason": refund["reason"], "total": f"-{amount:.2f}"})
                if refunded + amount >= _money(order["total"]):
                    order["status"] = "refunded"
                order["date_modified_gmt"] = datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="seconds")
                return 201, copy.deepcopy(refund), {}
        return (
            404,
            {
                "code": "rest_no_route",
                "message": "No route was found matching the URL and request method.",
                "data": {"status": 404},
            },
            {},
        )

    def _woo_list(self, query: dict) -> tuple[int, Any, dict]:
        after = (query.get("modified_after") or [""])[0]
        per_page = int((query.get("per_page") or ["10"])[0])
        page = int((query.get("page") or ["1"])[0])
        rows = sorted(
            (o for o in self.woo_orders.values() if not after or o["date_modified_gmt"] > after),
            key=lambda o: (o["date_modified_gmt"], o["id"]),
        )
        total_pages = max((len(rows) + per_page - 1) // per_page, 1)
        chunk = rows[(page - 1) * per_page : page * per_page]
        return (
            200,
            copy.deepcopy(chunk),
            {"X-WP-Total": str(len(rows)), "X-WP-TotalPages": str(total_pages)},
        )

    # --- Magento --------------------------------------------------------------------

    def magento(self, method: str, path: str, query: dict, body: Any, headers: dict) -> tuple[int, Any, dict]:
        if headers.get("authorization") != f"Bearer {MAGENTO_TOKEN}":
            return (
                401,
                {
                    "message": "The consumer isn't authorized to access %resources.",
                    "parameters": {"resources": "Magento_Sales::sales"},
                },
                {},
            )
        rest = re.sub(r"^/rest/[^/]+/V1", "", path)
        filters = _magento_filters(query)
        with self.lock:
            if method == "GET" and rest == "/orders":
                since = filters.get("updated_at", "")
                rows = sorted(
                    (o for o in self.magento_orders.values() if o["updated_at"] >= since),
                    key=lambda o: (o["updated_at"], o["entity_id"]),
                )
                size = int((query.get("searchCriteria[pageSize]") or ["20"])[0])
                page = int((query.get("searchCriteria[currentPage]") or ["1"])[0])
                page = min(page, max((len(rows) + size - 1) // size, 1))  # past the end: the last page again
                start = (page - 1) * size
                return (
                    200,
                    {"items": copy.deepcopy(rows[start : start + size]), "total_count": len(rows)},
                    {},
                )
            if method == "GET" and rest == "/creditmemos":
                order_id = filters.get("order_id")
                items = [m for m in self.magento_memos if order_id is None or str(m["order_id"]) == order_id]
                return 200, {"items": copy.deepcopy(items), "total_count": len(items)}, {}
            match = re.fullmatch(r"/orders?/(\d+)(/cancel|/comments|/refund)?", rest)
            order = self.magento_orders.get(match.group(1)) if match else None
            if match is None or order is None:
                return (
                    404,
                    {"message": "The entity that was requested doesn't exist. Verify the entity and try again."},
                    {},
                )
            tail = match.group(2) or ""
            if tail == "" and method == "GET":
                return 200, copy.deepcopy(order), {}
            if tail == "" and method == "PUT":
                entity = (body or {}).get("entity") or {}
                address = order["extension_attributes"]["shipping_assignments"][0]["shipping"]["address"]
                if entity.get("entity_id") != address["entity_id"]:
                    return (
                        400,
                        {
                            "message": 'The address with id "%1" doesn\'t belong to this order.',
                            "parameters": [entity.get("entity_id")],
                        },
                        {},
                    )
                address.update(entity)
                order["updated_at"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
                return 200, copy.deepcopy(address), {}
            if tail == "/cancel" and method == "POST":
                if order["state"] in ("complete", "closed", "canceled") or order["total_invoiced"]:
                    return 200, False, {}
                order["state"] = order["status"] = "canceled"
                order["updated_at"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
                return 200, True, {}
            if tail == "/comments" and method == "POST":
                self.magento_comments.setdefault(match.group(1), []).append(body or {})
                return 200, True, {}
            if tail == "/refund" and method == "POST":
                body = body or {}
                prices = {str(i["item_id"]): _money(i["price"]) for i in order["items"]}
                args = body.get("arguments") or {}
                total = sum(
                    (
                        prices.get(str(i.get("order_item_id")), Decimal("0")) * int(i.get("qty") or 0)
                        for i in body.get("items") or []
                    ),
                    Decimal("0"),
                )
                total += (
                    _money(args.get("adjustment_positive"))
                    - _money(args.get("adjustment_negative"))
                    + _money(args.get("shipping_amount"))
                )
                available = _money(order["total_paid"]) - _money(order["total_refunded"])
                if total <= 0 or total > available:
                    return (
                        400,
                        {
                            "message": "The most money available to refund is %1.",
                            "parameters": [f"{available:.2f}"],
                        },
                        {},
                    )
                memo_id = self.next_id()
                comment = (body.get("comment") or {}).get("comment", "")
                self.magento_memos.append(
                    {
                        "entity_id": memo_id,
                        "order_id": order["entity_id"],
                        "grand_total": float(total),
                        "order_currency_code": order["order_currency_code"],
                        "created_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                        "comments": [{"comment": comment}] if comment else [],
                        "items": [
                            {"order_item_id": i.get("order_item_id"), "qty": i.get("qty")}
                            for i in body.get("items") or []
                        ],
                    }
                )
                order["total_refunded"] = float(_money(order["total_refunded"]) + total)
                if _money(order["total_refunded"]) >= _money(order["total_paid"]):
                    order["state"] = order["status"] = "closed"
                order["updated_at"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
                return 200, memo_id, {}
        return 404, {"message": "Request does not match any route."}, {}


def _public(order: dict) -> dict:
    return {k: copy.deepcopy(v) for k, v in order.items() if not k.startswith("_")}


def _magento_filters(query: dict) -> dict[str, str]:
    """{field: value} from searchCriteria[filter_groups][g][filters][f][field|value] pairs."""
    found: dict[str, dict[str, str]] = {}
    for key, values in query.items():
        match = re.fullmatch(
            r"searchCriteria\[filter_groups\]\[(\d+)\]\[filters\]\[(\d+)\]\[(field|value|condition_type)\]",
            key,
        )
        if match:
            found.setdefault(match.group(1) + ":" + match.group(2), {})[match.group(3)] = values[0]
    return {f["field"]: f.get("value", "") for f in found.values() if "field" in f}


class _Handler(BaseHTTPRequestHandler):
    platform: FakePlatform
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        return

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        headers = {k.lower(): v for k, v in self.headers.items()}
        query = parse_qs(parts.query)
        fake = self.platform
        with fake.lock:
            fake.calls.append(Call(self.command, parts.path, query, headers, body))
        fault = fake._take_fault(self.command, parts.path)
        if fault is not None and fault.kind == "timeout":
            time.sleep(fault.seconds)
            self.close_connection = True
            return
        if fault is not None and fault.kind == "status":
            return self._send(
                fault.status,
                fault.body if fault.body is not None else {"errors": "Internal Server Error"},
                {},
            )
        if fault is not None and fault.kind == "rate_limit":
            return self._send(
                429,
                {
                    "errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."
                },
                {"Retry-After": fault.retry_after},
            )
        if parts.path.startswith("/admin/api/"):
            status, payload, extra = fake.shopify(self.command, parts.path, query, body, headers)
        elif parts.path.startswith("/wp-json/wc/v3"):
            status, payload, extra = fake.woo(self.command, parts.path, query, body, headers)
        elif parts.path.startswith("/rest/"):
            status, payload, extra = fake.magento(self.command, parts.path, query, body, headers)
        else:
            status, payload, extra = 404, {"message": "no such API"}, {}
        if fault is not None and fault.kind == "timeout_after":
            time.sleep(fault.seconds)  # the work is done, but the answer comes too late
        self._send(status, payload, extra)

    def _send(self, status: int, payload: Any, headers: dict[str, str]) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    do_GET = _handle
    do_POST = _handle
    do_PUT = _handle
    do_DELETE = _handle


@pytest.fixture
def fake_platform():
    """A running fake store platform on 127.0.0.1 (an ephemeral port), stopped afterwards."""
    fake = FakePlatform().start()
    try:
        yield fake
    finally:
        fake.stop()
