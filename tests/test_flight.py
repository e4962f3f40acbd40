"""Unit tests of the places in flight: at most the limit taken, each given back once."""

from __future__ import annotations

import asyncio

from pgy_spider.flight import InFlight


def test_a_place_is_held_until_given_back_and_only_once() -> None:
    async def scenario() -> list[str]:
        places = InFlight(2)
        first: dict[str, object] = {}
        second: dict[str, object] = {}
        third: dict[str, object] = {}
        await places.take(first)
        await places.take(second)
        waiting = asyncio.ensure_future(places.take(third))
        await asyncio.sleep(0.01)
        events = ["waiting" if not waiting.done() else "sent"]
        places.give_back(first)
        places.give_back(first)  # twice: gives back one place, not two
        await asyncio.wait_for(waiting, 1)
        events.append("sent")
        fourth: dict[str, object] = {}
        blocked = asyncio.ensure_future(places.take(fourth))
        await asyncio.sleep(0.01)
        events.append("blocked" if not blocked.done() else "too many")
        places.give_back(second)
        await asyncio.wait_for(blocked, 1)
        assert "pgy_in_flight" not in first and third["pgy_in_flight"] is True
        assert places.taken == 2
        return events

    assert asyncio.run(scenario()) == ["waiting", "sent", "blocked"]


def test_giving_back_a_request_that_holds_no_place_changes_nothing() -> None:
    async def scenario() -> bool:
        places = InFlight(1)
        places.give_back({})  # a cached answer, a retry that never got one
        held: dict[str, object] = {}
        await places.take(held)
        other = asyncio.ensure_future(places.take({}))
        await asyncio.sleep(0.01)
        return not other.done()

    assert asyncio.run(scenario()) is True
