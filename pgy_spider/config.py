"""The run's configuration: one object, built once from the settings and the environment.

Plain module (it reads Scrapy settings through their ``get`` method only). Every component
and the preflight checks take their values from a :class:`PgyConfig`, so each setting is
read, converted, checked and given its environment fallback in exactly one place, and a
wrong value is a :class:`~pgy_spider.errors.ConfigError` with one line saying how to fix it.
Defaults live in :mod:`pgy_spider.default_settings`; a setting that is not set at all (as in
another project's settings) falls back to them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

from pgy_spider import api, default_settings
from pgy_spider.errors import ConfigError
from pgy_spider.queue.url import check_run_name, check_url, url_password
from pgy_spider.tokens import load_tokens

_DEFAULTS = default_settings.defaults()
# PGY_PROGRESS: a live display on a terminal and progress lines elsewhere (auto), the
# display wherever stderr is a terminal (bar), only the lines (log), or nothing (off).
PROGRESS_MODES = ("auto", "bar", "log", "off")
_T = TypeVar("_T")


class SettingsLike(Protocol):
    def get(self, name: str, default: Any = None) -> Any: ...


@dataclass(frozen=True, slots=True)
class MongoConfig:
    uri: str = field(repr=False)  # may hold a password
    database: str
    collection: str
    refresh_hours: float
    batch_size: int
    flush_seconds: float
    retries: int
    retry_backoff: float
    spill_path: str  # a template: %(name)s, %(time)s, %(job)s

    @property
    def refresh_enabled(self) -> bool:
        """Whether notes fetched recently are skipped (``PGY_REFRESH_HOURS`` > 0)."""
        return self.refresh_hours > 0


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """A run across processes (``PGY_QUEUE_URL`` set): its Redis and its name."""

    url: str = field(repr=False)  # may hold a password
    run: str
    wait_seconds: float
    claim_seconds: float
    max_unsettled: int
    outage_seconds: float  # how long a lost Redis is waited for before the process stops
    ttl_hours: float  # a finished run's keys live this long; 0 = until deleted

    @property
    def secrets(self) -> tuple[str, ...]:
        password = url_password(self.url)
        return (password,) if password else ()


@dataclass(frozen=True, slots=True)
class PgyConfig:
    tokens: tuple[str, ...] = field(repr=False)
    base_url: str
    retry_times: int
    retry_backoff: float
    retry_backoff_max: float
    rate_limit_delay: float
    rate_limit_max_delay: float
    rate_limit_retries: int
    max_billed_calls: int  # 0 = no cap
    failed_path: str  # templates: %(name)s, %(time)s, %(job)s
    failed_path_given: bool  # set by the project (another project's failed notes go there)
    summary_path: str
    feed_uri: str
    id_time_check: bool
    progress: str  # one of PROGRESS_MODES
    progress_interval: float
    checkpoint_seconds: float
    inner_download_handler: str
    gc_threshold: int  # 0 = Python's own
    concurrent_requests: int
    jobdir: str | None
    mongo: MongoConfig | None
    queue: QueueConfig | None = None

    @classmethod
    def from_settings(
        cls, settings: SettingsLike, environ: Mapping[str, str] = os.environ
    ) -> PgyConfig:
        """Read and check every setting; raise ConfigError naming the first wrong one."""
        read = _Reader(settings)
        region = read.text("PGY_REGION") or environ.get("PGY_REGION")
        return cls(
            tokens=tuple(load_tokens(read.text("PGY_TOKEN"), read.text("PGY_TOKEN_FILE"), environ)),
            base_url=api.resolve_base_url(region, read.text("PGY_BASE_URL")),
            retry_times=read.number("PGY_RETRY_TIMES", int),
            retry_backoff=read.number("PGY_RETRY_BACKOFF", float),
            retry_backoff_max=read.number("PGY_RETRY_BACKOFF_MAX", float),
            rate_limit_delay=read.number("PGY_RATE_LIMIT_DELAY", float),
            rate_limit_max_delay=read.number("PGY_RATE_LIMIT_MAX_DELAY", float),
            rate_limit_retries=read.number("PGY_RATE_LIMIT_RETRIES", int),
            max_billed_calls=read.number("PGY_MAX_BILLED_CALLS", int),
            failed_path=read.path("PGY_FAILED_PATH"),
            failed_path_given=settings.get("PGY_FAILED_PATH") is not None,
            summary_path=read.path("PGY_SUMMARY_PATH"),
            feed_uri=read.path("PGY_FEED_URI"),
            id_time_check=read.flag("PGY_ID_TIME_CHECK"),
            progress=read.choice("PGY_PROGRESS", PROGRESS_MODES),
            progress_interval=read.number("PGY_PROGRESS_INTERVAL", float),
            checkpoint_seconds=read.number("PGY_CHECKPOINT_SECONDS", float, minimum=0.01),
            inner_download_handler=read.text("PGY_INNER_DOWNLOAD_HANDLER")
            or str(_DEFAULTS["PGY_INNER_DOWNLOAD_HANDLER"]),
            gc_threshold=read.number("PGY_GC_THRESHOLD", int),
            concurrent_requests=read.number("CONCURRENT_REQUESTS", int, minimum=1, default=16),
            jobdir=read.text("JOBDIR"),
            mongo=_mongo_config(read, environ),
            queue=_queue_config(read, environ),
        )

    @property
    def secrets(self) -> tuple[str, ...]:
        """What must never be written anywhere: the tokens."""
        return self.tokens

    @property
    def plain_http_remote(self) -> bool:
        """The token would travel unencrypted to a host that is not this machine."""
        parts = urlsplit(self.base_url)
        host = parts.hostname or ""
        loopback = host in ("localhost", "::1") or host.startswith("127.")
        return parts.scheme == "http" and not loopback


def mongo_config(
    settings: SettingsLike, environ: Mapping[str, str] = os.environ
) -> MongoConfig | None:
    """MongoDB's part of the configuration alone (tools that need no token use it)."""
    return _mongo_config(_Reader(settings), environ)


