"""Local feed files written through at once, that report write errors.

Registered for local paths (``FEED_STORAGES``). Each note reaches the file in one
``write()`` when it is exported (no buffer in between: one system call per note, a few
microseconds), so a ``kill -9`` loses none that the run counted as written and tears at
most the line being written; and a write that fails (a full disk) stops the run with
``pgy_output_error`` instead of being only logged.
"""

from __future__ import annotations

from typing import IO, TYPE_CHECKING, Any

from scrapy.extensions.feedexport import FileFeedStorage

from pgy_spider.outputfile import open_output
from pgy_spider.runtime import PgyRuntime, runtime_of

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Spider
    from scrapy.crawler import Crawler


class DurableFileFeedStorage(FileFeedStorage):
    _runtime: PgyRuntime

    @classmethod
    def from_crawler(
        cls, crawler: Crawler, uri: str, *, feed_options: dict[str, Any] | None = None
    ) -> Self:
        storage = cls(uri, feed_options=feed_options)
        storage._runtime = runtime_of(crawler)
        return storage

    def open(self, spider: Spider) -> IO[bytes]:
        return open_output(self.path, self.write_mode, on_error=self._runtime.output_failed)
