"""pgy-spider: Xiaohongshu notes by ID through Just One API's PGY note-detail endpoint.

For another Scrapy project: enable ``pgy_spider.addon.PgyAddon`` and yield
:func:`note_request` (see README "Use it from another Scrapy project").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pgy_spider.noterequest import note_request

__all__ = ["note_request"]


def __getattr__(name: str) -> Any:
    # Lazily: the plain modules of the package import without Scrapy.
    if name == "note_request":
        from pgy_spider.noterequest import note_request

        return note_request
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
