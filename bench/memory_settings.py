"""The project's settings plus the benchmark's stopper, for the memory crawl only.

``SCRAPY_SETTINGS_MODULE=bench.memory_settings``: a ``-s EXTENSIONS=...`` would replace the
project's own extensions instead of adding one.
"""

from pgy_spider import settings as _project
from pgy_spider.settings import *  # noqa: F403

EXTENSIONS = {**getattr(_project, "EXTENSIONS", {}), "bench.stopper.StopWhenSeedsRead": 0}
