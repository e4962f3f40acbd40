"""Where a run's tokens come from: a setting, a token file, or the environment.

Plain module. The tokens themselves are then held by the vault (:mod:`pgy_spider.vault`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pgy_spider.api import parse_tokens
from pgy_spider.errors import ConfigError


def load_tokens(
    setting: str | None, token_file: str | None, environ: Mapping[str, str] = os.environ
) -> list[str]:
    """Tokens from ``PGY_TOKEN``, else the file named by ``PGY_TOKEN_FILE`` (the setting,
    else the environment variable), else the ``JUSTONEAPI_TOKEN`` environment variable.
    Raises ConfigError when none is given."""
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
