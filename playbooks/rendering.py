"""Reply and notice templates: a Jinja2 sandbox over a fixed set of plain variables.

Templates are written by leads, so they are untrusted (DESIGN invariant 7). They render in
Jinja2's `ImmutableSandboxedEnvironment` against plain dicts and lists built here — never
model instances — so a template can reach exactly the documented variables and nothing
behind them. Three checks:

- `validate(text)` at save: syntax errors and unknown variables, each with its line.
- `render(text, context)` at send: returns the text and the variables that had no value
  (`missing`); the composer shows them and automated sends hold the notice.
- the sandbox itself refuses attribute tricks (`__class__`, `mro`, …) with an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from jinja2 import TemplateSyntaxError, Undefined, nodes
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

if TYPE_CHECKING:
    from integrations.models import Order
    from tickets.models import Customer, Ticket

# The documented variables: name -> its fields (None = a scalar). Lists are marked by
# putting their element schema in a one-item list.
_ADDRESS = {
    "name": None,
    "address1": None,
    "address2": None,
    "city": None,
    "province": None,
    "zip": None,
    "country": None,
    "one_line": None,
}
_FULFILLMENT = {
    "carrier": None,
    "tracking_number": None,
    "tracking_url": None,
    "status": None,
    "shipped_at": None,
    "expected_delivery": None,
    "delivered_at": None,
}
_REFUND = {"amount": None, "currency": None, "reason": None, "processed_at": None}
_RETURN = {"name": None, "status": None}
_LINE = {"title": None, "sku": None, "quantity": None, "price": None}
SCHEMA: dict[str, Any] = {
    "customer": {"name": None, "first_name": None, "email": None, "phone": None, "language": None, "tier": None},
    "ticket": {"number": None, "subject": None, "status": None, "priority": None, "type": None, "channel": None},
    "store": {"name": None, "url": None, "support_email": None},
    "agent": {"name": None, "first_name": None, "email": None},
    # Links filled by the sender: the CSAT survey, the customer's opt-out of notices.
    "links": {"survey": None, "unsubscribe": None, "tracking": None},
    "order": {
        "number": None,
        "name": None,
        "placed_at": None,
        "total": None,
        "currency": None,
        "financial_status": None,
        "fulfillment_status": None,
        "shipping_address": _ADDRESS,
        "lines": [_LINE],
    },
    "fulfillment": _FULFILLMENT,  # the latest shipment of the order
    "fulfillments": [_FULFILLMENT],
    "refund": _REFUND,  # the latest refund
    "refunds": [_REFUND],
    "returns": [_RETURN],
}
VARIABLES = tuple(SCHEMA)


def sample_paths() -> list[str]:
    """Every documented variable path, for the editor's reference list."""
    out: list[str] = []

    def walk(prefix: str, spec: Any) -> None:
        if isinstance(spec, list):
            out.append(f"{prefix}[]")
            walk(f"{prefix}[]", spec[0])
        elif isinstance(spec, dict):
            for key, sub in spec.items():
                walk(f"{prefix}.{key}" if prefix else key, sub)
        else:
            out.append(prefix)

    walk("", SCHEMA)
    return out


