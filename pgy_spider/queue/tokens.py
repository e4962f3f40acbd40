"""Token retirement shared by every process of a run, by fingerprint only.

Each process reads its own tokens as in one process (``PGY_TOKEN``, ``PGY_TOKEN_FILE``,
``JUSTONEAPI_TOKEN``); Redis only ever holds fingerprints: which are retired and why (one
hash for the run), and which of each worker's tokens are still usable. A token refused on
one host (100, 303, 600, 601, 602) is retired on every host that holds it with their next
poll. A worker left without a usable token stops (exit 3) and hands its notes back at once;
when no live worker has one either, the whole run stops (:data:`~pgy_spider.queue.scripts.TOKENS`).
"""

from __future__ import annotations

import asyncio
import logging

from pgy_spider import reasons
from pgy_spider.queue.errors import QueueStop
from pgy_spider.queue.member import Look, QueueMember
from pgy_spider.vault import LocalTokenVault

logger = logging.getLogger(__name__)


class RedisTokenVault(LocalTokenVault):
    def __init__(self, tokens: tuple[str, ...] | list[str], member: QueueMember) -> None:
        super().__init__(tokens)
        self._member = member
        self._out: asyncio.Future[None] | None = None
        member.fingerprints = self._usable()  # published with the first poll
        member.watchers.append(self._seen)

    def _usable(self) -> list[str]:
        return [s.fingerprint for s in self.states if s.retired is None]

    async def retire(self, fingerprint: str, reason: str) -> bool:
        retired = self.retire_now(fingerprint, reason)
        if retired:
            await self._tell(fingerprint, reason)
        return retired

    def _seen(self, look: Look) -> None:
        """Tokens retired by other workers are retired here too."""
        changed = False
        for state in self.states:
            reason = look.retired.get(state.fingerprint)
            if reason is not None and state.retired is None:
                state.retired = reason
                changed = True
                logger.warning(
                    "Token %s retired: another worker of the run was refused with it (%s)",
                    state.fingerprint,
                    reason,
                )
        if changed and self.exhausted and self._out is None:
            self._out = asyncio.ensure_future(self._none_left())

    async def _none_left(self) -> None:
        """Every token of this worker was retired elsewhere: say so to the run, and stop."""
        member = self._member
        reason = self._last_reason()
        try:
            await self._tell("", reason)
        except QueueStop as exc:
            member.fail(exc)
            return
        member._stop(reason, f"Stopping the crawl: {reason} (no further API calls)")

    def _last_reason(self) -> str:
        for state in reversed(self.states):
            if state.retired in reasons.TOKEN_CLOSE_REASONS:
                return state.retired
        return reasons.INVALID_TOKEN

    async def _tell(self, fingerprint: str, reason: str) -> None:
        """Retire ``fingerprint`` for the run (if given) and publish this worker's usable
        tokens; without any, say whether the run goes on without this worker."""
        member = self._member
        k = member.keys
        found = await member.script(
            "TOKENS",
            [k.retired, k.tokens, k.beats, k.meta],
            [member.worker, fingerprint, reason, member.claim_ms, reason, *self._usable()],
        )
        if found == b"others":
            logger.error(
                "Every token of this worker is retired: it stops and hands its notes back; "
                "the other workers of run %r go on with theirs",
                member.config.run,
            )
        elif found == b"run":
            logger.error(
                "No worker of run %r has a usable token left: the whole run stops, undone "
                "notes stay pending; %s",
                member.config.run,
                token_hint(),
            )


def token_hint() -> str:
    return "give the processes a usable token and run the same commands to go on"
