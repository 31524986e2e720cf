"""One webhook payload in, normalised records out: `normalize(platform, topic, payload)`.

Each platform's parser lives in `integrations/<platform>/parse.py` and exposes a pure
`parse(topic, payload) -> list[Record]` (no ORM, no clock). This module dispatches to them
and holds the small value helpers they share, so every platform reads ids, money, times
and carrier statuses the same way:

- ids (`ident`): 64-bit integers or strings, always returned as `str`; a GraphQL global id
  (`gid://shopify/Order/123`) becomes its numeric tail; a missing or blank id is a
  PayloadError naming the field.
- money (`money`): strings ("39.90"), integers or floats → `Decimal`; never through float
  arithmetic; NaN/Infinity and garbage are PayloadErrors.
- timestamps (`timestamp`): ISO 8601. With an offset or `Z` → that instant; without one
  (WooCommerce `*_gmt`, Magento `updated_at`) → read as UTC. Always aware.
- carrier statuses (`canonical_shipment_status`): CONTRACTS.md §6, from the vocabularies of
  Shopify `shipment_status`, AfterShip `tag`, EasyPost `status` and Shippo to Storedesk's
  canonical `Fulfillment.status`.
- addresses (`address`): every platform's address becomes one shape, Shopify's REST keys:
  `name, first_name, last_name, company, address1, address2, city, province,
  province_code, zip, country, country_code, phone` (blank keys dropped).

Errors: a payload we cannot use raises PayloadError (its message starts with the path of
the missing or bad field); a topic we do not use returns []. Anything else a malformed
payload trips over (a list where an object belongs, …) is turned into a PayloadError here,
so the delivery is dead-lettered with a reason instead of being retried for ever.
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from integrations.normalized import PayloadError, Record

__all__ = [
    "PARSERS",
    "PayloadError",
    "address",
    "canonical_shipment_status",
    "ident",
    "money",
    "normalize",
    "obj",
    "objs",
    "opt_ident",
    "quantity",
    "text",
    "timestamp",
]

# platform kind -> module with `parse(topic, payload)`. Imported lazily: the parsers import
# the helpers below.
PARSERS: dict[str, str] = {
    "shopify": "integrations.shopify.parse",
    "woocommerce": "integrations.woocommerce.parse",
    "magento": "integrations.magento.parse",
    "generic": "integrations.generic.parse",
}


def normalize(platform: str, topic: str, payload: Any) -> list[Record]:
    """Parse one delivery's JSON body into records (PayloadError when unusable)."""
    module_path = PARSERS.get(platform)
    if module_path is None:
        raise ValueError(f"unknown platform {platform!r}")
    if not isinstance(payload, dict):
        raise PayloadError(f"payload: expected a JSON object, got {type(payload).__name__}")
    parse: Callable[[str, dict], list[Record]] = importlib.import_module(module_path).parse
    try:
        return parse((topic or "").strip(), payload)
    except PayloadError:
        raise
    except (TypeError, AttributeError, KeyError, IndexError, ValueError, ArithmeticError) as exc:
        raise PayloadError(f"payload: malformed ({type(exc).__name__}: {exc})") from exc


# --- Value helpers ----------------------------------------------------------------------

_GID = re.compile(r"^gid://[^/]+/[^/]+/(\d+)(?:\?.*)?$")
MAX_ID_LENGTH = 64  # Order/Fulfillment/... external_id columns


def ident(value: Any, field: str) -> str:
    """A required platform id as a string (64-bit ints stay exact)."""
    result = opt_ident(value, field)
    if not result:
        raise PayloadError(f"{field}: required id is missing")
    return result


def opt_ident(value: Any, field: str) -> str:
    """An optional platform id as a string; "" when absent (0 counts as absent)."""
    if value is None or isinstance(value, bool):
        if isinstance(value, bool):
            raise PayloadError(f"{field}: not an id: {value!r}")
        return ""
    if isinstance(value, int):
        return "" if value == 0 else str(value)
    if isinstance(value, float):
        if not value.is_integer():
            raise PayloadError(f"{field}: not an id: {value!r}")
        return "" if value == 0 else str(int(value))
    if isinstance(value, str):
        result = value.strip()
        match = _GID.match(result)
        if match:
            result = match.group(1)
        if result in ("", "0"):
            return ""
        if len(result) > MAX_ID_LENGTH:
            raise PayloadError(f"{field}: id longer than {MAX_ID_LENGTH} characters")
        return result
    raise PayloadError(f"{field}: not an id: {type(value).__name__}")


def money(value: Any, field: str, default: Decimal | None = Decimal("0")) -> Decimal:
    """An amount as Decimal. Absent → `default` (or PayloadError when default is None)."""
    if value is None or value == "":
        if default is None:
            raise PayloadError(f"{field}: required amount is missing")
        return default
    if isinstance(value, bool):
        raise PayloadError(f"{field}: not an amount: {value!r}")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise PayloadError(f"{field}: not an amount: {value!r}")
        return Decimal(repr(value))
    if isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise PayloadError(f"{field}: not an amount: {value!r}") from None
        if not result.is_finite():
            raise PayloadError(f"{field}: not an amount: {value!r}")
        return result
    raise PayloadError(f"{field}: not an amount: {type(value).__name__}")