class TemplateProblem(Exception):
    """A template that cannot be saved or rendered: a message and the 1-based line."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line

    def __str__(self) -> str:
        return f"Line {self.line}: {self.message}" if self.line else self.message


class _Recording(Undefined):
    """An Undefined that remembers, when printed or iterated, which variable had no value."""

    __slots__ = ()

    def _path(self) -> str:
        name = self._undefined_name or "?"
        parent = getattr(self._undefined_obj, "_sd_path", None)
        return f"{parent}.{name}" if parent else str(name)

    def _record(self) -> None:
        missing = getattr(_CURRENT, "missing", None)
        if missing is not None:
            path = self._path()
            if path not in missing:
                missing.append(path)

    def __str__(self) -> str:
        self._record()
        return ""

    def __iter__(self):  # type: ignore[override]
        self._record()
        return iter(())

    def __getattr__(self, name: str) -> Any:
        if name[:2] == "__":
            raise AttributeError(name)
        child = _Recording(hint=None, obj=_PathHolder(self._path()), name=name)
        return child

    __getitem__ = __getattr__  # type: ignore[assignment]


class _PathHolder:
    __slots__ = ("_sd_path",)

    def __init__(self, path: str) -> None:
        self._sd_path = path


class _Current:
    missing: list[str] | None = None


_CURRENT = _Current()


def _money(value: Any) -> str:
    try:
        return f"{Decimal(str(value)):,.2f}"
    except Exception:
        return str(value)


def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(autoescape=False, undefined=_Recording, keep_trailing_newline=True)
    env.filters["money"] = _money
    return env


_ENV = _environment()


def _wrap(value: Any, path: str) -> Any:
    if isinstance(value, dict):
        return _Node(value, path)
    if isinstance(value, list):
        return [_wrap(item, f"{path}[]") for item in value]
    return value


class _Node(dict):
    """A plain mapping for templates: `node.key` works; an absent or empty key is Undefined."""

    def __init__(self, data: dict, path: str) -> None:
        super().__init__({k: _wrap(v, f"{path}.{k}") for k, v in data.items() if v not in (None, "", [], {})})
        self._sd_path = path

    def __getattr__(self, name: str) -> Any:
        if name[:1] == "_":
            raise AttributeError(name)
        if name in self:
            return self[name]
        return _Recording(hint=None, obj=_PathHolder(self._sd_path), name=name)


def _line_of(node: nodes.Node) -> int:
    return getattr(node, "lineno", 1) or 1


_BUILTIN_NAMES = frozenset({"loop", "true", "false", "none", "True", "False", "None", "range"})


def validate(text: str) -> None:
    """Raise TemplateProblem for a syntax error or a variable that is not documented."""
    try:
        tree = _ENV.parse(text)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(exc.message or "syntax error", exc.lineno) from None
    local_specs: dict[str, Any] = {}
    # Loop targets and {% set %} names are local: bind them to the element schema if known.
    for loop in tree.find_all(nodes.For):
        spec = _spec_of(loop.iter, local_specs)
        element = spec[0] if isinstance(spec, list) and spec else None
        for target in _names(loop.target):
            local_specs[target.name] = element if element is not None else ...
    for assign in tree.find_all((nodes.Assign, nodes.AssignBlock)):
        for target in _names(assign.target):  # type: ignore[attr-defined]
            local_specs[target.name] = ...
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Name)):
        if isinstance(node, nodes.Name):
            known = node.name in SCHEMA or node.name in local_specs or node.name in _BUILTIN_NAMES
            if node.ctx == "load" and not known:
                raise TemplateProblem(
                    f"unknown variable “{node.name}”: use one of {', '.join(VARIABLES)}", _line_of(node)
                )
            continue
        if isinstance(node, nodes.Getitem) and not isinstance(node.arg, nodes.Const):
            continue
        attr = node.attr if isinstance(node, nodes.Getattr) else node.arg.value  # type: ignore[attr-defined]
        if isinstance(attr, str) and attr.startswith("_"):
            raise TemplateProblem(f"“{attr}” is not allowed in a template", _line_of(node))
        owner = node.node  # type: ignore[attr-defined]
        parent = _spec_of(owner, local_specs)
        if isinstance(parent, dict) and attr not in parent:
            raise TemplateProblem(
                f"unknown variable “{_dotted(node)}”: {_dotted(owner)} has {', '.join(parent)}", _line_of(node)
            )


def _names(target: nodes.Node) -> list[nodes.Name]:
    """The names a loop or set target binds (find_all skips the node itself)."""
    if isinstance(target, nodes.Name):
        return [target]
    return list(target.find_all(nodes.Name))


def _spec_of(node: nodes.Node, local_specs: dict[str, Any]) -> Any:
    """The schema of an expression, or ... when it cannot be known statically."""
    if isinstance(node, nodes.Name):
        if node.name in local_specs:
            return local_specs[node.name]
        return SCHEMA.get(node.name, ...)
    if isinstance(node, nodes.Getattr | nodes.Getitem):
        attr = node.attr if isinstance(node, nodes.Getattr) else getattr(node.arg, "value", None)
        parent = _spec_of(node.node, local_specs)
        if isinstance(parent, dict) and isinstance(attr, str):
            return parent.get(attr, ...)
        if isinstance(parent, list) and isinstance(attr, int) and parent:
            return parent[0]
    if isinstance(node, nodes.Filter) and node.node is not None:
        return _spec_of(node.node, local_specs) if node.name in ("reverse", "sort", "list") else ...
    return ...


def _dotted(node: nodes.Node) -> str:
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        return f"{_dotted(node.node)}.{node.attr}"
    if isinstance(node, nodes.Getitem):
        return f"{_dotted(node.node)}[{getattr(node.arg, 'value', '…')}]"
    return "…"


@dataclass
class Rendered:
    text: str
    missing: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing


@lru_cache(maxsize=512)
def _compiled(text: str) -> Any:
    # Compiling costs ~3 ms, rendering a fraction of that: bulk notices reuse a few texts.
    return _ENV.from_string(text)


def render(text: str, context: dict[str, Any]) -> Rendered:
    """Render `text` in the sandbox. Raises TemplateProblem for a broken or unsafe template."""
    try:
        template = _compiled(text)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(exc.message or "syntax error", exc.lineno) from None
    missing: list[str] = []
    previous = _CURRENT.missing
    _CURRENT.missing = missing
    try:
        wrapped = {name: _wrap(value, name) for name, value in context.items() if name in SCHEMA}
        for name in SCHEMA:
            if name not in wrapped or wrapped[name] in (None, "", [], {}):
                wrapped.pop(name, None)
        out = template.render(wrapped)
    except SecurityError as exc:
        raise TemplateProblem(f"not allowed in a template: {exc}") from None
    except TemplateError as exc:
        raise TemplateProblem(str(exc)) from None
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise TemplateProblem(f"could not render: {exc}") from None
    finally:
        _CURRENT.missing = previous
    return Rendered(text=out.strip(), missing=missing)


# --- context building ------------------------------------------------------------------


def _dt(value: Any, tz: Any = None) -> str:
    if value is None:
        return ""
    from django.utils import timezone as dj_tz

    local = dj_tz.localtime(value, tz) if tz is not None else value
    return local.strftime("%-d %b %Y")


def _address(data: dict) -> dict:
    if not data:
        return {}
    name = data.get("name") or " ".join(filter(None, [data.get("first_name"), data.get("last_name")]))
    parts = [data.get("address1"), data.get("address2"), data.get("city"), data.get("province"), data.get("zip")]
    country = data.get("country") or data.get("country_code")
    return {
        "name": name,
        "address1": data.get("address1", ""),
        "address2": data.get("address2", ""),
        "city": data.get("city", ""),
        "province": data.get("province", ""),
        "zip": data.get("zip", ""),
        "country": country or "",
        "one_line": ", ".join(str(p) for p in [*parts, country] if p),
    }


def order_context(order: Order | None, tz: Any = None) -> dict[str, Any]:
    """The order-related variables: order, fulfillment(s), refund(s), returns."""
    if order is None:
        return {}
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    fulfillments = sorted(order.fulfillments.all(), key=lambda f: f.shipped_at or f.last_event_at or epoch)
    refunds = sorted(order.refunds.all(), key=lambda r: r.processed_at or epoch)
    fulfillment_items = [
        {
            "carrier": f.carrier,
            "tracking_number": f.tracking_number,
            "tracking_url": f.tracking_url,
            "status": f.get_status_display() if f.status != "unknown" else f.shipment_status,
            "shipped_at": _dt(f.shipped_at, tz),
            "expected_delivery": _dt(f.estimated_delivery_at, tz),
            "delivered_at": _dt(f.delivered_at, tz),
        }
        for f in fulfillments
    ]
    refund_items = [
        {"amount": _money(r.amount), "currency": r.currency, "reason": r.note, "processed_at": _dt(r.processed_at, tz)}
        for r in refunds
    ]
    return {
        "order": {
            "number": order.number,
            "name": order.name or f"#{order.number}",
            "placed_at": _dt(order.placed_at, tz),
            "total": _money(order.total),
            "currency": order.currency,
            "financial_status": order.financial_status.replace("_", " "),
            "fulfillment_status": (order.fulfillment_status or "unfulfilled").replace("_", " "),
            "shipping_address": _address(order.shipping_address),
            "lines": [
                {"title": line.title, "sku": line.sku, "quantity": line.quantity, "price": _money(line.price)}
                for line in order.lines.all()
            ],
        },
        "fulfillment": fulfillment_items[-1] if fulfillment_items else {},
        "fulfillments": fulfillment_items,
        "refund": refund_items[-1] if refund_items else {},
        "refunds": refund_items,
        "returns": [{"name": r.name, "status": r.status.replace("_", " ")} for r in order.returns.all()],
    }


def customer_context(customer: Customer | None) -> dict[str, Any]:
    if customer is None:
        return {}
    name = customer.name or ""
    return {
        "name": name,
        "first_name": name.split()[0] if name.split() else "",
        "email": customer.email,
        "phone": customer.phone,
        "language": customer.language,
        "tier": customer.get_tier_display(),
    }


def store_context(tenant: Any) -> dict[str, Any]:
    from django.conf import settings

    base = getattr(settings, "BASE_URL", "").rstrip("/")
    return {
        "name": tenant.name,
        "url": f"{base}/help/{tenant.slug}/" if base else "",
        "support_email": getattr(tenant, "support_email", "") or "",
    }


def ticket_context(ticket: Ticket, agent: Any = None, order: Order | None = None) -> dict[str, Any]:
    """Every variable for a reply on `ticket` (its linked order unless `order` is given)."""
    from zoneinfo import ZoneInfo

    tenant = ticket.tenant
    try:
        tz = ZoneInfo(tenant.timezone)
    except Exception:
        tz = None
    context: dict[str, Any] = {
        "customer": customer_context(ticket.customer),
        "ticket": {
            "number": ticket.number,
            "subject": ticket.subject,
            "status": ticket.get_status_display(),
            "priority": ticket.get_priority_display(),
            "type": ticket.ticket_type.name if ticket.ticket_type_id and ticket.ticket_type else "",
            "channel": ticket.get_channel_display(),
        },
        "store": store_context(tenant),
    }
    if agent is not None and getattr(agent, "pk", None):
        full = (getattr(agent, "name", "") or "").strip()
        context["agent"] = {"name": full, "first_name": full.split()[0] if full else "", "email": agent.email}
    context.update(order_context(order if order is not None else ticket.order, tz))
    return context
