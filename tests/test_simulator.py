"""The API simulator over real loopback HTTP: success shape, business codes, faults, admin routes.

Each test gets a freshly reset simulator through the ``sim`` fixture (tests/support/simulator.py).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from pgy_spider import simulator as simulator_module
from tests.support.ids import make_note_id
from tests.support.sample import load_sample_data
from tests.support.simulator import REPO_ROOT, SimulatorClient

SAMPLE_DATA: dict[str, Any] = load_sample_data()

NOTE = make_note_id(1)
OTHER = make_note_id(2)


def call(
    sim: SimulatorClient, note_id: str | None = NOTE, token: str | None = "test-token"
) -> tuple[int, dict[str, Any]]:
    """One API call; returns (HTTP status, parsed JSON envelope)."""
    params = {k: v for k, v in (("token", token), ("noteId", note_id)) if v is not None}
    with requests.get(sim.api_url, params=params, timeout=10) as response:
        return response.status_code, response.json()


def code_of(
    sim: SimulatorClient, note_id: str | None = NOTE, token: str | None = "test-token"
) -> int:
    code: int = call(sim, note_id, token)[1]["code"]
    return code


def raw(sim: SimulatorClient, note_id: str = NOTE) -> requests.Response:
    with requests.get(
        sim.api_url, params={"token": "test-token", "noteId": note_id}, timeout=10
    ) as response:
        return response


def assert_same_shape(sample: Any, actual: Any, path: str = "data") -> None:
    """Same keys at every level and same JSON types wherever both sides are non-null."""
    if sample is None or actual is None:
        return
    if isinstance(sample, dict):
        assert isinstance(actual, dict), path
        assert list(actual) == list(sample), path
        for key, value in sample.items():
            assert_same_shape(value, actual[key], f"{path}.{key}")
    elif isinstance(sample, list):
        assert isinstance(actual, list), path
        for i, item in enumerate(actual):
            assert_same_shape(sample[0] if sample else item, item, f"{path}[{i}]")
    else:
        assert type(actual) is type(sample), f"{path}: {actual!r} vs {sample!r}"


# --------------------------------------------------------------------------- success answers


def test_success_matches_the_sample_shape_for_picture_and_video_notes(sim: SimulatorClient):
    types = set()
    for i in range(30):
        status, body = call(sim, make_note_id(i))
        assert (status, body["code"]) == (200, 0)
        data = body["data"]
        assert_same_shape(SAMPLE_DATA, data)
        assert (data["videoInfo"] is None) == (data["type"] == 1)
        assert data["imagesList"]
        types.add(data["type"])
    assert types == {1, 2}


def test_note_fields_derive_from_the_id(sim: SimulatorClient):
    note_id = make_note_id(7, ts=0x65C0B3FC)
    data = call(sim, note_id)[1]["data"]
    assert data["noteId"] == note_id
    assert data["time"]["createTime"] == 1707127804000
    assert data["createTime"] == "2024-02-05 18:10"  # China time, like the sample
    assert data["noteLink"].startswith(f"https://www.xiaohongshu.com/explore/{note_id}?xsec_token=")
    assert data["userId"] == data["userInfo"]["userId"]
    assert (data["name"], data["headPhoto"]) == (
        data["userInfo"]["nickName"],
        data["userInfo"]["avatar"],
    )
    assert re.search(r"#[^#]+\[话题\]#", data["content"])
    again = call(sim, note_id)[1]["data"]
    assert {k: again[k] for k in ("title", "content", "userInfo", "imagesList", "videoInfo")} == {
        k: data[k] for k in ("title", "content", "userInfo", "imagesList", "videoInfo")
    }


def test_envelope_carries_message_record_time_and_request_id(sim: SimulatorClient):
    first, second = call(sim)[1], call(sim)[1]
    assert set(first) == {"code", "message", "data", "recordTime", "requestId"}
    assert abs(datetime.fromisoformat(first["recordTime"]) - datetime.now(UTC)) < timedelta(
        minutes=1
    )
    assert re.fullmatch(r"[0-9a-f]{32}", first["requestId"])
    assert first["requestId"] != second["requestId"]
    assert call(sim, token="nope")[1]["message"] == "Invalid or inactive token"


def test_metrics_grow_with_each_successful_fetch(sim: SimulatorClient):
    metrics = ("impNum", "likeNum", "favNum", "cmtNum", "readNum", "shareNum", "followCnt")
    first, second = (call(sim)[1]["data"] for _ in range(2))
    assert all(second[m] > first[m] for m in metrics)
    sim.configure(metrics_growth=False)
    third, fourth = (call(sim)[1]["data"] for _ in range(2))
    assert [third[m] for m in metrics] == [fourth[m] for m in metrics]


def test_creators_come_from_a_shared_pool(sim: SimulatorClient):
    users = {call(sim, make_note_id(i))[1]["data"]["userId"] for i in range(120)}
    assert 20 <= len(users) <= 50


def test_empty_and_invalid_data_answer_code_zero(sim: SimulatorClient):
    sim.configure(empty_data_ids=[NOTE], invalid_data_ids=[OTHER])
    assert call(sim, NOTE)[1]["data"] is None
    bad = call(sim, OTHER)[1]
    assert bad["code"] == 0
    assert "noteId" not in bad["data"]
    assert (bad["data"]["likeNum"], bad["data"]["time"]) == ("lots", "yesterday")


# --------------------------------------------------------------------------- business codes


def test_token_checks(sim: SimulatorClient):
    assert code_of(sim, token=None) == 100
    assert code_of(sim, token="") == 100
    assert code_of(sim, token="unknown") == 100
    sim.configure(permission_denied_tokens=["test-token-2"], token_codes={"test-token-3": 999})
    assert code_of(sim, token="test-token-2") == 600
    assert code_of(sim, token="test-token-3") == 999
    assert code_of(sim, token="test-token") == 0


@pytest.mark.parametrize(
    "note_id", [None, "", "65c0b3fc", "65c0b3fc000000002c037a4g", "65c0b3fc000000002c037a490"]
)
def test_malformed_note_ids_answer_400(sim: SimulatorClient, note_id: str | None):
    assert code_of(sim, note_id) == 400


def test_upper_case_ids_are_accepted_and_counted_in_lower_case(sim: SimulatorClient):
    body = call(sim, NOTE.upper())[1]
    assert (body["code"], body["data"]["noteId"]) == (0, NOTE)
    assert sim.stats()["success_by_note"] == {NOTE: 1}


def test_not_found_is_201_and_billed(sim: SimulatorClient):
    gone = NOTE[:-6] + "ffffff"
    sim.configure(not_found_ids=[OTHER])
    for note_id in (gone, OTHER):
        body = call(sim, note_id)[1]
        assert (body["code"], body["data"]) == (201, None)
    assert sim.stats()["billed"] == 2


@pytest.mark.parametrize(("key", "code"), [("quota", 303), ("balance", 601), ("spend_cap", 602)])
def test_usage_limits_are_per_token(sim: SimulatorClient, key: str, code: int):
    sim.configure(**{key: 2})
    assert [code_of(sim, make_note_id(i)) for i in range(4)] == [0, 0, code, code]
    assert code_of(sim, token="test-token-2") == 0


def test_quota_counts_only_successes(sim: SimulatorClient):
    sim.configure(quota=1, fail_first={"301": 1})
    assert [code_of(sim) for _ in range(3)] == [301, 0, 303]


def test_fail_first_is_counted_per_note(sim: SimulatorClient):
    sim.configure(fail_first={"301": 2, "500": 1})
    assert [code_of(sim, NOTE) for _ in range(4)] == [301, 301, 500, 0]
    assert [code_of(sim, OTHER) for _ in range(4)] == [301, 301, 500, 0]


def test_burst_302_counts_down_across_notes(sim: SimulatorClient):
    sim.configure(burst_302=3)
    codes = [code_of(sim, make_note_id(i)) for i in range(5)]
    assert codes == [302, 302, 302, 0, 0]


def test_note_codes_force_a_code(sim: SimulatorClient):
    sim.configure(note_codes={NOTE: 999, OTHER.upper(): 400})
    assert (code_of(sim, NOTE), code_of(sim, OTHER)) == (999, 400)
    assert code_of(sim, make_note_id(3)) == 0


@pytest.mark.parametrize(
    ("cfg", "code"),
    [
        ({"rate_301": 1.0}, 301),
        ({"rate_302": 1.0}, 302),
        ({"rate_500": 1.0}, 500),
        ({"rate_303": 1.0}, 303),
        ({"rate_601": 1.0}, 601),
        ({"rate_codes": {"503": 1.0}}, 503),
    ],
)
def test_business_fault_rates(sim: SimulatorClient, cfg: dict[str, Any], code: int):
    sim.configure(**cfg)
    assert code_of(sim) == code


def test_random_draws_repeat_after_reset(sim: SimulatorClient):
    sim.configure(rate_302=0.5)
    first = [code_of(sim, make_note_id(i)) for i in range(20)]
    sim.reset()
    sim.configure(rate_302=0.5)
    assert [code_of(sim, make_note_id(i)) for i in range(20)] == first
    assert set(first) == {0, 302}


OPENAPI = {0: 200, 201: 200, 100: 401, 301: 500, 302: 429, 303: 429, 400: 400, 500: 500}
OPENAPI |= {600: 403, 601: 403, 602: 403, 999: 200}


@pytest.mark.parametrize(("code", "status"), sorted(OPENAPI.items()))
def test_http_status_modes(sim: SimulatorClient, code: int, status: int):
    if code:
        sim.configure(note_codes={NOTE: code})
    assert call(sim)[0] == 200  # legacy mode: every JSON answer is HTTP 200
    sim.configure(http_status_mode="openapi")
    got_status, body = call(sim)
    assert (got_status, body["code"]) == (status, code)


# --------------------------------------------------------------------------- HTTP-level faults


def test_reset_drops_the_connection(sim: SimulatorClient):
    sim.configure(reset=1.0)
    with pytest.raises(requests.ConnectionError):
        raw(sim)
    assert sim.stats()["by_code"] == {"reset": 1}


def test_http502_is_html_without_json(sim: SimulatorClient):
    sim.configure(http502_html=1.0)
    response = raw(sim)
    assert response.status_code == 502
    assert response.headers["Content-Type"].startswith("text/html")
    assert b"502 Bad Gateway" in response.content


def test_truncated_is_half_a_json_body(sim: SimulatorClient):
    sim.configure(truncated=1.0)
    response = raw(sim)
    assert response.status_code == 200
    assert response.content.startswith(b'{"code":0,')
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)


def test_malformed_body(sim: SimulatorClient):
    sim.configure(malformed=1.0)
    response = raw(sim)
    assert (response.status_code, response.content) == (200, b'{"code": 0, "data": {oops')


def test_slow_answers_normally_after_a_delay(sim: SimulatorClient):
    sim.configure(slow=1.0, slow_seconds=0.3)
    started = time.monotonic()
    assert code_of(sim) == 0
    assert time.monotonic() - started >= 0.3


def test_http_faults_are_counted_by_name_and_consume_no_business_state(sim: SimulatorClient):
    sim.configure(http502_html=1.0, fail_first={"301": 1})
    raw(sim)
    sim.configure(http502_html=0.0, truncated=1.0)
    raw(sim)
    sim.configure(truncated=0.0)
    assert code_of(sim) == 301  # the faulted calls never reached fail_first
    stats = sim.stats()
    assert stats["by_code"] == {"http502_html": 1, "truncated": 1, "301": 1}
    assert (stats["calls"], stats["by_note"], stats["billed"]) == (3, {NOTE: 3}, 0)


# --------------------------------------------------------------------------- admin routes


def test_stats_count_every_call(sim: SimulatorClient):
    call(sim, NOTE)
    call(sim, NOTE, token="test-token-2")
    call(sim, NOTE[:-6] + "ffffff")
    call(sim, "bad", token="test-token-3")
    call(sim, OTHER, token="nope")
    assert sim.stats() == {
        "calls": 5,
        "by_code": {"0": 2, "201": 1, "400": 1, "100": 1},
        "by_note": {NOTE: 2, NOTE[:-6] + "ffffff": 1, "bad": 1, OTHER: 1},
        "success_by_note": {NOTE: 2},
        "by_token": {"test-token": 2, "test-token-2": 1, "test-token-3": 1, "nope": 1},
        "billed": 3,
        "max_concurrency": 1,
    }


def test_totals_are_the_stats_without_the_per_note_and_per_token_maps(sim: SimulatorClient):
    call(sim, NOTE)
    call(sim, OTHER, token="nope")
    with requests.get(f"{sim.url}/_sim/totals", timeout=5) as response:
        totals = response.json()
    stats = sim.stats()
    assert totals == {k: stats[k] for k in ("calls", "by_code", "billed", "max_concurrency")}
    assert totals == {"calls": 2, "by_code": {"0": 1, "100": 1}, "billed": 1, "max_concurrency": 1}


def test_reset_zeroes_counters_and_restores_the_startup_config(sim: SimulatorClient):
    startup = sim.config()
    sim.configure(quota=1, fail_first={"301": 1}, burst_302=1, latency_ms=1)
    for _ in range(3):
        call(sim)
    sim.reset()
    assert sim.config() == startup
    assert sim.stats()["calls"] == 0
    assert code_of(sim) == 0


def test_config_rejects_unknown_keys_and_bad_values_atomically(sim: SimulatorClient):
    before = sim.config()
    for bad in ({"nope": 1}, {"reset": 2}, {"quota": -1, "slow": 0.5}, {"http_status_mode": "x"}):
        with pytest.raises(ValueError, match="refused"):
            sim.configure(**bad)
    assert sim.config() == before


def test_latency_applies_to_api_calls_only_and_concurrency_is_tracked(sim: SimulatorClient):
    sim.configure(latency_ms=300)
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda i: code_of(sim, make_note_id(i)), range(8)))
    assert codes == [0] * 8
    assert 0.3 <= time.monotonic() - started < 2.0
    started = time.monotonic()
    assert sim.stats()["max_concurrency"] == 8
    assert time.monotonic() - started < 0.2


def test_latency_jitter_spreads_the_answer_times(sim: SimulatorClient):
    sim.configure(latency_ms=100, latency_jitter_ms=300)

    def timed(i: int) -> float:
        started = time.monotonic()
        assert code_of(sim, make_note_id(i)) == 0
        return time.monotonic() - started

    with ThreadPoolExecutor(12) as pool:
        durations = list(pool.map(timed, range(12)))
    assert min(durations) >= 0.1  # never sooner than latency_ms
    # Twelve uniform draws over 300 ms: answers come back spread out, not in lockstep.
    assert max(durations) - min(durations) >= 0.05, durations


def test_latency_jitter_draws_leave_the_seeded_fault_draws_alone():
    from pgy_spider.simulator import Simulator

    plain = Simulator({"rate_301": 0.5, "seed": 7})
    jittered = Simulator({"rate_301": 0.5, "seed": 7, "latency_jitter_ms": 50})
    codes: tuple[list[int], list[int]] = ([], [])
    delays = []
    for i in range(40):
        delays.append(jittered.latency())
        assert plain.latency() == 0.0
        for sim, out in zip((plain, jittered), codes, strict=True):
            out.append(_code_in(sim.answer("demo-token", make_note_id(i)).body))
    assert codes[0] == codes[1] and set(codes[0]) == {0, 301}
    assert all(0.0 <= d <= 0.05 for d in delays) and len(set(delays)) == len(delays)


def _code_in(body: bytes) -> int:
    code: int = json.loads(body)["code"]
    return code


def test_latency_jitter_is_validated(sim: SimulatorClient):
    with pytest.raises(ValueError, match="latency_jitter_ms"):
        sim.configure(latency_jitter_ms=-1)
    assert sim.configure(latency_jitter_ms=25)["latency_jitter_ms"] == 25.0


def test_seeds_dir_is_served(sim: SimulatorClient):
    (sim.seeds_dir / "batch").mkdir(exist_ok=True)
    (sim.seeds_dir / "batch" / "ids.txt").write_text(f"{NOTE}\n{OTHER}\n", encoding="utf-8")
    with requests.get(f"{sim.url}/seeds/batch/ids.txt", timeout=5) as response:
        assert (response.status_code, response.text.split()) == (200, [NOTE, OTHER])
    with requests.get(f"{sim.url}/seeds/missing.txt", timeout=5) as response:
        assert response.status_code == 404


# --------------------------------------------------------------------------- CLI and helpers


def test_cli_flags_and_config_json_build_the_startup_config():
    args = simulator_module.parse_args(
        ["--tokens", "a,b", "--quota", "5", "--latency-ms", "2", "--config", '{"rate_302": 0.1}']
    )
    assert args.startup["tokens"] == ["a", "b"]
    assert (args.startup["quota"], args.startup["latency_ms"], args.startup["rate_302"]) == (
        5,
        2.0,
        0.1,
    )
    with pytest.raises(SystemExit):
        simulator_module.parse_args(["--config", '{"bogus": true}'])


@pytest.fixture
def lone_simulator() -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pgy_spider.simulator", "--port", "0"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_process_prints_one_url_line_and_exits_cleanly_on_signal(
    lone_simulator: subprocess.Popen[str], sig: signal.Signals
):
    assert lone_simulator.stdout is not None
    line = lone_simulator.stdout.readline()
    assert re.fullmatch(r"PGY_SIMULATOR_URL=http://127\.0\.0\.1:\d+\n", line)
    lone_simulator.send_signal(sig)
    out, err = lone_simulator.communicate(timeout=10)
    assert (lone_simulator.returncode, out, err) == (0, "", "")


def test_the_success_path_joins_exactly_the_bytes_orjson_writes_for_the_envelope():
    stamps = simulator_module.endpoint.Stamps()
    for i in range(300):
        note_id = make_note_id(i)
        for fetched_before, growth in ((0, True), (1, True), (7, True), (7, False)):
            record_time, request_id = stamps.record_time(), stamps.request_id()
            data = simulator_module.render_note(note_id, fetched_before, growth)
            pieces = simulator_module.notes.note_pieces(note_id, fetched_before, growth)
            fast = simulator_module.endpoint.success_body(pieces, record_time, request_id)
            generic = simulator_module.endpoint.envelope(0, data, record_time, request_id)
            assert fast == generic


def test_record_time_is_utc_iso_with_milliseconds_as_datetime_writes_it():
    stamps = simulator_module.endpoint.Stamps()
    for _ in range(3):
        before = datetime.now(UTC).replace(microsecond=0)
        written = stamps.record_time()
        parsed = datetime.fromisoformat(written)
        assert written == parsed.isoformat(timespec="milliseconds")
        assert before <= parsed <= datetime.now(UTC)
        time.sleep(0.6)  # across a second boundary at least once: the cached date part moves


def test_make_note_id_is_valid_distinct_and_never_not_found():
    ids = [make_note_id(i) for i in [*range(2000), 0xFFFFFE, 0xFFFFFF, 0x1000000, 10**12]]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"65c0b3fc[0-9a-f]{16}", i) for i in ids)
    assert not any(i.endswith("ffffff") for i in ids)
    assert make_note_id(0, ts=0x65C0B3FC) == make_note_id(0)


def test_a_reset_waits_for_the_calls_still_being_answered(sim: SimulatorClient) -> None:
    # A client killed mid-call leaves its calls to finish: they must not be counted in the
    # figures of whoever resets the simulator next.
    sim.configure(latency_ms=600)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(call, sim)
        time.sleep(0.2)
        sim.reset()
        assert pending.result()[1]["code"] == 0
    stats = sim.stats()
    assert stats["calls"] == 0 and stats["billed"] == 0
