"""Unit tests of the local budget (pgy_spider.budget): reserve and settle, the durable mark
in blocks, and what a resumed job counts as spent. No Scrapy, no server."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import orjson
import pytest

from pgy_spider import jobstate
from pgy_spider.budget import (
    BUDGET_FILE,
    MIN_BLOCK,
    BudgetStateError,
    LocalBudget,
    SpendMark,
    job_budget,
    spent_message,
)
from pgy_spider.config import PgyConfig
from pgy_spider.errors import ConfigError
from pgy_spider.jobstate import JobState
from pgy_spider.ledger import Ledger


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def _mark_value(jobdir: Path) -> int:
    value: int = orjson.loads((jobdir / BUDGET_FILE).read_bytes())["reserved_up_to"]
    return value


def _config(jobdir: Path | None = None, **settings: Any) -> PgyConfig:
    values = {"PGY_TOKEN": "t", **settings}
    if jobdir is not None:
        values["JOBDIR"] = str(jobdir)
    return PgyConfig.from_settings(values, {})


def _save_state(jobdir: Path) -> None:
    """A job state, as the accounting's first checkpoint leaves it: the job resumes."""
    jobdir.mkdir(parents=True, exist_ok=True)
    jobstate.save(str(jobdir), JobState(ledger=Ledger()), 0)


# -- reserve and settle ---------------------------------------------------------------------


def test_units_are_reserved_up_to_the_cap_and_billable_answers_spend_them() -> None:
    async def main() -> None:
        budget = LocalBudget(3)
        assert [await budget.reserve() for _ in range(3)] == [True] * 3
        assert budget.held == 3 and budget.spent == 0 and not budget.exhausted
        for _ in range(3):
            budget.settle(billable=True)
        assert budget.spent == 3 and budget.held == 0 and budget.exhausted
        assert await budget.reserve() is False

    _run(main())


def test_a_non_billable_answer_gives_its_unit_back() -> None:
    async def main() -> None:
        budget = LocalBudget(1)
        for _ in range(50):  # 301, 302, 500 ...: never spent
            assert await budget.reserve()
            budget.settle(billable=False)
        assert budget.spent == 0 and budget.held == 0 and not budget.exhausted

    _run(main())


def test_a_reservation_waits_while_the_last_units_are_on_the_wire() -> None:
    async def main() -> None:
        budget = LocalBudget(2)
        assert await budget.reserve() and await budget.reserve()
        waiting = [asyncio.ensure_future(budget.reserve()) for _ in range(3)]
        await asyncio.sleep(0.01)
        assert not any(w.done() for w in waiting)  # no unit is free, two may come back
        budget.settle(billable=False)  # one comes back: exactly one waiter gets it
        await asyncio.sleep(0.01)
        assert [w.result() for w in waiting if w.done()] == [True]
        budget.settle(billable=True)
        budget.settle(billable=True)  # both units left are spent now: the rest refused
        assert sorted(await asyncio.gather(*waiting)) == [False, False, True]
        assert budget.spent == 2 and budget.held == 0 and budget.exhausted

    _run(main())


def test_no_cap_reserves_always_and_still_counts_what_was_billed() -> None:
    async def main() -> None:
        budget = LocalBudget(0)
        for i in range(100):
            assert await budget.reserve()
            budget.settle(billable=i % 2 == 0)
        assert budget.spent == 50 and budget.limit == 0 and not budget.exhausted

    _run(main())


def test_a_settle_without_a_reservation_still_counts_a_billable_call() -> None:
    budget = LocalBudget(5)
    budget.settle(billable=True)
    budget.settle(billable=False)
    assert budget.spent == 1 and budget.held == 0


