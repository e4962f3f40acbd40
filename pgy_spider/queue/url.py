"""``PGY_QUEUE_URL``: checked, and shown only with its password masked.

Plain module (no redis import): the configuration checks the URL before anything connects,
and every message that names the queue names it through :func:`mask_url`.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote, urlsplit

from pgy_spider.errors import ConfigError
from pgy_spider.logmask import SecretMaskingFilter

SCHEMES = ("redis", "rediss")
MASK = "***"
# A run name is part of every key (inside a hash tag) and of file names (%(run)s).
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def mask_url(url: str) -> str:
    """The URL with its password (if any) replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{user}:{MASK}@{host}").geturl()


def url_password(url: str) -> str | None:
    """The password of the URL, raw and URL-decoded (what must never be written anywhere)."""
    password = urlsplit(url).password
    return unquote(password) if password else None


def check_url(url: str) -> None:
    """Raise ConfigError unless ``url`` is a usable ``redis://`` or ``rediss://`` URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ConfigError(
            f"PGY_QUEUE_URL {mask_url_safely(url)!r} is not a valid URL: "
            "use redis://[user:password@]host:port/db or rediss://..."
        ) from None
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise ConfigError(
            f"PGY_QUEUE_URL {mask_url_safely(url)!r} is not a redis:// or rediss:// URL: "
            "use redis://[user:password@]host:port/db"
        )
    path = parts.path.strip("/")
    if path and not path.isdigit():
        raise ConfigError(
            f"PGY_QUEUE_URL {mask_url(url)!r}: the database {path!r} is not a number: "
            "end the URL with /0 (or another database number)"
        )
    del port


def mask_url_safely(url: str) -> str:
    """:func:`mask_url`, or everything after a scheme's ``//`` masked if the URL cannot be
    parsed (it may still hold a password)."""
    try:
        return mask_url(url)
    except ValueError:
        scheme, sep, _rest = url.partition("://")
        return f"{scheme}{sep}{MASK}" if sep else MASK


def check_run_name(run: str) -> None:
    if not RUN_NAME.fullmatch(run):
        raise ConfigError(
            f"PGY_RUN {run!r} is not a valid run name: use up to 100 letters, digits, "
            "'.', '_' or '-', starting with a letter or digit (e.g. daily-12-01)"
        )


class PasswordMaskingFilter(logging.Filter):
    """Backstop: the queue's password masked in every log record (by design none holds it)."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        super().__init__()
        self._mask = SecretMaskingFilter(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        return self._mask.filter(record)


def install_password_mask(secrets: tuple[str, ...]) -> None:
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, PasswordMaskingFilter) for f in handler.filters):
            handler.addFilter(PasswordMaskingFilter(secrets))
