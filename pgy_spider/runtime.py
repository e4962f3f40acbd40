"""The run's shared state: configuration, tokens, the rate-limit pause, the budget, the
note stores, and the stop.

Components that must share state (the download handler and the API middleware share the
token vault; the spider and the accounting ask the stores) reach it through
:func:`runtime_of` instead of importing each other. There is one runtime per crawler,
made by whichever component asks first (Scrapy builds components in an order they must
not depend on). This is also the one place that chooses the implementation of each
shared interface (:mod:`pgy_spider.vault`, :mod:`pgy_spider.pause`,
:mod:`pgy_spider.budget`): the local, one-process ones, or with ``PGY_QUEUE_URL`` the run's
(:mod:`pgy_spider.queue.pause`, :mod:`pgy_spider.queue.tokens`,
:mod:`pgy_spider.queue.budget`), shared in Redis by every process of the run. Then
:attr:`PgyRuntime.queue` is the process's membership (:mod:`pgy_spider.queue.member`), which
the spider's seed source, the accounting and those controls use.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from scrapy import signals
from scrapy.utils.defer import deferred_from_coro

from pgy_spider import reasons
from pgy_spider.budget import Budget, LocalBudget, job_budget
from pgy_spider.config import PgyConfig
from pgy_spider.errors import ConfigError
from pgy_spider.failedlog import FailedNotes
from pgy_spider.flight import InFlight
from pgy_spider.paths import RunPaths
from pgy_spider.pause import LocalRatePause, RatePause
from pgy_spider.storage import FreshnessSource, NoteStore, StorageOutcome
from pgy_spider.vault import LocalTokenVault, TokenVault

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from twisted.python.failure import Failure

    from pgy_spider.queue.member import QueueMember

logger = logging.getLogger(__name__)


class PgyRuntime:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        # A wrong configuration never raises here: that would end the crawl with a
        # traceback. Our own `crawl` command refuses it earlier (preflight); anywhere
        # else the crawl closes at once with the reason and one line (see spider_opened).
        self.problem: str | None = None
        self.config: PgyConfig | None
        try:
            self.config = PgyConfig.from_settings(crawler.settings)
        except ConfigError as exc:
            self.config, self.problem = None, str(exc)
        config = self.config
        self.in_flight = InFlight(config.concurrent_requests if config else 1)
        # This process in a run across processes (PGY_QUEUE_URL), else None: one process.
        # Made first: a vault, pause or budget shared by the run would use its connection.
        self.queue: QueueMember | None = None
        if config is not None and config.queue is not None:
            from pgy_spider.queue.member import QueueMember

            self.queue = QueueMember(
                config.queue, crawler.stats, self.in_flight, lambda: self.vault.report(), self.stop
            )
        self.vault: TokenVault = LocalTokenVault(config.tokens if config else ())
        self.pause: RatePause = LocalRatePause(
            config.rate_limit_delay if config else 0.0,
            config.rate_limit_max_delay if config else 0.0,
        )
        self.budget: Budget = LocalBudget(0)
        if config is not None and self.queue is not None:
            self._share_controls(config, self.queue)
        elif config is not None:
            try:
                self.budget = job_budget(config)  # PGY_MAX_BILLED_CALLS, durable with JOBDIR
            except ConfigError as exc:  # an unreadable budget state: as a wrong setting
                self.config, self.problem = None, str(exc)
        self.stores: list[NoteStore] = []
        self.stop_reason: str | None = None
        self._closing: Any = None  # the Deferred of a stop, kept until it fires
        self.started_at = datetime.now(UTC)
        self._paths: RunPaths | None = None
        # (path, why) of the first output file that could not be written.
        self.output_error: tuple[str, str] | None = None
        # A resumable job with no local feed that survives a kill: the note store is what
        # tells a resumed job which notes were written (set by the run's accounting).
        self.store_is_truth = False
        self._stored_listener: Callable[[list[str], list[str]], None] | None = None
        self.failed_notes = FailedNotes(
            (lambda: self.paths.failed) if config and config.failed_path_given else None,
            crawler.stats,
            self.output_failed,
        )
        if self.vault.secrets:
            self.vault.install_log_mask()
        if config is not None and config.queue is not None and config.queue.secrets:
            from pgy_spider.queue.url import install_password_mask

            install_password_mask(config.queue.secrets)
        crawler.signals.connect(self._spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.failed_notes.close, signal=signals.spider_closed)

    def _share_controls(self, config: PgyConfig, member: QueueMember) -> None:
        """A run across processes: the pause, the retired tokens and the budget are the
        run's, in Redis, on the member's connection."""
        from pgy_spider.queue.budget import RedisBudget
        from pgy_spider.queue.pause import RedisRatePause
        from pgy_spider.queue.tokens import RedisTokenVault, token_hint

        self.vault = RedisTokenVault(config.tokens, member)
        self.pause = RedisRatePause(config.rate_limit_delay, config.rate_limit_max_delay, member)
        self.budget = RedisBudget(config.max_billed_calls, member)

        def hint(reason: str) -> str:
            if reason == reasons.BUDGET_EXHAUSTED:
                return (
                    f"its budget is spent ({self.budget.spent} billable answers); run the same "
                    "commands with a larger PGY_MAX_BILLED_CALLS to go on"
                )
            return f"no worker has a usable token left; {token_hint()}"

        member.stop_hint = hint

    def _spider_opened(self) -> None:
        if self.problem is not None:
            self.stop(reasons.CONFIG_ERROR, f"pgy-spider is not configured: {self.problem}")
        elif self.stop_reason is not None and self._closing is None:
            self._close()  # a stop asked for before the engine existed
        elif self.config is not None and self.config.plain_http_remote:
            logger.warning(
                "API base %s is plain HTTP: the token travels unencrypted "
                "(the cn region has no HTTPS)",
                self.config.base_url,
            )

    @property
    def paths(self) -> RunPaths:
        """The run's output paths, computed once (the spider must exist: Scrapyd's job id
        is its ``_job`` argument)."""
        if self._paths is None:
            assert self.config is not None
            spider = self.crawler.spider
            name = spider.name if spider is not None else self.crawler.spidercls.name
            job = str(getattr(spider, "_job", "") or "")
            worker = self.queue.worker if self.queue is not None else ""
            self._paths = RunPaths.compute(self.config, name, self.started_at, job, worker)
        return self._paths

    # -- stopping -------------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        """No further API call may be sent: a stop was asked for, or Scrapy is stopping."""
        return self.stop_reason is not None or not self.crawler.crawling

    def stop(self, reason: str, message: str | None = None) -> None:
        """Close the crawl gracefully with a named reason; the first stop wins."""
        if self.stop_reason is not None:
            return
        self.stop_reason = reason
        if message:
            logger.error("%s", message)
        try:
            self.crawler.engine  # noqa: B018
        except RuntimeError:
            return  # not built yet: closed as soon as the spider opens
        self._close()

    def _close(self) -> None:
        reason = self.stop_reason
        assert reason is not None
        closing = deferred_from_coro(self.crawler.engine.close_spider_async(reason=reason))
        closing.addErrback(self._stop_failed, reason)
        self._closing = closing

    @staticmethod
    def _stop_failed(failure: Failure, reason: str) -> None:
        logger.error("Closing the crawl (%s) failed: %s", reason, failure.getErrorMessage())

    def output_failed(self, path: str, exc: OSError) -> None:
        """An output file cannot be written (a full disk): stop, and never count as done
        what did not reach it."""
        if self.output_error is not None:
            return
        why = exc.strerror or str(exc)
        self.output_error = (path, why)
        resumable = self.config is not None and (self.config.jobdir or self.config.queue)
        resume = " (it resumes)" if resumable else ""
        self.stop(
            reasons.OUTPUT_ERROR,
            f"cannot write {path}: {why}; stopping the run: free disk space or choose "
            f"another path, then run the same command again{resume}",
        )

    # -- note stores ----------------------------------------------------------------------

    def register_store(self, store: NoteStore) -> None:
        self.stores.append(store)

    def on_notes_stored(self, listener: Callable[[list[str], list[str]], None]) -> None:
        """``listener(stored, lost)`` is told of every batch a note store wrote."""
        self._stored_listener = listener

    def notes_stored(self, stored: list[str], lost: list[str]) -> None:
        """A note store wrote a batch: ``stored`` are durable, ``lost`` are not."""
        if self._stored_listener is not None:
            self._stored_listener(stored, lost)

    def freshness(self) -> FreshnessSource | None:
        """The store that knows which notes need no new fetch, if one does."""
        for store in self.stores:
            if isinstance(store, FreshnessSource) and store.refresh_enabled:
                return store
        return None

    def storage_outcomes(self) -> list[StorageOutcome]:
        return [store.outcome() for store in self.stores]


_runtimes: WeakKeyDictionary[Crawler, PgyRuntime] = WeakKeyDictionary()


def runtime_of(crawler: Crawler) -> PgyRuntime:
    """The crawler's runtime, made on first use."""
    found = _runtimes.get(crawler)
    if found is None:
        found = _runtimes[crawler] = PgyRuntime(crawler)
    return found


def feed_uri_params(params: dict[str, Any], spider: Spider) -> dict[str, Any]:
    """``FEED_URI_PARAMS``: the same ``%(job)s`` and ``%(time)s`` in feed URIs as in the
    failed and summary paths."""
    runtime = runtime_of(spider.crawler)
    if runtime.config is not None:
        params.update(runtime.paths.params)
    else:
        job = params.get("_job") or params.get("job") or ""
        params.setdefault("job", job)
        params.setdefault("_job", job)
    return params
