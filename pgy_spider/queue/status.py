"""The run-wide summary of a run across processes (``scrapy pgy_status``), read from Redis.

It has the summary file's keys for the whole run (counted once per seed by the scripts,
whichever process settled it) and the calls every worker made (each worker's last report,
sent with its heartbeat), plus ``run``, ``state``, ``workers``, ``reader`` and
``redeliveries``. ``balanced`` holds when every seed read is in exactly one place and the
notes pending are exactly the entries left in the run's stream.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from pgy_spider import exitcodes
from pgy_spider.config import QueueConfig, SettingsLike, queue_config
from pgy_spider.errors import ConfigError, UserError
from pgy_spider.queue.client import check_server, redis_errors, sync_client, unavailable
from pgy_spider.queue.keys import RunKeys
from pgy_spider.queue.url import mask_url

if TYPE_CHECKING:
    import redis

READING, RUNNING, FINISHED = "reading", "running", "finished"


class RunNotFound(UserError):
    pass


def _text(value: bytes | None) -> str | None:
    return value.decode() if value is not None else None


def _ms_iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def run_status(client: redis.Redis, config: QueueConfig) -> dict[str, Any]:
    k = RunKeys(config.run)
    pipe = client.pipeline(transaction=True)  # one consistent look
    pipe.hgetall(k.meta)
    pipe.hgetall(k.counts)
    pipe.xlen(k.stream)
    pipe.get(k.reader)
    pipe.pttl(k.reader)
    pipe.hgetall(k.beats)
    pipe.hgetall(k.info)
    pipe.hmget(k.budget, ["spent", "held"])
    pipe.pttl(k.meta)
    pipe.time()
    (meta, counts, queued, holder, lease_ms, beats, infos, (spent, held), meta_ms,
     (secs, micros)) = pipe.execute()  # fmt: skip
    if not meta:
        raise RunNotFound(
            f"run {config.run!r} does not exist at {mask_url(config.url)}: check PGY_RUN "
            "and PGY_QUEUE_URL"
        )
    now_ms = int(secs) * 1000 + int(micros) // 1000
    meta = {key.decode(): value.decode() for key, value in meta.items()}
    numbers = {key.decode(): int(value) for key, value in counts.items()}
    summary = _counts(numbers, int(queued))
    workers = _workers(beats, infos, now_ms, int(config.claim_seconds * 1000))
    done = meta.get("reader_done") == "1"
    state = _state(meta, done, int(queued), workers)
    cursor = meta.get("cursor")
    return {
        "run": config.run,
        "state": state,
        "created": meta.get("created"),
        # A stopped run never expires on its own: how old it is says whether to resume it.
        "age_seconds": _age(meta.get("created"), now_ms),
        # A finished run's keys expire (PGY_RUN_TTL_HOURS); None: they stay until deleted.
        "expires_in_seconds": int(meta_ms) // 1000 if int(meta_ms) >= 0 else None,
        **summary,
        **_calls(workers),
        "finish_reason": (FINISHED if state == FINISHED else state.partition(":")[2] or None),
        "billed": int(spent or 0),  # the run's budget: billable answers, units counted spent
        "budget_held": int(held or 0),  # units reserved by calls on the wire
        "redeliveries": numbers.get("redeliveries", 0),
        "handed_back": numbers.get("handed_back", 0),
        "reader": {
            "holder": _text(holder),
            "lease_seconds_left": max(0, int(lease_ms)) / 1000 if holder else None,
            "done": done,
            "seeds_read": numbers.get("seeds_read", 0),
            "next_seq": int(meta.get("next_seq", 0)),
            "cursor": _cursor(cursor),
        },
        "workers": workers,
    }


def _counts(numbers: Mapping[str, int], queued: int) -> dict[str, Any]:
    rejected = _by_reason(numbers, "rejected:")
    failed = _by_reason(numbers, "failed:")
    seeds_read = numbers.get("seeds_read", 0)
    duplicates = numbers.get("duplicates", 0)
    fresh = numbers.get("skipped_fresh", 0)
    written = numbers.get("notes_written", 0)
    pending = numbers.get("issued", 0) - numbers.get("settled", 0)
    placed = sum(rejected.values()) + duplicates + fresh + written + sum(failed.values())
    return {
        "seeds_read": seeds_read,
        "rejected": sum(rejected.values()),
        "rejected_by_reason": rejected,
        "duplicates": duplicates,
        "skipped_fresh": fresh,
        "notes_written": written,
        "failed": sum(failed.values()),
        "failed_by_reason": failed,
        "pending": pending,
        # Every seed in one place, and the pending ones exactly the entries left queued.
        "balanced": seeds_read == placed + pending and pending == queued,
    }


def _by_reason(numbers: Mapping[str, int], prefix: str) -> dict[str, int]:
    return {k[len(prefix) :]: v for k, v in sorted(numbers.items()) if k.startswith(prefix) and v}


def _workers(
    beats: Mapping[bytes, bytes], infos: Mapping[bytes, bytes], now_ms: int, claim_ms: int
) -> list[dict[str, Any]]:
    found = []
    for name in sorted(set(beats) | set(infos)):
        info = orjson.loads(infos[name]) if name in infos else {}
        beat = int(beats[name]) if name in beats else None
        state = info.get("state", "running")
        alive = state != "closed" and beat is not None and now_ms - beat < claim_ms
        found.append(
            {
                "worker": name.decode(),
                "host": info.get("host"),
                "pid": info.get("pid"),
                "started": info.get("started"),
                "last_seen": _ms_iso(beat) if beat is not None else None,
                "seconds_since_seen": (now_ms - beat) / 1000 if beat is not None else None,
                "state": "alive" if alive else ("closed" if state == "closed" else "silent"),
                "finish_reason": info.get("finish_reason"),
                "reader": bool(info.get("reader")) and alive,
                "holds": info.get("holds", 0),
                "requests_sent": info.get("requests_sent", 0),
                "api_calls": info.get("api_calls", 0),
                "calls_by_code": info.get("calls_by_code", {}),
                "possibly_billed": info.get("possibly_billed", 0),
                "tokens": info.get("tokens", {}),
                "_beat": beat or 0,
            }
        )
    return found


def _calls(workers: list[dict[str, Any]]) -> dict[str, Any]:
    """The calls of the whole run: every worker's last report, added up."""
    by_code: dict[str, int] = {}
    tokens: dict[str, dict[str, Any]] = {}
    for worker in workers:
        for code, count in worker["calls_by_code"].items():
            by_code[code] = by_code.get(code, 0) + int(count)
        for fingerprint, report in worker["tokens"].items():
            seen = tokens.setdefault(fingerprint, {"calls": 0, "retired": None})
            seen["calls"] += int(report.get("calls", 0))
            seen["retired"] = seen["retired"] or report.get("retired")
    return {
        "requests_sent": sum(int(w["requests_sent"]) for w in workers),
        "api_calls": sum(int(w["api_calls"]) for w in workers),
        "calls_by_code": dict(sorted(by_code.items())),
        "possibly_billed": sum(int(w["possibly_billed"]) for w in workers),
        "tokens": dict(sorted(tokens.items())),
    }