def timestamp(value: Any, field: str, *, required: bool = False) -> datetime | None:
    """An ISO 8601 timestamp as an aware datetime; no offset means UTC."""
    if value is None or value == "":
        if required:
            raise PayloadError(f"{field}: required timestamp is missing")
        return None
    if not isinstance(value, str):
        raise PayloadError(f"{field}: not an ISO 8601 timestamp: {value!r}")
    try:
        result = datetime.fromisoformat(value.strip())
    except ValueError:
        raise PayloadError(f"{field}: not an ISO 8601 timestamp: {value!r}") from None
    if result.tzinfo is None:
        result = result.replace(tzinfo=UTC)
    return result


def epoch_or_iso(value: Any, field: str) -> datetime | None:
    """Unix seconds (int or digit string, as WordPress plugins store dates) or ISO 8601."""
    if isinstance(value, bool):
        raise PayloadError(f"{field}: not a timestamp: {value!r}")
    if isinstance(value, int | float) or (isinstance(value, str) and value.strip().isdigit()):
        seconds = float(value)
        if not 0 < seconds < 32503680000:  # year 3000
            raise PayloadError(f"{field}: not a timestamp: {value!r}")
        return datetime.fromtimestamp(seconds, tz=UTC)
    return timestamp(value, field)


def text(value: Any, max_length: int | None = None) -> str:
    """A display string: None → "", numbers → their text, surrounding blanks removed."""
    if value is None or isinstance(value, dict | list):
        return ""
    result = str(value).strip()
    return result[:max_length] if max_length else result


def quantity(value: Any, field: str) -> int:
    """A non-negative item count ("2", 2, 2.0 → 2)."""
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise PayloadError(f"{field}: not a quantity: {value!r}")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise PayloadError(f"{field}: not a quantity: {value!r}") from None
    if not number.is_finite():
        raise PayloadError(f"{field}: not a quantity: {value!r}")
    return max(int(number), 0)


def obj(value: Any, field: str) -> dict:
    """An optional JSON object: None → {}; anything else that is not an object is an error."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PayloadError(f"{field}: expected an object, got {type(value).__name__}")
    return value


def objs(value: Any, field: str) -> list[dict]:
    """An optional JSON array of objects: None → []."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise PayloadError(f"{field}: expected an array, got {type(value).__name__}")
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise PayloadError(f"{field}[{index}]: expected an object, got {type(item).__name__}")
    return value


ADDRESS_KEYS = (
    "name",
    "first_name",
    "last_name",
    "company",
    "address1",
    "address2",
    "city",
    "province",
    "province_code",
    "zip",
    "country",
    "country_code",
    "phone",
)


def address(**values: Any) -> dict[str, str]:
    """The common address shape (see the module docstring); blank values dropped."""
    result = {key: text(values.get(key), 255) for key in ADDRESS_KEYS}
    if not result["name"]:
        result["name"] = " ".join(p for p in (result["first_name"], result["last_name"]) if p)
    return {key: value for key, value in result.items() if value}


def full_name(*parts: Any) -> str:
    return " ".join(p for p in (text(part) for part in parts) if p)


# --- Carrier statuses (CONTRACTS.md §6) ----------------------------------------------------

CANONICAL_STATUSES = frozenset(
    {
        "label_created",
        "in_transit",
        "out_for_delivery",
        "pickup_ready",
        "attempt_failed",
        "delivered",
        "exception",
        "unknown",
    }
)

# Keys are squashed (lower case, no "_", "-" or blanks) so "InTransit", "in_transit" and
# "IN-TRANSIT" meet.
CARRIER_STATUS: dict[str, dict[str, str]] = {
    "shopify": {
        "labelprinted": "label_created",
        "labelpurchased": "label_created",
        "confirmed": "label_created",
        "intransit": "in_transit",
        "carrierpickedup": "in_transit",
        "outfordelivery": "out_for_delivery",
        "readyforpickup": "pickup_ready",
        "attempteddelivery": "attempt_failed",
        "delivered": "delivered",
        "pickedup": "delivered",
        "failure": "exception",
        "delayed": "exception",
    },
    "aftership": {
        "pending": "label_created",
        "inforeceived": "label_created",
        "intransit": "in_transit",
        "outfordelivery": "out_for_delivery",
        "availableforpickup": "pickup_ready",
        "attemptfail": "attempt_failed",
        "delivered": "delivered",
        "exception": "exception",
        "expired": "exception",
    },
    "easypost": {
        "pretransit": "label_created",
        "unknown": "label_created",
        "intransit": "in_transit",
        "outfordelivery": "out_for_delivery",
        "availableforpickup": "pickup_ready",
        "delivered": "delivered",
        "failure": "exception",
        "returntosender": "exception",
        "error": "exception",
        "cancelled": "exception",
        "canceled": "exception",
    },
    "shippo": {
        "pretransit": "label_created",
        "transit": "in_transit",
        "delivered": "delivered",
        "returned": "exception",
        "failure": "exception",
        "unknown": "label_created",
    },
}


def _squash(value: str) -> str:
    return re.sub(r"[\s_\-]+", "", value).lower()


def canonical_shipment_status(value: Any, vocabulary: str | None = None) -> str | None:
    """The canonical status for a carrier/platform status word, or None when unknown.

    With `vocabulary` ("shopify", "aftership", "easypost", "shippo") only that table is
    used. Without it a canonical value is taken as is, then the tables are tried in the
    order above (so "unknown" stays "unknown", and "pending" reads as AfterShip's Pending).
    """
    word = text(value)
    if not word:
        return None
    if vocabulary is not None:
        return CARRIER_STATUS[vocabulary].get(_squash(word))
    if word.lower() in CANONICAL_STATUSES:
        return word.lower()
    squashed = _squash(word)
    for table in CARRIER_STATUS.values():
        if squashed in table:
            return table[squashed]
    return None