def test_concurrent_calls_never_hold_more_than_the_cap() -> None:
    """Many calls at once with random answers: spent + held never passes the cap, and the
    budget ends exactly spent."""

    async def main() -> None:
        budget = LocalBudget(25)
        draws = random.Random(3)
        peak = 0

        async def call() -> None:
            nonlocal peak
            if not await budget.reserve():
                return
            peak = max(peak, budget.spent + budget.held)
            await asyncio.sleep(draws.random() / 200)
            budget.settle(billable=draws.random() < 0.7)

        await asyncio.gather(*(call() for _ in range(200)))
        assert peak <= 25 and budget.spent == 25 and budget.held == 0

    _run(main())


# -- the durable mark ------------------------------------------------------------------


def test_the_mark_moves_in_blocks_before_any_call_beyond_it(tmp_path: Path) -> None:
    async def main() -> None:
        budget = LocalBudget(10, SpendMark(str(tmp_path)), block=4)
        assert not (tmp_path / BUDGET_FILE).exists()
        seen = []
        for _ in range(10):
            assert await budget.reserve()
            seen.append(_mark_value(tmp_path))
            # The invariant a kill relies on: every call that may be billed is below it.
            assert budget.spent + budget.held <= seen[-1]
            budget.settle(billable=True)
        assert seen == [4] * 4 + [8] * 4 + [10] * 2  # the last block stops at the cap
        assert await budget.reserve() is False

    _run(main())


def test_without_a_cap_the_mark_still_counts_what_the_job_may_have_paid(tmp_path: Path) -> None:
    async def main() -> None:
        budget = LocalBudget(0, SpendMark(str(tmp_path)), block=16)
        for _ in range(40):
            assert await budget.reserve()
            budget.settle(billable=True)
        assert _mark_value(tmp_path) == 48

    _run(main())


def test_released_units_need_no_new_mark(tmp_path: Path) -> None:
    async def main() -> None:
        budget = LocalBudget(100, SpendMark(str(tmp_path)), block=4)
        for _ in range(30):  # answered 301 every time: nothing is spent, nothing moves
            assert await budget.reserve()
            budget.settle(billable=False)
        assert _mark_value(tmp_path) == 4

    _run(main())


def test_close_records_exactly_what_was_spent_held_units_included(tmp_path: Path) -> None:
    async def main() -> None:
        budget = LocalBudget(100, SpendMark(str(tmp_path)), block=16)
        for _ in range(5):
            await budget.reserve()
        budget.settle(billable=True)
        budget.settle(billable=False)
        budget.close()  # three calls never answered: they may have been billed
        assert budget.spent == 4 and _mark_value(tmp_path) == 4

    _run(main())


def test_a_mark_that_cannot_be_written_refuses_the_call(tmp_path: Path) -> None:
    (tmp_path / BUDGET_FILE).mkdir()  # the atomic rename onto it fails

    async def main() -> None:
        budget = LocalBudget(10, SpendMark(str(tmp_path)), block=4)
        with pytest.raises(BudgetStateError) as info:
            await budget.reserve()
        assert info.value.path == str(tmp_path / BUDGET_FILE)
        assert budget.held == 0  # nothing reserved: the call is not sent

    _run(main())


# -- a resumed job -------------------------------------------------------------------


def test_a_resumed_job_counts_its_whole_last_block_as_spent(tmp_path: Path) -> None:
    jobdir = tmp_path / "job"
    _save_state(jobdir)

    async def main() -> None:
        config = _config(jobdir, PGY_MAX_BILLED_CALLS=100, CONCURRENT_REQUESTS=40)
        first = job_budget(config)
        for _ in range(3):
            assert await first.reserve()
            first.settle(billable=True)
        # Killed here: no close. The mark says 40 (one block of CONCURRENT_REQUESTS).
        again = job_budget(config)
        assert again.spent == 40 and again.limit == 100
        same = job_budget(_config(jobdir, PGY_MAX_BILLED_CALLS=40))
        assert same.exhausted and await same.reserve() is False

    _run(main())


def test_after_a_clean_end_the_job_resumes_from_the_exact_count(tmp_path: Path) -> None:
    jobdir = tmp_path / "job"
    _save_state(jobdir)

    async def main() -> None:
        config = _config(jobdir, PGY_MAX_BILLED_CALLS=100)
        first = job_budget(config)
        for _ in range(7):
            assert await first.reserve()
            first.settle(billable=True)
        first.close()
        assert job_budget(config).spent == 7

    _run(main())


