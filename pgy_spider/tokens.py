"""The token pool: which tokens a run may use, which are retired, and their calls.

Plain module: the download handler asks for the current token at the moment of
sending and the API middleware retires a token the API refused. Only short
fingerprints ever leave this object (meta, stats, summary), never a token.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pgy_spider.api import ConfigError, parse_tokens, token_fingerprint


def load_tokens(
    setting: str | None, token_file: str | None, environ: Mapping[str, str] = os.environ
) -> list[str]:
    """Tokens from ``PGY_TOKEN``, else the file named by ``PGY_TOKEN_FILE``, else the
    ``JUSTONEAPI_TOKEN`` environment variable. Raises ConfigError when none is given."""
    if setting:
        tokens = parse_tokens(setting)
        if tokens:
            return tokens
    token_file = token_file or environ.get("PGY_TOKEN_FILE")
    if token_file:
        try:
            text = Path(token_file).read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise ConfigError(
                f"PGY_TOKEN_FILE {token_file!r} cannot be read ({exc.strerror or exc}): "
                "point it at a readable file holding the token"
            ) from None
        tokens = parse_tokens(",".join(text.split()))
        if not tokens:
            raise ConfigError(f"PGY_TOKEN_FILE {token_file!r} is empty: put the token in it")
        return tokens
    tokens = parse_tokens(environ.get("JUSTONEAPI_TOKEN"))
    if tokens:
        return tokens
    raise ConfigError(
        "no API token: set the JUSTONEAPI_TOKEN environment variable, "
        "-s PGY_TOKEN=... or -s PGY_TOKEN_FILE=/path/to/token"
    )


class NoTokenLeft(Exception):
    """Every token of the run has been retired."""


@dataclass
class TokenState:
    token: str
    fingerprint: str
    calls: int = 0
    retired: str | None = None


@dataclass
class TokenPool:
    """Tokens in the order given; the first one not retired is used."""

    states: list[TokenState] = field(default_factory=list)

    @classmethod
    def of(cls, tokens: list[str]) -> TokenPool:
        return cls([TokenState(t, token_fingerprint(t)) for t in tokens])

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(s.token for s in self.states)

    def current(self) -> TokenState:
        for state in self.states:
            if state.retired is None:
                return state
        raise NoTokenLeft

    def retire(self, fingerprint: str, reason: str) -> bool:
        """Retire a token; True when this call retired it (False if it already was)."""
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

    def last_retire_reason(self) -> str | None:
        reasons = [s.retired for s in self.states if s.retired]
        return reasons[-1] if reasons else None

    def report(self) -> dict[str, dict[str, object]]:
        """Per-token calls under the fingerprint, for the summary (never the token)."""
        return {s.fingerprint: {"calls": s.calls, "retired": s.retired} for s in self.states}
