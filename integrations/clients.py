"""Platform API clients: what every client offers, its errors, and the one HTTP function.

Each platform's client lives in `integrations/<platform>/client.py` and is picked by
`client_for(connection)`. Clients speak the platform's REST API and return plain results;
they never touch the database, so tasks decide what a result changes.

Errors are classified once, here: 429 (with its Retry-After), 5xx, timeouts and refused
connections are `TransientError` (retry with backoff); any other 4xx is `PermanentError`
carrying the platform's own message, which the agent sees on the ticket.
"""

from __future__ import annotations

import email.utils
import json
import logging
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from integrations.models import Connection, Order

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 15.0  # seconds, per request
MAX_BODY = 10 * 1024 * 1024
USER_AGENT = "Storedesk/1.0 (+order actions)"
MAX_PAGES = 50  # reconciliation stops here; the next run continues from the newest order


class PlatformError(Exception):
    """The store platform refused or failed; `message` is fit to show an agent."""

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.status = status


class TransientError(PlatformError):
    """Worth retrying later (rate limit, outage, timeout); `retry_after` in seconds if given."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None):
        super().__init__(message, status=status)
        self.retry_after = retry_after


class PermanentError(PlatformError):
    """Retrying the same call will fail the same way (bad input, not allowed, not found)."""


@dataclass(frozen=True)
class LineRefund:
    external_id: str
    quantity: int
    price: Decimal = Decimal("0")
    restock: bool = False


@dataclass(frozen=True)
class RefundResult:
    external_id: str
    amount: Decimal
    currency: str = ""
    processed_at: datetime | None = None
    lines: list[dict] = field(default_factory=list)
    note: str = ""
    reused: bool = False  # found on the platform from an earlier attempt with the same key


@dataclass(frozen=True)
class CancelResult:
    cancelled_at: datetime | None = None
    refund: RefundResult | None = None
    platform_status: str = ""


@dataclass(frozen=True)
class AddressResult:
    address: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    text: str

    def json(self) -> Any:
        if not self.text.strip():
            return None
        try:
            return json.loads(self.text)
        except ValueError as exc:
            raise TransientError(
                f"The store answered something that isn't JSON (HTTP {self.status}).",
                status=self.status,
            ) from exc

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


def parse_retry_after(value: str, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: a number, or an HTTP date."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - (now if now is not None else time.time()), 0.0)


def http_request(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    body: Any = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Response:
    """One HTTP call with a JSON body; every answer comes back as a Response.

    Only network failures raise (as TransientError). This is the single place that knows
    the HTTP library, so moving to httpx means rewriting this function only.
    """
    data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
    all_headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
    if data is not None:
        all_headers["Content-Type"] = "application/json"
    all_headers.update(headers or {})
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise PermanentError(f"The store's API address must be http(s), not {url[:60]!r}.")
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)  # noqa: S310 - scheme checked above
    try:
        with urllib.request.urlopen(request, timeout=timeout) as raw:  # noqa: S310
            return Response(
                raw.status,
                {k.lower(): v for k, v in raw.headers.items()},
                raw.read(MAX_BODY).decode("utf-8", "replace"),
            )
    except urllib.error.HTTPError as exc:
        text = exc.read(MAX_BODY).decode("utf-8", "replace") if exc.fp else ""
        return Response(exc.code, {k.lower(): v for k, v in (exc.headers or {}).items()}, text)
    except TimeoutError as exc:
        raise TransientError(f"The store did not answer within {timeout:g} s.") from exc
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            raise TransientError(f"The store did not answer within {timeout:g} s.") from exc
        raise TransientError(f"Could not reach the store: {reason}.") from exc
    except (ConnectionError, OSError) as exc:
        raise TransientError(f"Could not reach the store: {exc}.") from exc


def _flatten_errors(value: Any) -> list[str]:
    """Shopify's `errors` is a string, a list, or {field: [messages]}."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [m for item in value for m in _flatten_errors(item)]
    if isinstance(value, dict):
        out = []
        for key, item in value.items():
            for message in _flatten_errors(item):
                out.append(message if key in ("base", "error", "message") else f"{key} {message}")
        return out
    return [str(value)]


def platform_message(response: Response) -> str:
    """The platform's own words from an error body (Shopify `errors`, Woo/Magento `message`)."""
    try:
        body = json.loads(response.text) if response.text.strip() else None
    except ValueError:
        body = None
    message = ""
    if isinstance(body, dict):
        if "errors" in body:
            message = "; ".join(_flatten_errors(body["errors"]))
        elif "error" in body and isinstance(body["error"], (str, dict, list)):
            message = "; ".join(_flatten_errors(body["error"]))
        if not message and isinstance(body.get("message"), str):
            message = body["message"]
            # Magento puts placeholders in the message: "%1" (list) or "%name" (dict).
            params = body.get("parameters")
            if isinstance(params, list):
                for index, value in enumerate(params, start=1):
                    message = message.replace(f"%{index}", str(value))
            elif isinstance(params, dict):
                for key, value in params.items():
                    message = message.replace(f"%{key}", str(value))
    if not message:
        snippet = " ".join(response.text.split())[:200]
        message = snippet if snippet and not snippet.startswith("<") else f"HTTP {response.status}"
    return message[:900]