def test_kills_at_random_moments_never_let_a_job_overshoot(tmp_path: Path) -> None:
    """A job killed again and again (no close) with calls on the wire: over all its
    sessions, no more calls may have been billed than the cap."""
    jobdir = tmp_path / "job"
    _save_state(jobdir)
    config = _config(jobdir, PGY_MAX_BILLED_CALLS=120, CONCURRENT_REQUESTS=8)
    draws = random.Random(11)

    async def session() -> int:
        """Calls until killed; how many may have been billed (answered billable or on the
        wire at the kill)."""
        budget = job_budget(config)
        maybe_billed = 0
        on_wire = 0
        for _ in range(draws.randrange(5, 60)):
            # (One coroutine: a reservation that would wait for an answer answers first.)
            full = budget.spent + on_wire >= 120
            if on_wire and (full or draws.random() < 0.5):
                on_wire -= 1
                billable = draws.random() < 0.8
                maybe_billed += billable
                budget.settle(billable=billable)
            elif on_wire < 8:
                if not await budget.reserve():
                    break
                on_wire += 1
        return maybe_billed + on_wire  # the kill: those on the wire may be billed too

    total = 0
    for _ in range(40):
        total += _run(session())
        assert total <= 120
    assert job_budget(config).exhausted  # the job did reach its cap


def test_a_mark_without_a_job_state_is_not_this_jobs(tmp_path: Path) -> None:
    jobdir = tmp_path / "job"
    jobdir.mkdir()
    SpendMark(str(jobdir)).store(500)
    budget = job_budget(_config(jobdir, PGY_MAX_BILLED_CALLS=100))
    assert budget.spent == 0  # a new job: the first reservation writes a mark of its own

    async def main() -> None:
        assert await budget.reserve()
        assert _mark_value(jobdir) == MIN_BLOCK

    _run(main())


@pytest.mark.parametrize(
    "content",
    [b"{oops", b"[]", b'{"format": 9, "reserved_up_to": 3}', b'{"format": 1}'],
)
def test_an_unreadable_mark_is_one_clear_error(tmp_path: Path, content: bytes) -> None:
    jobdir = tmp_path / "job"
    _save_state(jobdir)
    (jobdir / BUDGET_FILE).write_bytes(content)
    with pytest.raises(ConfigError) as info:
        job_budget(_config(jobdir, PGY_MAX_BILLED_CALLS=5))
    message = str(info.value)
    assert BUDGET_FILE in message and "delete the JOBDIR" in message and "\n" not in message


def test_without_jobdir_nothing_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    async def main() -> None:
        budget = job_budget(_config(PGY_MAX_BILLED_CALLS=2))
        assert await budget.reserve()
        budget.settle(billable=True)
        budget.close()
        assert budget.spent == 1

    _run(main())
    assert list(tmp_path.iterdir()) == []


# -- the setting and the message ---------------------------------------------------------


def test_the_setting_defaults_to_no_cap_and_refuses_nonsense() -> None:
    assert _config().max_billed_calls == 0
    assert _config(PGY_MAX_BILLED_CALLS="250").max_billed_calls == 250
    for bad in ("-1", "lots", "2.5"):
        with pytest.raises(ConfigError, match="PGY_MAX_BILLED_CALLS"):
            _config(PGY_MAX_BILLED_CALLS=bad)


def test_the_stop_message_says_how_to_go_on() -> None:
    budget = LocalBudget(40)
    for _ in range(40):
        budget.settle(billable=True)
    line = spent_message(budget, resumable=True)
    assert "40 billable answers" in line and "PGY_MAX_BILLED_CALLS=40" in line
    assert "larger PGY_MAX_BILLED_CALLS" in line and "pending" in line
    assert "not resumable" in spent_message(budget, resumable=False)
