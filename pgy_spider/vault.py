"""The token vault: which tokens a run may use, which are retired, and the one place that
knows them.

The download handler asks the vault for the current token at the moment of sending; the
API middleware retires a token the API refused; the summary reports calls per token under
a fingerprint. Only fingerprints ever leave the vault (meta, stats, summary, logs), and the
vault installs the log filter that masks its tokens should one slip through anyway.

:class:`TokenVault` is the interface a shared backend implements a second time (retirement
seen by every process of a run); :class:`LocalTokenVault` is the one-process vault.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from pgy_spider.api import mask_secrets, token_fingerprint
from pgy_spider.logmask import SecretMaskingFilter


class NoTokenLeft(Exception):
    """Every token of the run has been retired."""


@dataclass(slots=True)
class TokenState:
    token: str
    fingerprint: str
    calls: int = 0
    retired: str | None = None


class TokenVault(ABC):
    """Tokens in the order given; the first one not retired is used."""

    @property
    @abstractmethod
    def secrets(self) -> tuple[str, ...]:
        """Every token: what must be masked wherever text leaves the process."""

    @abstractmethod
    def current(self) -> TokenState:
        """The token to send the next call with (fast: called for every call).

        Raises NoTokenLeft when every token is retired.
        """

    @abstractmethod
    async def retire(self, fingerprint: str, reason: str) -> bool:
        """Retire a token the API refused; True when this call retired it."""

    @abstractmethod
    def count_call(self, fingerprint: str) -> None:
        """One answered call made with this token."""

    @property
    @abstractmethod
    def exhausted(self) -> bool:
        """No token is left to send calls with."""

    @abstractmethod
    def report(self) -> dict[str, dict[str, Any]]:
        """Per-token calls and retirement under the fingerprint (never the token)."""

    def mask(self, text: str) -> str:
        """``text`` with every token (raw and URL-quoted) replaced by ``***``."""
        return mask_secrets(text, self.secrets)

    def install_log_mask(self) -> SecretMaskingFilter:
        """Mask the tokens in every record the root logger's handlers emit (a backstop:
        by design no token reaches a log message). Touches nothing but those handlers."""
        mask = SecretMaskingFilter(self.secrets)
        for handler in logging.getLogger().handlers:
            if not any(isinstance(f, SecretMaskingFilter) for f in handler.filters):
                handler.addFilter(mask)
        return mask


class LocalTokenVault(TokenVault):
    def __init__(self, tokens: tuple[str, ...] | list[str]) -> None:
        self.states = [TokenState(t, token_fingerprint(t)) for t in tokens]
        self._secrets = tuple(tokens)

    @property
    def secrets(self) -> tuple[str, ...]:
        return self._secrets

    def current(self) -> TokenState:
        for state in self.states:
            if state.retired is None:
                return state
        raise NoTokenLeft

    async def retire(self, fingerprint: str, reason: str) -> bool:
        return self.retire_now(fingerprint, reason)

    def retire_now(self, fingerprint: str, reason: str) -> bool:
        for state in self.states:
            if state.fingerprint == fingerprint and state.retired is None:
                state.retired = reason
                return True
        return False

    def count_call(self, fingerprint: str) -> None:
        for state in self.states:
            if state.fingerprint == fingerprint:
                state.calls += 1
                return

    @property
    def exhausted(self) -> bool:
        return all(s.retired is not None for s in self.states)

    def report(self) -> dict[str, dict[str, Any]]:
        return {s.fingerprint: {"calls": s.calls, "retired": s.retired} for s in self.states}