def queue_config(
    settings: SettingsLike, environ: Mapping[str, str] = os.environ
) -> QueueConfig | None:
    """The queue's part of the configuration alone (``pgy_status`` needs no token)."""
    return _queue_config(_Reader(settings), environ)


def _queue_config(read: _Reader, environ: Mapping[str, str]) -> QueueConfig | None:
    url = read.text("PGY_QUEUE_URL") or environ.get("PGY_QUEUE_URL", "").strip()
    if not url:
        return None
    check_url(url)
    run = read.text("PGY_RUN") or environ.get("PGY_RUN", "").strip()
    if not run:
        raise ConfigError(
            "PGY_QUEUE_URL is set but PGY_RUN is not: name the run, the same in every "
            "process of it, e.g. -s PGY_RUN=daily-12-01"
        )
    check_run_name(run)
    if read.text("JOBDIR"):
        raise ConfigError(
            "JOBDIR cannot be used with PGY_QUEUE_URL: the run's state lives in Redis; "
            "drop -s JOBDIR (the same command resumes the run)"
        )
    return QueueConfig(
        url=url,
        run=run,
        wait_seconds=read.number("PGY_QUEUE_WAIT_SECONDS", float),
        claim_seconds=read.number("PGY_QUEUE_CLAIM_SECONDS", float, minimum=0.1),
        max_unsettled=read.number("PGY_QUEUE_MAX_UNSETTLED", int, minimum=1),
        outage_seconds=read.number("PGY_QUEUE_OUTAGE_SECONDS", float),
        ttl_hours=read.number("PGY_RUN_TTL_HOURS", float),
    )


def _mongo_config(read: _Reader, environ: Mapping[str, str]) -> MongoConfig | None:
    uri = read.text("MONGO_URI") or environ.get("MONGO_URI")
    if not uri:
        return None
    return MongoConfig(
        uri=uri,
        database=read.text("MONGO_DATABASE") or str(_DEFAULTS["MONGO_DATABASE"]),
        collection=read.text("MONGO_COLLECTION") or str(_DEFAULTS["MONGO_COLLECTION"]),
        refresh_hours=read.number("PGY_REFRESH_HOURS", float),
        batch_size=read.number("PGY_MONGO_BATCH_SIZE", int, minimum=1),
        flush_seconds=read.number("PGY_MONGO_FLUSH_SECONDS", float, minimum=1e-9),
        retries=read.number("PGY_MONGO_RETRIES", int),
        retry_backoff=read.number("PGY_MONGO_RETRY_BACKOFF", float),
        spill_path=read.path("PGY_MONGO_SPILL_PATH"),
    )


class _Reader:
    """Typed reads of settings with the project's defaults and one-line errors."""

    def __init__(self, settings: SettingsLike) -> None:
        self._settings = settings

    def _raw(self, name: str, default: Any = None) -> Any:
        value = self._settings.get(name)
        if value is None:
            return _DEFAULTS.get(name, default)
        return value

    def text(self, name: str) -> str | None:
        value = self._raw(name)
        if value is None:
            return None
        text = str(value).strip()
        return text or None

    def path(self, name: str) -> str:
        value = self.text(name)
        if value is None:
            raise ConfigError(f"{name} is empty: give a file path")
        return value

    def flag(self, name: str) -> bool:
        value = self._raw(name)
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{name}={value!r} is not a boolean: use True or False")

    def choice(self, name: str, choices: tuple[str, ...]) -> str:
        value = self._raw(name)
        text = str(value).strip().lower()
        if text not in choices:
            raise ConfigError(f"{name}={value!r} is not valid: use one of {', '.join(choices)}")
        return text

    def number(
        self,
        name: str,
        kind: Callable[[Any], _T],
        *,
        minimum: float = 0,
        default: Any = None,
    ) -> _T:
        value = self._raw(name, default)
        what = "an integer" if kind is int else "a number"
        try:
            number = kind(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}={value!r} is not {what}: give {what}") from None
        if number < minimum:  # type: ignore[operator]
            bound = (
                "0 or more"
                if minimum == 0
                else "greater than 0"
                if minimum in (1, 1e-9)
                else f"at least {minimum}"
            )
            raise ConfigError(f"{name}={value!r} must be {bound}")
        return number