def _state(meta: Mapping[str, str], done: bool, queued: int, workers: list[dict[str, Any]]) -> str:
    if meta.get("stopped"):  # a stop of the whole run (set by whoever stops it)
        return f"stopped:{meta['stopped']}"
    if done and queued == 0:
        return FINISHED
    if not workers or any(w["state"] == "alive" for w in workers):
        return RUNNING if done else READING
    last = max(workers, key=lambda w: w["_beat"])
    return f"stopped:{last['finish_reason'] or 'no_worker_alive'}"


def _age(created: str | None, now_ms: int) -> float | None:
    if not created:
        return None
    try:
        then = datetime.fromisoformat(created)
    except ValueError:
        return None
    return round(now_ms / 1000 - then.timestamp(), 3)


def _cursor(text: str | None) -> dict[str, int] | None:
    if not text:
        return None
    file_index, offset, seq = (int(p) for p in text.split(":"))
    return {"source": file_index, "offset": offset, "seq": seq}


def main(settings: SettingsLike) -> int:
    """``scrapy pgy_status``: the JSON on stdout, exit 0; one line on stderr, exit 2."""
    try:
        config = queue_config(settings)
        if config is None:
            raise ConfigError(
                "pgy_status needs the run's queue: -s PGY_QUEUE_URL=redis://... -s PGY_RUN=NAME"
            )
        client = sync_client(config.url)
        try:
            check_server(client, config.url)
            try:
                status = run_status(client, config)
            except redis_errors() as exc:
                raise unavailable(config.url, exc) from None
        finally:
            client.close()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exitcodes.USAGE
    for worker in status["workers"]:
        del worker["_beat"]
    sys.stdout.write(orjson.dumps(status, option=orjson.OPT_INDENT_2).decode() + "\n")
    return exitcodes.OK