def raise_for_status(response: Response, what: str) -> None:
    """Raise the classified error for a non-2xx response."""
    if 200 <= response.status < 300:
        return
    message = platform_message(response)
    if response.status == 429:
        wait = parse_retry_after(response.header("Retry-After"))
        raise TransientError(f"The store's API is rate-limiting us ({message}).", status=429, retry_after=wait)
    if response.status >= 500 or response.status in (408, 425):
        raise TransientError(
            f"The store failed to {what}: {message} (HTTP {response.status}).",
            status=response.status,
        )
    if response.status in (401, 403):
        raise PermanentError(
            f"The store refused our credentials ({message}). Reconnect the store in Settings.",
            status=response.status,
        )
    raise PermanentError(f"The store refused to {what}: {message}", status=response.status)


class BaseClient:
    """Shared plumbing: credentials, base URL, the HTTP call and error classification."""

    platform = ""

    def __init__(self, connection: Connection, credentials: dict):
        self.connection = connection
        self.credentials = credentials
        self.timeout = float(credentials.get("timeout") or DEFAULT_TIMEOUT)
        self.base = self.base_url().rstrip("/")

    def base_url(self) -> str:  # pragma: no cover - every platform overrides
        raise NotImplementedError

    def auth_headers(self) -> dict[str, str]:  # pragma: no cover - every platform overrides
        raise NotImplementedError

    def url(self, path: str, query: dict | list | None = None) -> str:
        url = f"{self.base}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query, doseq=True)
        return url

    def call(
        self,
        method: str,
        path_or_url: str,
        *,
        what: str,
        body: Any = None,
        query: dict | list | None = None,
        idempotency_key: str = "",
    ) -> Response:
        url = path_or_url if path_or_url.startswith(("http://", "https://")) else self.url(path_or_url, query)
        headers = self.auth_headers()
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        started = time.monotonic()
        response = http_request(method, url, headers=headers, body=body, timeout=self.timeout)
        logger.info(
            "%s %s %s -> %s in %.0f ms",
            self.platform,
            method,
            urllib.parse.urlsplit(url).path,
            response.status,
            (time.monotonic() - started) * 1000,
        )
        raise_for_status(response, what)
        return response

    # --- the interface every platform client implements --------------------------------

    def refund(
        self,
        order: Order,
        amount: Decimal,
        lines: list[LineRefund],
        reason: str,
        idempotency_key: str,
        *,
        notify: bool = False,
    ) -> RefundResult:  # pragma: no cover - interface
        raise NotImplementedError

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
    ) -> CancelResult:  # pragma: no cover - interface
        raise NotImplementedError

    def update_shipping_address(
        self, order: Order, address: dict, idempotency_key: str
    ) -> AddressResult:  # pragma: no cover
        raise NotImplementedError

    def orders_updated_since(self, since: datetime) -> list[dict]:  # pragma: no cover - interface
        raise NotImplementedError


def refund_marker(idempotency_key: str) -> str:
    """The tag put in a refund's note so a retry can find the refund an earlier try made."""
    return f"[storedesk:{idempotency_key}]"


_MARKER = re.compile(r"\s*\[storedesk:[^\]]*\]")


def strip_marker(note: str) -> str:
    return _MARKER.sub("", note).strip()


def decimal(value: Any) -> Decimal:
    try:
        return Decimal(str(value if value not in (None, "") else "0")).copy_abs()
    except ArithmeticError:
        return Decimal("0")


def parse_time(value: Any) -> datetime | None:
    """An aware datetime from ISO 8601 (with Z or offset); naive values are taken as UTC."""
    from datetime import UTC

    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def client_for(connection: Connection) -> BaseClient:
    """The API client for a connection; PermanentError when it can't have one."""
    from integrations.crypto import InvalidToken, decrypt_json
    from integrations.magento.client import MagentoClient
    from integrations.shopify.client import ShopifyClient
    from integrations.woocommerce.client import WooCommerceClient

    kinds: dict[str, type[BaseClient]] = {
        "shopify": ShopifyClient,
        "woocommerce": WooCommerceClient,
        "magento": MagentoClient,
    }
    cls = kinds.get(connection.platform)
    if cls is None:
        raise PermanentError("This store is connected with the generic format, which has no API for order actions.")
    if not connection.is_active:
        raise PermanentError("The store connection is disconnected; reconnect it in Settings.")
    try:
        credentials = decrypt_json(connection.credentials_encrypted)
    except (InvalidToken, ValueError) as exc:
        raise PermanentError("The stored API credentials can't be read; reconnect the store in Settings.") from exc
    return cls(connection, credentials)
