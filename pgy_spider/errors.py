"""The user's mistakes: one line each, saying what is wrong and how to fix it.

Plain module. Whatever raises a :class:`UserError` before the crawl starts ends the run
with exit status 2 and that one line, no traceback and no API call.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake the user can fix; the message is one line saying what and how."""


class ConfigError(UserError, ValueError):
    """A setting, an argument or the environment is wrong."""


class StorageUnavailable(UserError):
    """The note storage cannot be reached (at start, or while checking freshness)."""
