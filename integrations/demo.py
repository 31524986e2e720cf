"""The demo store's Shopify side: a connected store and a few hundred orders in every state.

`seed_integrations(tenant, people)` runs once, right after the demo tickets
(helpdesk.bootstrap.seed_apps), inside seed_demo's transaction:

- the connection "Northwind Apparel (Shopify)" (`northwind-apparel.myshopify.com`) is made
  by `integrations.services.connection_create`, with a dummy Admin API token. Refunds,
  cancellations and address changes from a ticket, and the beat's 15-minute reconciliation,
  really call that domain and fail ("Could not reach the store" offline; Shopify refuses the
  token otherwise): expected in the demo;
- every demo customer gets 1–6 orders, built as Shopify REST webhook bodies (CONTRACTS.md
  §1.5) and fed through the production path, `normalize("shopify", topic, payload)` then
  `upsert.apply`, so rows, customer links, tiers and ticket links are what real webhooks
  would have produced;
- each demo ticket's quoted order number (`Ticket.order_number`) is an order *of that
  ticket's customer*, in a state that fits the ticket (a "where is my order" ticket has a
  parcel in transit, a solved cancel request a cancelled order, a refund question a
  partial refund of €59.90 …); other orders fill the customers' history. Tickets are then
  linked to their order with `integrations.orders.link_ticket_order`;
- states covered: paid and unfulfilled, partially fulfilled, fulfilled with tracking
  (label created, in transit, out for delivery, delivered, failed attempt, carrier delay),
  partially refunded, refunded, cancelled, returns requested/open;
- tiers follow the orders: the seeded VIPs get a lifetime value of at least 1,000, other
  customers stay below it (the tier the ticket demo gave them is kept or raised by upsert,
  never lowered), so SLA policies keep matching.

Deterministic (fixed seed) and quick: one `apply` per customer, about 400 orders.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from django.utils import timezone

from helpdesk.models import Tenant
from helpdesk.services import Actor

if TYPE_CHECKING:
    from helpdesk.demo import DemoPeople
    from integrations.models import Connection
    from tickets.models import Customer, Ticket

SHOP_DOMAIN = "northwind-apparel.myshopify.com"
CONNECTION_NAME = "Northwind Apparel (Shopify)"
# Not a real token: actions and reconciliation against the demo store fail, by design.
DEMO_ACCESS_TOKEN = "shpat_demo0000000000000000000000000"
STORE_TZ = ZoneInfo("Europe/Berlin")
CURRENCY = "EUR"
VAT = Decimal("0.19")  # prices include German VAT
CENT = Decimal("0.01")
SHIPPING = Decimal("4.95")
FREE_SHIPPING_FROM = Decimal("80.00")
VIP_VALUE = Decimal("1000")  # integrations.upsert.VIP_LIFETIME_VALUE
NON_VIP_CEILING = Decimal("900")  # others stay well below it
MAX_ORDERS = 6

ORDER_ID_BASE = 5_905_000_000_000
CUSTOMER_ID_BASE = 7_215_000_000_000
PRODUCT_ID_BASE = 8_120_000_000
SIZES = ("XS", "S", "M", "L", "XL")


@dataclass(frozen=True)
class Product:
    key: str
    title: str
    sku: str
    price: Decimal
    grams: int
    colours: tuple[str, ...]
    sized: bool = True


CATALOGUE = {
    p.key: p
    for p in (
        Product("linen-shirt", "Linen shirt", "LIN-SHIRT", Decimal("69.00"), 240, ("White", "Sage", "Navy")),
        Product("wool-jacket", "Wool jacket", "WOOL-JKT", Decimal("229.00"), 980, ("Charcoal", "Camel")),
        Product("merino-sweater", "Merino sweater", "MER-SWT", Decimal("89.00"), 420, ("Oat", "Forest", "Black")),
        Product("chinos", "Slim chinos", "CHINO", Decimal("79.00"), 520, ("Stone", "Navy", "Olive")),
        Product("wrap-dress", "Wrap dress", "WRAP-DRS", Decimal("59.90"), 310, ("Rust", "Ink")),
        Product("tee", "Organic T-shirt", "ORG-TEE", Decimal("29.00"), 180, ("White", "Black", "Heather")),
        Product("socks", "Merino socks (2-pack)", "SOCK-2PK", Decimal("15.00"), 90, ("Grey", "Navy"), sized=False),
        Product("rain-shell", "Rain shell", "RAIN-SHL", Decimal("149.00"), 560, ("Yellow", "Black")),
        Product("scarf", "Cashmere scarf", "CASH-SCF", Decimal("119.00"), 150, ("Camel", "Grey"), sized=False),
        Product("denim-jacket", "Denim jacket", "DEN-JKT", Decimal("139.00"), 870, ("Indigo",)),
        Product("belt", "Leather belt", "BELT", Decimal("49.00"), 200, ("Brown", "Black")),
        Product("wool-coat", "Wool coat", "WOOL-COAT", Decimal("329.00"), 1650, ("Camel", "Navy")),
    )
}
EVERYDAY = ("linen-shirt", "merino-sweater", "chinos", "wrap-dress", "tee", "socks", "belt", "denim-jacket")
PREMIUM = ("wool-coat", "wool-jacket", "scarf", "rain-shell")

# street, city, province, province code, zip, country, country code, phone prefix
ADDRESSES = (
    ("Kastanienallee 21", "Berlin", "Berlin", "BE", "10435", "Germany", "DE", "+49151"),
    ("Schanzenstraße 7", "Hamburg", "Hamburg", "HH", "20357", "Germany", "DE", "+49160"),
    ("Leopoldstraße 88", "München", "Bayern", "BY", "80802", "Germany", "DE", "+49171"),
    ("Bergmannstraße 102", "Berlin", "Berlin", "BE", "10961", "Germany", "DE", "+49176"),
    ("Rue de Charonne 34", "Paris", "Paris", "", "75011", "France", "FR", "+33612"),
    ("Calle Mayor 5", "Madrid", "Madrid", "M", "28013", "Spain", "ES", "+34600"),
    ("Via Tortona 15", "Milano", "Milano", "MI", "20144", "Italy", "IT", "+39347"),
    ("Prinsengracht 263", "Amsterdam", "Noord-Holland", "NH", "1016 GV", "Netherlands", "NL", "+31612"),
    ("Mariahilfer Straße 45", "Wien", "Wien", "", "1060", "Austria", "AT", "+43664"),
    ("Nørrebrogade 52", "København", "", "", "2200", "Denmark", "DK", "+45201"),
    ("12 Camden High Street", "London", "England", "ENG", "NW1 0JH", "United Kingdom", "GB", "+44771"),
    ("Rua Augusta 120", "Lisboa", "Lisboa", "", "1100-053", "Portugal", "PT", "+35191"),
)
MOVED_TO = ("Hauptstraße 12", "Berlin", "Berlin", "BE", "10115", "Germany", "DE", "+49151")

CARRIERS = {
    "DHL": ("DHL Paket", "https://www.dhl.de/de/privatkunden/pakete-empfangen/verfolgen.html?piececode={}"),
    "DPD": ("DPD", "https://tracking.dpd.de/status/en_US/parcel/{}"),
    "UPS": ("UPS", "https://www.ups.com/track?tracknum={}"),
    "RM": ("Royal Mail", "https://www.royalmail.com/track-your-item#/tracking-results/{}"),
}

# The fulfillment's Shopify `shipment_status` in each shipped state.
SHIPMENT_STATUS = {
    "partial": "in_transit",
    "label": "label_printed",
    "in_transit": "in_transit",
    "out_for_delivery": "out_for_delivery",
    "attempted": "attempted_delivery",
    "delayed": "delayed",
    "delivered": "delivered",
    "partially_refunded": "delivered",
    "refunded": "delivered",
    "return_requested": "delivered",
    "return_open": "delivered",
}
SHIPPED = frozenset(SHIPMENT_STATUS)
MOVING = frozenset({"partial", "in_transit", "out_for_delivery", "attempted", "delayed"})
HAS_RETURN = frozenset({"return_requested", "return_open"})


def _money(value: Decimal) -> str:
    return str(value.quantize(CENT, ROUND_HALF_UP))


def _vat(gross: Decimal) -> Decimal:
    return (gross - gross / (1 + VAT)).quantize(CENT, ROUND_HALF_UP)


def _iso(at: datetime) -> str:
    return at.astimezone(STORE_TZ).isoformat(timespec="seconds")


@dataclass
class Line:
    product: Product
    colour: str
    size: str
    quantity: int = 1

    @property
    def variant_title(self) -> str:
        return f"{self.colour} / {self.size}" if self.size else self.colour

    @property
    def sku(self) -> str:
        parts = [self.product.sku, self.colour[:3].upper()]
        if self.size:
            parts.append(self.size)
        return "-".join(parts)

    @property
    def amount(self) -> Decimal:
        return self.product.price * self.quantity


@dataclass
class Plan:
    """One order to build: who, when, what, and the state it has reached."""

    customer: Customer
    customer_index: int
    placed: datetime
    state: str
    lines: list[Line]
    ticket: Ticket | None = None
    number: int = 0
    action_at: datetime | None = None  # when the agent cancelled / refunded / re-addressed
    moved: bool = False  # shipping address changed on the customer's request
    voided: bool = False  # a cancelled authorisation (nothing was captured)
    goodwill: bool = False  # a partial refund without a returned item
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def subtotal(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0"))

    @property
    def shipping(self) -> Decimal:
        return Decimal("0.00") if self.subtotal >= FREE_SHIPPING_FROM else SHIPPING

    @property
    def total(self) -> Decimal:
        return self.subtotal + self.shipping

    @property
    def refunded(self) -> Decimal:
        if self.state == "refunded" or (self.state == "cancelled" and not self.voided):
            return self.total
        if self.state == "partially_refunded":
            return self.partial_refund()[1]
        return Decimal("0")

    def partial_refund(self) -> tuple[list[tuple[int, int]], Decimal]:
        """([(line index, quantity)], amount) of a partial refund: one unit of the line the
        ticket is about (the first), or a 25 % goodwill refund when nothing came back."""
        only_item = len(self.lines) == 1 and self.lines[0].quantity == 1 and not self.shipping
        if self.goodwill or only_item:  # refunding the only item would refund everything
            return [], (self.subtotal * Decimal("0.25")).quantize(CENT, ROUND_HALF_UP)
        return [(0, 1)], self.lines[0].product.price

    @property
    def lifetime_value(self) -> Decimal:
        return Decimal("0") if self.state == "cancelled" else self.total - self.refunded


# --- Planning ---------------------------------------------------------------------------


def _line(rng: random.Random, key: str, size: str = "", quantity: int = 1) -> Line:
    product = CATALOGUE[key]
    return Line(
        product=product,
        colour=rng.choice(product.colours),
        size=(size or rng.choice(SIZES[1:4])) if product.sized else "",
        quantity=quantity,
    )


def _basket(rng: random.Random, main: str | None = None, extras: int | None = None) -> list[Line]:
    lines = [_line(rng, main or rng.choice(EVERYDAY))]
    for _ in range(rng.choice([0, 0, 1, 1, 2]) if extras is None else extras):
        key = rng.choice([k for k in EVERYDAY if k not in {line.product.key for line in lines}])
        lines.append(_line(rng, key, quantity=2 if key in ("socks", "tee") and rng.random() < 0.3 else 1))
    return lines


def _ticket_state(slug: str, replied: bool, done: bool, rng: random.Random) -> str:
    """The order state that fits a ticket of this type, before or after the agent acted."""
    if slug == "wismo":
        if done:
            return "delivered"
        return rng.choice(["label", "label", "in_transit", "partial", "out_for_delivery"])
    if slug == "delivery-delay":
        return "delivered" if done else rng.choice(["delayed", "delayed", "delayed", "attempted", "in_transit"])
    if slug == "damaged-item":
        return "partially_refunded" if done and rng.random() < 0.5 else "delivered"
    if slug == "wrong-item":
        return "return_requested" if replied else "delivered"
    if slug == "return-request":
        return "refunded" if done else "return_requested" if replied else "delivered"
    if slug == "refund-status":
        return "partially_refunded" if replied else "return_open"
    if slug == "cancel-request":
        return "cancelled" if replied else "unfulfilled"
    if slug == "address-change":  # shipped to the new address once the ticket was done
        return "in_transit" if done else "unfulfilled"
    if done:
        return "delivered"
    if slug == "payment-issue":
        return rng.choice(["unfulfilled", "in_transit", "delivered"])
    return rng.choice(["unfulfilled", "delivered", "delivered", "in_transit"])  # product questions


# How long before the ticket the order was placed, per ticket type (days).
LEAD_DAYS = {
    "wismo": (4, 8),
    "delivery-delay": (9, 14),
    "damaged-item": (6, 12),
    "wrong-item": (6, 12),
    "return-request": (14, 18),
    "refund-status": (24, 32),
    "cancel-request": (0.05, 0.3),
    "address-change": (0.3, 1.5),
    "payment-issue": (5, 8),
    "product-question": (3, 20),
}


def _ticket_plan(ticket: Ticket, index: int, rng: random.Random, now: datetime) -> Plan:
    slug = ticket.ticket_type.slug if ticket.ticket_type else "product-question"
    replied = ticket.last_agent_reply_at is not None
    done = ticket.status in ("solved", "closed")
    state = _ticket_state(slug, replied, done, rng)
    low, high = LEAD_DAYS.get(slug, (3, 10))
    placed = ticket.created_at - timedelta(days=rng.uniform(low, high))
    main = {
        "wismo": "linen-shirt",
        "damaged-item": "wool-jacket",
        "wrong-item": "merino-sweater",
        "return-request": "chinos",
        "refund-status": "wrap-dress",
        "product-question": "linen-shirt",
    }.get(slug)
    if slug == "payment-issue":  # "two charges of €84.00": shirt + socks, free shipping
        lines = [_line(rng, "linen-shirt"), _line(rng, "socks")]
    elif slug in ("damaged-item", "wrong-item"):
        lines = _basket(rng, main, extras=0)
        lines[0].size = "M"  # "same size (M)", "ordered the merino sweater in M"
    else:
        lines = _basket(rng, main, extras=0 if slug == "refund-status" else None)
    plan = Plan(
        customer=ticket.customer,
        customer_index=index,
        placed=placed,
        state=state,
        lines=lines,
        ticket=ticket,
        number=int(ticket.order_number),
    )
    action = ticket.last_agent_reply_at or ticket.solved_at
    if done and slug in ("return-request", "damaged-item"):
        action = ticket.solved_at or action  # the refund went out when the ticket was solved
    if action is not None:
        plan.action_at = min(action, now - timedelta(minutes=5))
    plan.moved = slug == "address-change" and replied
    if plan.moved and done and plan.action_at is not None and plan.action_at < now - timedelta(days=4):
        plan.state = "delivered"
    plan.goodwill = slug == "damaged-item"
    if state == "delayed":  # "tracking hasn't moved for 4 days"
        plan.extra["stuck_since"] = ticket.created_at - timedelta(days=rng.uniform(3.5, 4.5))
    if state == "delivered" and slug in ("wismo", "delivery-delay"):  # it arrived while the ticket was open
        end = ticket.solved_at or now
        plan.extra["delivered_at"] = ticket.created_at + (end - ticket.created_at) * rng.uniform(0.3, 0.8)
    return plan


def _history_plan(customer: Customer, index: int, rng: random.Random, now: datetime, premium: bool) -> Plan:
    if rng.random() < 0.25:  # a recent order, still on its way
        placed = now - timedelta(days=rng.uniform(0.2, 9))
        state = rng.choice(["unfulfilled", "partial", "in_transit", "out_for_delivery", "delivered", "label"])
        if state == "out_for_delivery" and now - placed < timedelta(days=2):
            state = "unfulfilled"
    else:
        placed = now - timedelta(days=rng.uniform(20, 365))
        state = rng.choices(
            ["delivered", "partially_refunded", "refunded", "cancelled"],
            weights=[72, 10, 10, 8],
        )[0]
    lines = _basket(rng, rng.choice(PREMIUM) if premium else None)
    plan = Plan(customer=customer, customer_index=index, placed=placed, state=state, lines=lines)
    plan.voided = state == "cancelled" and rng.random() < 0.3
    plan.goodwill = state == "partially_refunded" and rng.random() < 0.3
    return plan


def _target_orders(tier: str, tickets: int, rng: random.Random) -> int:
    base = {"vip": rng.randint(4, MAX_ORDERS), "repeat": rng.randint(2, 5)}.get(tier, 1)
    return min(max(base, tickets), MAX_ORDERS) if tickets <= MAX_ORDERS else tickets


def _balance(plans: list[Plan], tier: str, rng: random.Random) -> None:
    """Make the orders justify the customer's tier: VIPs reach the lifetime value, others
    stay below it, repeat customers have two orders that count."""
    history = [p for p in plans if p.ticket is None]
    if tier in ("vip", "repeat"):
        for plan in history:
            if sum(p.state != "cancelled" for p in plans) >= 2:
                break
            if plan.state == "cancelled":
                plan.state = "delivered"
    if tier == "vip":
        grows = ("delivered", "in_transit", "unfulfilled", "label")
        growable = [p for p in history if p.state in grows]
        # Ticket orders whose amount the ticket quotes keep their lines.
        growable = growable or [
            p
            for p in plans
            if p.state in grows and p.ticket is not None and p.ticket.ticket_type
            if p.ticket.ticket_type.slug not in ("payment-issue", "refund-status")
        ]
        turn = 0
        while sum(p.lifetime_value for p in plans) < VIP_VALUE + 100 and growable and turn < 40:
            plan = growable[turn % len(growable)]
            owned = {line.product.key for line in plan.lines}
            options = [k for k in PREMIUM if k not in owned] or list(PREMIUM)
            plan.lines.append(_line(rng, rng.choice(options)))
            turn += 1
        return
    for plan in history:
        while sum(p.lifetime_value for p in plans) >= NON_VIP_CEILING and len(plan.lines) > 1:
            plan.lines.pop()


def _plan_orders(tenant: Tenant, now: datetime) -> list[Plan]:
    from tickets.models import Customer, Ticket

    rng = random.Random(1042)  # noqa: S311 - demo data, not security
    customers = list(Customer.objects.filter(tenant=tenant).exclude(email="").order_by("pk"))
    index_of = {c.pk: i for i, c in enumerate(customers)}
    tickets = list(
        Ticket.objects.filter(tenant=tenant)
        .exclude(order_number="")
        .select_related("customer", "ticket_type")
        .order_by("pk")
    )
    by_customer: dict[int, list[Plan]] = {c.pk: [] for c in customers}
    taken: set[int] = set()
    for ticket in tickets:
        if not ticket.order_number.isdigit() or int(ticket.order_number) in taken:
            continue
        if ticket.customer_id not in by_customer:
            continue
        taken.add(int(ticket.order_number))
        by_customer[ticket.customer_id].append(_ticket_plan(ticket, index_of[ticket.customer_id], rng, now))

    history: list[Plan] = []
    for customer in customers:
        plans = by_customer[customer.pk]
        missing = _target_orders(customer.tier, len(plans), rng) - len(plans)
        extra = [
            _history_plan(customer, index_of[customer.pk], rng, now, customer.tier == "vip" and n % 2 == 0)
            for n in range(missing)
        ]
        plans.extend(extra)
        history.extend(extra)
        _balance(plans, customer.tier, rng)

    # Shopify numbers orders in sequence: history takes the free numbers, oldest first.
    top = max(taken, default=1000) + 1
    free = [n for n in range(1001, top) if n not in taken]
    free += list(range(top, top + max(0, len(history) - len(free))))
    step = max(1, len(free) // max(1, len(history)))
    numbers = sorted(free[::step][: len(history)])
    if len(numbers) < len(history):
        numbers = sorted(free[: len(history)])
    for plan, number in zip(sorted(history, key=lambda p: p.placed), numbers, strict=True):
        plan.number = number
    return [plan for plans in by_customer.values() for plan in plans]


# --- Timelines and payloads -------------------------------------------------------------


def _timeline(plan: Plan, rng: random.Random, now: datetime) -> dict[str, datetime]:
    """When each thing happened, never later than a few minutes ago."""
    latest = now - timedelta(minutes=3)
    placed = min(plan.placed, latest - timedelta(hours=2))
    t: dict[str, datetime] = {"placed": placed}
    if plan.moved and plan.action_at:
        t["moved"] = plan.action_at
    if plan.state in SHIPPED:
        shipped = placed + timedelta(hours=rng.uniform(14, 40))
        if "moved" in t:  # it left the warehouse after the address was changed
            shipped = max(shipped, t["moved"] + timedelta(hours=rng.uniform(2, 20)))
        t["shipped"] = shipped
        scan = (
            {
                "label": shipped + timedelta(minutes=rng.uniform(5, 40)),
                "partial": shipped + timedelta(hours=rng.uniform(10, 30)),
                "in_transit": shipped + timedelta(hours=rng.uniform(10, 30)),
                "out_for_delivery": latest - timedelta(hours=rng.uniform(0.5, 4)),
                "attempted": shipped + timedelta(days=rng.uniform(2, 3)),
                "delayed": plan.extra.get("stuck_since", shipped + timedelta(days=rng.uniform(1.5, 3))),
            }.get(plan.state)
            or plan.extra.get("delivered_at")
            or shipped + timedelta(days=rng.uniform(1.5, 3.5))
        )
        t["scan"] = max(scan, shipped + timedelta(minutes=5))
        if plan.state in MOVING or plan.state == "label":
            t["eta"] = shipped + timedelta(days=3)
    if plan.state == "cancelled":
        t["cancelled"] = plan.action_at or placed + timedelta(hours=rng.uniform(1, 12))
    if plan.state in ("refunded", "partially_refunded"):
        t["refund"] = plan.action_at or t["scan"] + timedelta(days=rng.uniform(3, 12))
    if plan.state in HAS_RETURN:
        t["return"] = plan.action_at or t["scan"] + timedelta(days=rng.uniform(2, 8))
        if plan.state == "return_open" and plan.ticket is not None:
            t["return"] = min(t["return"], plan.ticket.created_at - timedelta(days=rng.uniform(10, 14)))
    # Keep causality and the present: every event after the one before it, none in the future.
    previous = placed
    for key in ("moved", "shipped", "scan", "cancelled", "refund", "return"):
        if key in t:
            t[key] = min(max(t[key], previous + timedelta(minutes=2)), latest)
            previous = t[key]
    t["updated"] = max(at for key, at in t.items() if key != "eta")  # an ETA may lie ahead
    if "eta" in t and plan.state == "out_for_delivery":
        t["eta"] = max(t["eta"], t["scan"])
    return t


def _address(customer: Customer, index: int, moved: bool = False) -> dict:
    street, city, province, code, zip_code, country, country_code, prefix = (
        MOVED_TO if moved else ADDRESSES[index % len(ADDRESSES)]
    )
    first, _, last = (customer.name or customer.email.split("@")[0]).partition(" ")
    return {
        "first_name": first,
        "last_name": last,
        "name": f"{first} {last}".strip(),
        "company": None,
        "address1": street,
        "address2": "" if index % 3 else f"{index % 5 + 1}. OG",
        "city": city,
        "province": province or None,
        "province_code": code or None,
        "zip": zip_code,
        "country": country,
        "country_code": country_code,
        "phone": _phone(index, prefix),
    }


def _phone(index: int, prefix: str) -> str | None:
    if index % 2:
        return None
    digits = int(hashlib.sha256(f"phone{index}".encode()).hexdigest(), 16) % 10**7
    return f"{prefix}{digits:07d}"


def _carrier(index: int, number: int) -> tuple[str, str, str]:
    country = ADDRESSES[index % len(ADDRESSES)][6]
    digits = int(hashlib.sha256(f"track{number}".encode()).hexdigest(), 16)
    if country == "GB":
        name, url = CARRIERS["RM"]
        tracking = f"RM{digits % 10**9:09d}GB"
    elif country == "DE":
        key = "DHL" if number % 3 else "DPD"
        name, url = CARRIERS[key]
        tracking = f"00340434{digits % 10**12:012d}" if key == "DHL" else f"{digits % 10**14:014d}"
    else:
        name, url = CARRIERS["UPS"]
        tracking = f"1Z{digits % 36**6:06X}68{digits % 10**8:08d}"
    return name, tracking, url.format(tracking)


def _ids(number: int) -> dict[str, int]:
    base = ORDER_ID_BASE + number * 1_009
    return {
        "order": base,
        "line": 14_800_000_000_000 + number * 10,
        "fulfillment": 4_650_000_000_000 + number * 10,
        "refund": 9_350_000_000_000 + number * 10,
        "transaction": 6_720_000_000_000 + number * 10,
        "return": 9_990_000_000 + number * 10,
    }


def _line_items(plan: Plan, ids: dict[str, int], fulfilled: int) -> list[dict]:
    """Line items; the first `fulfilled` lines have shipped."""
    items = []
    for i, line in enumerate(plan.lines):
        shipped = i < fulfilled
        items.append(
            {
                "id": ids["line"] + i,
                "admin_graphql_api_id": f"gid://shopify/LineItem/{ids['line'] + i}",
                "product_id": PRODUCT_ID_BASE + list(CATALOGUE).index(line.product.key),
                "variant_id": _variant_id(line),
                "sku": line.sku,
                "title": line.product.title,
                "variant_title": line.variant_title,
                "name": f"{line.product.title} - {line.variant_title}",
                "vendor": "Northwind Apparel",
                "quantity": line.quantity,
                "price": _money(line.product.price),
                "total_discount": "0.00",
                "grams": line.product.grams,
                "requires_shipping": True,
                "taxable": True,
                "gift_card": False,
                "fulfillment_service": "manual",
                "fulfillable_quantity": 0 if shipped or plan.state == "cancelled" else line.quantity,
                "fulfillment_status": "fulfilled" if shipped else None,
                "properties": [],
                "tax_lines": [{"title": "MwSt", "rate": float(VAT), "price": _money(_vat(line.amount))}],
            }
        )
    return items


def _variant_id(line: Line) -> int:
    return 44_100_000_000_000 + int(hashlib.sha256(line.sku.encode()).hexdigest(), 16) % 10**9


def _fulfillment(plan: Plan, ids: dict[str, int], t: dict[str, datetime], items: list[dict], count: int) -> dict:
    carrier, tracking, url = _carrier(plan.customer_index, plan.number)
    body = {
        "id": ids["fulfillment"],
        "admin_graphql_api_id": f"gid://shopify/Fulfillment/{ids['fulfillment']}",
        "order_id": ids["order"],
        "name": f"#{plan.number}.1",
        "status": "success",
        "service": "manual",
        "location_id": 71_230_000_001,
        "created_at": _iso(t["shipped"]),
        "updated_at": _iso(t["scan"]),
        "shipment_status": SHIPMENT_STATUS[plan.state],
        "tracking_company": carrier,
        "tracking_number": tracking,
        "tracking_numbers": [tracking],
        "tracking_url": url,
        "tracking_urls": [url],
        "line_items": [
            {"id": item["id"], "sku": item["sku"], "quantity": item["quantity"], "fulfillment_status": "fulfilled"}
            for item in items[:count]
        ],
    }
    if "eta" in t:
        body["estimated_delivery_at"] = _iso(t["eta"])
    return body


def _refund(plan: Plan, ids: dict[str, int], t: dict[str, datetime], items: list[dict]) -> dict:
    at = t.get("refund") or t["cancelled"]
    if plan.state == "partially_refunded":
        picked, amount = plan.partial_refund()
        restock = "return"
        note = "Goodwill refund for the damaged item" if plan.goodwill else "Returned item received"
    else:
        picked = [(i, line.quantity) for i, line in enumerate(plan.lines)]
        amount = plan.total
        restock = "cancel" if plan.state == "cancelled" else "return"
        note = "Order cancelled at the customer's request" if plan.state == "cancelled" else "Return received"
    refund_lines = []
    for n, (i, quantity) in enumerate(picked):
        line = plan.lines[i]
        subtotal = line.product.price * quantity
        refund_lines.append(
            {
                "id": ids["refund"] * 10 + n,
                "line_item_id": items[i]["id"],
                "quantity": quantity,
                "restock_type": restock,
                "location_id": 71_230_000_001,
                "subtotal": _money(subtotal),
                "total_tax": _money(_vat(subtotal)),
                "line_item": {k: items[i][k] for k in ("id", "sku", "title", "quantity", "price")},
            }
        )
    return {
        "id": ids["refund"],
        "admin_graphql_api_id": f"gid://shopify/Refund/{ids['refund']}",
        "order_id": ids["order"],
        "created_at": _iso(at),
        "processed_at": _iso(at),
        "note": note,
        "restock": bool(refund_lines),
        "order_adjustments": [],
        "duties": [],
        "refund_line_items": refund_lines,
        "transactions": [
            {
                "id": ids["transaction"] + 1,
                "order_id": ids["order"],
                "kind": "refund",
                "gateway": "shopify_payments",
                "status": "success",
                "amount": _money(amount),
                "currency": CURRENCY,
                "parent_id": ids["transaction"],
                "processed_at": _iso(at),
            }
        ],
    }


def order_payload(plan: Plan, t: dict[str, datetime]) -> tuple[str, dict]:
    """(topic, body) of the Shopify webhook that reports this order as it is now."""
    ids = _ids(plan.number)
    customer = plan.customer
    shipping = _address(customer, plan.customer_index, moved="moved" in t)
    billing = _address(customer, plan.customer_index)
    fulfilled = 0
    if plan.state in SHIPPED:
        fulfilled = 1 if plan.state == "partial" and len(plan.lines) > 1 else len(plan.lines)
    items = _line_items(plan, ids, fulfilled)
    fulfillments = [_fulfillment(plan, ids, t, items, fulfilled)] if fulfilled else []
    refunds = [_refund(plan, ids, t, items)] if plan.refunded else []
    if plan.state == "cancelled":
        financial = "voided" if plan.voided else "refunded"
    elif plan.state == "refunded":
        financial = "refunded"
    elif plan.state == "partially_refunded":
        financial = "partially_refunded"
    else:
        financial = "paid"
    if not fulfilled:
        fulfillment_status = None
    elif fulfilled < len(plan.lines):
        fulfillment_status = "partial"
    else:
        fulfillment_status = "fulfilled"
    closed = t.get("cancelled") or (t.get("scan") if plan.state in ("delivered", "refunded") else None)
    first, _, last = (customer.name or "").partition(" ")
    tags = []
    if customer.tier == "vip":
        tags.append("VIP")
    if plan.moved:
        tags.append("address-changed")
    phone = shipping["phone"] or billing["phone"]
    body = {
        "id": ids["order"],
        "admin_graphql_api_id": f"gid://shopify/Order/{ids['order']}",
        "name": f"#{plan.number}",
        "order_number": plan.number,
        "number": plan.number - 1000,
        "confirmation_number": hashlib.sha256(str(ids["order"]).encode()).hexdigest()[:9].upper(),
        "confirmed": True,
        "email": customer.email,
        "contact_email": customer.email,
        "phone": None,
        "buyer_accepts_marketing": plan.customer_index % 3 == 0,
        "customer_locale": "en-DE",
        "source_name": "web",
        "landing_site": "/collections/new-in",
        "payment_gateway_names": ["shopify_payments"],
        "financial_status": financial,
        "fulfillment_status": fulfillment_status,
        "currency": CURRENCY,
        "presentment_currency": CURRENCY,
        "taxes_included": True,
        "total_line_items_price": _money(plan.subtotal),
        "subtotal_price": _money(plan.subtotal),
        "total_discounts": "0.00",
        "total_shipping_price_set": {"shop_money": {"amount": _money(plan.shipping), "currency_code": CURRENCY}},
        "total_tax": _money(_vat(plan.total)),
        "total_price": _money(plan.total),
        "total_weight": sum(line.product.grams * line.quantity for line in plan.lines),
        "created_at": _iso(t["placed"]),
        "processed_at": _iso(t["placed"]),
        "updated_at": _iso(t["updated"]),
        "cancelled_at": _iso(t["cancelled"]) if "cancelled" in t else None,
        "cancel_reason": "customer" if plan.state == "cancelled" else None,
        "closed_at": _iso(closed) if closed else None,
        "tags": ", ".join(tags),
        "note": "Please leave the parcel with a neighbour if I'm out." if plan.number % 11 == 0 else None,
        "note_attributes": [],
        "discount_codes": [],
        "test": False,
        "customer": {
            "id": CUSTOMER_ID_BASE + plan.customer_index,
            "admin_graphql_api_id": f"gid://shopify/Customer/{CUSTOMER_ID_BASE + plan.customer_index}",
            "email": customer.email,
            "first_name": first or None,
            "last_name": last or None,
            "phone": phone,
            "state": "enabled",
            "verified_email": True,
            "currency": CURRENCY,
            "tags": "VIP" if customer.tier == "vip" else "",
        },
        "billing_address": billing,
        "shipping_address": shipping,
        "shipping_lines": [
            {
                "id": ids["line"] + 9,
                "title": "Standard shipping" if plan.shipping else "Free shipping",
                "code": "standard",
                "source": "shopify",
                "price": _money(plan.shipping),
                "discounted_price": _money(plan.shipping),
            }
        ],
        "tax_lines": [{"title": "MwSt", "rate": float(VAT), "price": _money(_vat(plan.total))}],
        "line_items": items,
        "fulfillments": fulfillments,
        "refunds": refunds,
    }
    if plan.state == "cancelled":
        topic = "orders/cancelled"
    elif refunds or "moved" in t:
        topic = "orders/updated"
    elif fulfillment_status == "partial":
        topic = "orders/partially_fulfilled"
    elif fulfillment_status == "fulfilled":
        topic = "orders/fulfilled"
    else:
        topic = "orders/paid"
    return topic, body


RETURN_REASONS = (
    ("SIZE_TOO_SMALL", "Runs small, I need the next size up"),
    ("SIZE_TOO_LARGE", "Too big across the shoulders"),
    ("WRONG_ITEM", "Received the wrong size"),
    ("STYLE", "The colour is different from the photos"),
    ("UNWANTED", ""),
)


def return_payload(plan: Plan) -> tuple[str, dict]:
    """(topic, body) of the Shopify returns webhook for an order with a return."""
    ids = _ids(plan.number)
    reason, note = RETURN_REASONS[plan.number % len(RETURN_REASONS)]
    if plan.ticket is not None and plan.ticket.ticket_type and plan.ticket.ticket_type.slug == "wrong-item":
        reason, note = "WRONG_ITEM", "Ordered M, the label says L"
    opened = plan.state == "return_open"
    return (
        "returns/approve" if opened else "returns/request",
        {
            "id": ids["return"],
            "admin_graphql_api_id": f"gid://shopify/Return/{ids['return']}",
            "name": f"#{plan.number}-R1",
            "status": "open" if opened else "requested",
            "order": {
                "id": ids["order"],
                "admin_graphql_api_id": f"gid://shopify/Order/{ids['order']}",
                "name": f"#{plan.number}",
            },
            "total_return_line_items": 1,
            "return_line_items": [
                {
                    "id": ids["return"] * 10,
                    "admin_graphql_api_id": f"gid://shopify/ReturnLineItem/{ids['return'] * 10}",
                    "quantity": 1,
                    "return_reason": reason,
                    "return_reason_note": "",
                    "customer_note": note,
                    "fulfillment_line_item": {
                        "id": ids["fulfillment"] * 10,
                        "admin_graphql_api_id": f"gid://shopify/FulfillmentLineItem/{ids['fulfillment'] * 10}",
                        "line_item": {
                            "id": ids["line"],
                            "admin_graphql_api_id": f"gid://shopify/LineItem/{ids['line']}",
                        },
                    },
                }
            ],
        },
    )


# --- Seeding ------------------------------------------------------------------------------


def _connect(tenant: Tenant, people: DemoPeople) -> Connection:
    from integrations.models import Connection
    from integrations.services import connection_create

    existing = Connection.objects.filter(tenant=tenant, platform="shopify", shop_domain=SHOP_DOMAIN).first()
    if existing is not None:
        return existing
    connection, _secret = connection_create(
        tenant=tenant,
        platform="shopify",
        name=CONNECTION_NAME,
        actor=Actor.for_user(people.admin),
        shop_domain=SHOP_DOMAIN,
        credentials={"access_token": DEMO_ACCESS_TOKEN},
    )
    return connection


def seed_integrations(tenant: Tenant, people: DemoPeople) -> None:
    """The connected demo store and its orders (see the module docstring)."""
    from integrations.models import Order
    from integrations.normalize import normalize
    from integrations.orders import link_ticket_order
    from integrations.upsert import apply
    from tickets.models import Ticket

    connection = _connect(tenant, people)
    from integrations.notices_demo import seed_notices  # starter customer notices

    seed_notices(tenant)
    if Order.objects.filter(tenant=tenant, connection=connection).exists():
        return
    now = timezone.now()
    rng = random.Random(2026)  # noqa: S311 - demo data, not security
    plans = _plan_orders(tenant, now)
    by_customer: dict[int, list[Plan]] = {}
    for plan in plans:
        by_customer.setdefault(plan.customer.pk, []).append(plan)
    for customer_plans in by_customer.values():
        records = []
        returns = []
        for plan in sorted(customer_plans, key=lambda p: p.placed):
            t = _timeline(plan, rng, now)
            topic, body = order_payload(plan, t)
            records.extend(normalize("shopify", topic, body))
            if plan.state in HAS_RETURN:
                returns.append(plan)
        for plan in returns:
            topic, body = return_payload(plan)
            records.extend(normalize("shopify", topic, body))
        apply(connection=connection, records=records, received_at=now)

    # Tickets whose order arrived after they were solved (upsert links only open ones).
    for ticket in Ticket.objects.filter(tenant=tenant, order__isnull=True).select_related("tenant").order_by("pk"):
        link_ticket_order(ticket=ticket, actor=Actor.system())
