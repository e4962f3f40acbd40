"""What we know about Just One API's PGY note-detail endpoint, with no Scrapy in it.

URL building, the business-code policy, the response envelope and the token
helpers live here so they can be unit-tested without a crawler; middlewares and
pipelines only decide *when* to apply them.
"""

from __future__ import annotations

import enum
import functools
import hashlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson

from pgy_spider import reasons
from pgy_spider.errors import ConfigError

ENDPOINT_PATH = "/api/xiaohongshu-pgy/api/solar/note/noteId/detail/v1"

REGIONS: dict[str, str] = {
    "global": "https://api.justoneapi.com",
    "cn": "http://47.117.133.51:30015",
}
DEFAULT_REGION = "global"


def resolve_base_url(region: str | None, base_url: str | None) -> str:
    """The base URL to call: ``PGY_BASE_URL`` wins, else the region's."""
    region = (region or DEFAULT_REGION).strip().lower()
    if region not in REGIONS:
        raise ConfigError(
            f"PGY_REGION={region!r} is not a known region: use 'global' or 'cn' "
            "(or set PGY_BASE_URL to a full base URL)"
        )
    if base_url:
        base_url = base_url.strip().rstrip("/")
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"PGY_BASE_URL={base_url!r} is not an http(s) URL: give e.g. https://api.example.com"
            )
        return base_url
    return REGIONS[region]


def note_url(base_url: str, note_id: str) -> str:
    """The request URL *without* the token: this is what Scrapy sees, logs and fingerprints."""
    return f"{base_url}{ENDPOINT_PATH}?noteId={note_id}"


def with_token(url: str, token: str) -> str:
    """Add the token as the API wants it; only ever called at the moment of sending."""
    return f"{url}&token={_quoted(token)}"


@functools.lru_cache(maxsize=64)
def _quoted(token: str) -> str:
    # A run has a handful of tokens: quote each once, not once per call.
    return quote(token, safe="")


# -- tokens ------------------------------------------------------------------


def parse_tokens(value: str | None) -> list[str]:
    """A comma-separated token list, blanks and repeats dropped, order kept."""
    if not value:
        return []
    seen: dict[str, None] = {}
    for part in value.split(","):
        token = part.strip()
        if token:
            seen.setdefault(token, None)
    return list(seen)


def token_fingerprint(token: str) -> str:
    """A short, non-secret name for a token (for summaries and logs)."""
    return "tok-" + hashlib.sha256(token.encode()).hexdigest()[:8]


def mask_secrets(text: str, secrets: tuple[str, ...]) -> str:
    """Replace every secret (raw and URL-quoted) in ``text`` with ``***``."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "***")
        quoted = quote(secret, safe="")
        if quoted != secret and quoted in text:
            text = text.replace(quoted, "***")
    return text


# -- business codes -------------------------------------------------------------


class Action(enum.Enum):
    """What a business code asks the client to do."""

    SUCCESS = "success"  # code 0: a note
    RETRY = "retry"  # transient: retry with backoff, then fail
    RATE_LIMITED = "rate_limited"  # slow the whole crawl down, retry later
    NOT_FOUND = "not_found"  # 201: the note does not exist (billed); fail at once
    FAIL = "fail"  # fail this note at once, carry on
    TOKEN_FATAL = "token_fatal"  # the token cannot make calls: retire it


RETRY_CODES = frozenset({301, 500})
RATE_LIMIT_CODE = 302
NOT_FOUND_CODE = 201
BAD_REQUEST_CODE = 400
SUCCESS_CODE = 0

# Codes that mean "this token can make no more calls now": the close reason names the cause.
FATAL_REASONS: dict[int, str] = {
    100: reasons.INVALID_TOKEN,
    303: reasons.QUOTA_EXCEEDED,
    600: reasons.PERMISSION_DENIED,
    601: reasons.INSUFFICIENT_BALANCE,
    602: reasons.SPENDING_CAP,
}

# Only these are billed; everything else is free (a timeout may be billed upstream).
BILLED_CODES = frozenset({SUCCESS_CODE, NOT_FOUND_CODE})


def action_for(code: int) -> Action:
    if code == SUCCESS_CODE:
        return Action.SUCCESS
    if code in RETRY_CODES:
        return Action.RETRY
    if code == RATE_LIMIT_CODE:
        return Action.RATE_LIMITED
    if code == NOT_FOUND_CODE:
        return Action.NOT_FOUND
    if code in FATAL_REASONS:
        return Action.TOKEN_FATAL
    return Action.FAIL


def failure_reason(code: int | None) -> str:
    """The failed-file reason for a note given up on with this code (None: no answer)."""
    if code is None:
        return reasons.TRANSPORT_ERROR
    if code == NOT_FOUND_CODE:
        return reasons.NOT_FOUND
    if code == BAD_REQUEST_CODE:
        return reasons.BAD_REQUEST
    if code in RETRY_CODES:
        return reasons.RETRIES_EXHAUSTED
    if code == RATE_LIMIT_CODE:
        return reasons.RATE_LIMITED
    return reasons.API_ERROR


# -- the response envelope ---------------------------------------------------------


@dataclass(slots=True)
class Envelope:
    code: int
    message: str | None
    data: Any
    request_id: str | None


def parse_envelope(body: bytes) -> Envelope | None:
    """The API's JSON envelope, or None when the body is not one (HTML error page, truncation)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    code = doc.get("code")
    if isinstance(code, bool) or not isinstance(code, int):
        if isinstance(code, str) and code.lstrip("-").isdigit():
            code = int(code)
        else:
            return None
    message = doc.get("message")
    request_id = doc.get("requestId")
    return Envelope(
        code=code,
        message=message if isinstance(message, str) else None,
        data=doc.get("data"),
        request_id=str(request_id) if request_id is not None else None,
    )


def note_data(envelope: Envelope) -> dict[str, Any] | None:
    """The note object of a success answer, or None when it carries none (code 0 with
    ``data`` missing, null or empty)."""
    data = envelope.data
    if not isinstance(data, dict) or not data:
        return None
    return data
