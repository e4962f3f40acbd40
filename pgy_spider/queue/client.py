"""redis-py, the one module that imports it (only queue-mode runs pay for the import).

Connections use RESP2 (the same replies on every Redis >= 7.0), bytes replies, and
redis-py's retries of a call whose connection broke: every script is safe to run twice
(:mod:`.scripts`). Errors come back as :class:`QueueUnavailable` with the URL masked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pgy_spider.api import mask_secrets
from pgy_spider.errors import ConfigError
from pgy_spider.queue.errors import QueueUnavailable
from pgy_spider.queue.url import mask_url, url_password

if TYPE_CHECKING:
    import redis
    import redis.asyncio

MIN_VERSION = (7, 0)
CONNECT_TIMEOUT = 5.0
# Longest a reply may take: above the longest block of a stream read (see member.py).
SOCKET_TIMEOUT = 30.0
INSTALL_HINT = "PGY_QUEUE_URL needs the redis package: pip install 'pgy-spider[redis]'"


def _options() -> dict[str, Any]:
    from redis.backoff import ExponentialBackoff
    from redis.retry import Retry

    return {
        "protocol": 2,
        "decode_responses": False,
        "socket_connect_timeout": CONNECT_TIMEOUT,
        "socket_timeout": SOCKET_TIMEOUT,
        "retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), 3),
    }


def async_client(url: str) -> redis.asyncio.Redis:
    try:
        import redis.asyncio
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return redis.asyncio.Redis.from_url(url, **_options())


def sync_client(url: str) -> redis.Redis:
    try:
        import redis
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return redis.Redis.from_url(url, **_options())


def redis_errors() -> tuple[type[BaseException], ...]:
    """What a failed call raises (to catch without importing redis elsewhere)."""
    import redis

    return (redis.RedisError, OSError)


def connection_errors() -> tuple[type[BaseException], ...]:
    """What a lost or restarting Redis raises (a connection refused or broken, a timeout, a
    server still loading its data): worth waiting for, unlike a wrong command."""
    import redis

    return (redis.ConnectionError, redis.TimeoutError, OSError)


def failure_text(url: str, exc: BaseException) -> str:
    """What went wrong, with the URL's password masked should a message quote it."""
    why = str(exc).strip() or type(exc).__name__
    password = url_password(url)
    return mask_secrets(why, (password,)) if password else why


def unavailable(url: str, exc: BaseException) -> QueueUnavailable:
    """One line naming the queue (masked) and what went wrong."""
    why = str(exc).strip() or type(exc).__name__
    password = url_password(url)
    if password:  # no redis-py message is known to quote it: a backstop
        why = mask_secrets(why, (password,))
    return QueueUnavailable(
        f"cannot use the queue at {mask_url(url)} (PGY_QUEUE_URL): {why}; check that Redis "
        "is running and the URL (host, port, password, database) is right"
    )


def check_server(client: redis.Redis, url: str) -> None:
    """Reachable, logged in, and Redis >= 7.0 (stream commands this project relies on)."""
    try:
        client.ping()
        version = str(client.info("server").get("redis_version", "0"))
    except redis_errors() as exc:
        raise unavailable(url, exc) from None
    numbers = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
    if numbers < MIN_VERSION:
        raise QueueUnavailable(
            f"the queue at {mask_url(url)} runs Redis {version}: runs across hosts need "
            "Redis 7.0 or newer"
        )
