"""What the benchmark's report says beside its targets (bench/report.py)."""

from __future__ import annotations

from bench import report
from bench.regimes import FULL
from bench.report import Summary


def _summary(regime: str, variant: str, *, nps: float = 100.0, cpu_ms: float = 1.0) -> Summary:
    return Summary(
        regime=regime,
        variant=variant,
        runs=3,
        notes=1000,
        nps=nps,
        nps_min=nps,
        nps_max=nps,
        nps_process=nps,
        cpu_per_1k=cpu_ms,
        cpu_ms_per_note_steady=cpu_ms,
        peak_rss=1e8,
        peak_concurrency=64,
        sim_us_per_call=100.0,
        sim_share=0.1,
        background_cores=0.0,
    )


def _zero_ms(raw: float, bare: float, floor: float) -> dict[report.Key, Summary]:
    runs = {"r": raw, "b": bare, "f": floor}
    return {("0ms-64", v): _summary("0ms-64", v, cpu_ms=ms) for v, ms in runs.items()}


def test_a_floor_above_the_goals_says_no_spider_on_scrapy_can_meet_them() -> None:
    # (f) = 0.5 ms: 0.25× (b) at 2.0 ms is 0.5 (met), 4× raw at 0.1 ms is 0.4 (not met).
    text = "\n".join(report._limits(_zero_ms(raw=0.1, bare=2.0, floor=0.5), FULL))
    assert "0.50 ms of CPU per note" in text and "(0.25× (b), 5.00× raw)" in text
    assert "goal ≤ 4× raw is below what Scrapy's engine itself costs for this work" in text
    assert "(b) is below" not in text and "0.25× (b) is below" not in text

    both = "\n".join(report._limits(_zero_ms(raw=0.1, bare=1.0, floor=0.5), FULL))
    assert "goals ≤ 0.25× (b) and ≤ 4× raw are below" in both


def test_a_floor_under_the_goals_leaves_the_rest_to_the_project() -> None:
    text = "\n".join(report._limits(_zero_ms(raw=0.1, bare=2.0, floor=0.3), FULL))
    assert "the project's own" in text and "can meet" not in text


def test_the_latency_ceiling_is_named_when_it_is_under_the_goal_against_bare_scrapy() -> None:
    # 64 in flight at 100 ms: at most 640 notes/s; 1.5× (b) needs (b) under ~427.
    fast = {("100ms-64", "b"): _summary("100ms-64", "b", nps=470.0)}
    assert "640 notes/s = 1.36× (b)'s 470" in "\n".join(report._limits(fast, FULL))
    slow = {("100ms-64", "b"): _summary("100ms-64", "b", nps=400.0)}
    assert report._limits(slow, FULL) == []
