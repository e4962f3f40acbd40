"""Scrapy settings for pgy-spider.

Imports with no environment variables and no network: Scrapyd runs ``scrapy list``
on upload. The token, the region and MongoDB are read when a crawl starts.
Every ``PGY_*`` setting is documented with its default in the README.
"""

BOT_NAME = "pgy_spider"
SPIDER_MODULES = ["pgy_spider.spiders"]
NEWSPIDER_MODULE = "pgy_spider.spiders"
COMMANDS_MODULE = "pgy_spider.commands"

# The API, not a website: no robots.txt, no cookies, no consoles.
ROBOTSTXT_OBEY = False
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False
# Scrapy 2.19's remote-control HTTP server can run code in the crawl: never for a job
# that holds a paid token.
REMOTE_CONTROL_ENABLED = False

# A paid API: modest concurrency by default (raise it with -s CONCURRENT_REQUESTS=N;
# the spider applies it to the API host too). The API asks for >= 60 s timeouts.
CONCURRENT_REQUESTS = 16
DOWNLOAD_TIMEOUT = 60
DOWNLOAD_DELAY = 0
# The token travels in the URL: check the API's (and an HTTPS proxy's) certificate, so a
# TLS-inspecting middlebox cannot read it unnoticed. Scrapy's default is not to.
DOWNLOAD_VERIFY_CERTIFICATES = True

# uvloop runs the asyncio event loop under Scrapy's asyncio reactor: the same crawl, ~6 % less
# CPU per call (bench/README.md). Only where it is installed (requirements.txt; there is no
# uvloop for Windows): a host without it runs on asyncio's own loop, with nothing else changed.
# find_spec looks for the module without importing it. asyncio's own loop instead:
# -s ASYNCIO_EVENT_LOOP=asyncio.SelectorEventLoop.
from importlib.util import find_spec as _find_spec  # noqa: E402

ASYNCIO_EVENT_LOOP = "uvloop.Loop" if _find_spec("uvloop") is not None else None

from scrapy.settings import default_settings as _scrapy  # noqa: E402

# --- pgy-spider settings: every PGY_*/MONGO_* default, defined once (see README) ----
from pgy_spider.default_settings import *  # noqa: E402, F403

# What API requests need (the token handler, the business-code middleware, note
# validation, the API's settings): the same add-on another Scrapy project would use.
ADDONS = {"pgy_spider.addon.PgyAddon": 100}

# The rest is this project's own shaping, for speed and for its outputs.

# The crawl is CPU-bound inside Scrapy at high concurrency and every middleware costs each
# call: those that do nothing for a JSON API are left out. Left out of the _BASE lists, not set
# to None: Scrapy imports every class a DOWNLOADER_MIDDLEWARES / EXTENSIONS key names, even a
# disabled one, and some cost start-up (the cookies middleware imports tldextract, ~70 ms; the
# remote-control extension aiohttp.web). A component of these lists can still be turned on
# with DOWNLOADER_MIDDLEWARES / SPIDER_MIDDLEWARES / EXTENSIONS, as in any Scrapy project.
_left_out = {
    "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware",
    "scrapy.downloadermiddlewares.httpauth.HttpAuthMiddleware",
    "scrapy.downloadermiddlewares.defaultheaders.DefaultHeadersMiddleware",
    "scrapy.downloadermiddlewares.retry.RetryMiddleware",  # ours retries by code
    "scrapy.downloadermiddlewares.redirect.MetaRefreshMiddleware",
    "scrapy.downloadermiddlewares.httpcompression.HttpCompressionMiddleware",
    "scrapy.downloadermiddlewares.redirect.RedirectMiddleware",
    "scrapy.downloadermiddlewares.cookies.CookiesMiddleware",  # COOKIES_ENABLED = False
    # pgy/ stats count calls; this one renders every request as raw HTTP to count bytes.
    "scrapy.downloadermiddlewares.stats.DownloaderStats",
    "scrapy.spidermiddlewares.httperror.HttpErrorMiddleware",  # codes are in the body
    "scrapy.spidermiddlewares.referer.RefererMiddleware",
    "scrapy.spidermiddlewares.urllength.UrlLengthMiddleware",
    "scrapy.spidermiddlewares.depth.DepthMiddleware",
    "scrapy.spidermiddlewares.metacopy.MetaCopyDetectionMiddleware",
    "scrapy.extensions.telnet.TelnetConsole",  # TELNETCONSOLE_ENABLED = False
    "scrapy.extensions.remote_control.RemoteControl",  # REMOTE_CONTROL_ENABLED = False
}
DOWNLOADER_MIDDLEWARES_BASE = {
    k: v for k, v in _scrapy.DOWNLOADER_MIDDLEWARES_BASE.items() if k not in _left_out
}
SPIDER_MIDDLEWARES_BASE = {
    k: v for k, v in _scrapy.SPIDER_MIDDLEWARES_BASE.items() if k not in _left_out
}
EXTENSIONS_BASE = {k: v for k, v in _scrapy.EXTENSIONS_BASE.items() if k not in _left_out}

# A callback yields at most one note: Scrapy's default (100) starts 100 asyncio tasks
# per response to process its output in parallel, about half of the crawl's CPU.
CONCURRENT_ITEMS = 1
# The run's accounting (ledger, failed file, summary, exit status) and its progress
# (a live display on a terminal, progress lines in the log, the outcome table).
EXTENSIONS = {
    "pgy_spider.extensions.accounting.RunAccounting": 100,
    "pgy_spider.extensions.progress.RunProgress": 110,
    # The garbage collector's first threshold raised while the engine runs: with hundreds
    # of calls in flight its default made collections ~40 % of the CPU.
    "pgy_spider.extensions.gctuning.GcTuning": 120,
}
# Scrapy's stats collector without its per-access deprecation shim (pgy_spider/stats.py):
# same stats, less CPU per note.
STATS_CLASS = "pgy_spider.stats.PgyStatsCollector"
# No "Crawled"/"Scraped from" DEBUG records built per note unless LOG_LEVEL is DEBUG.
LOG_FORMATTER = "pgy_spider.logformatter.QuietLogFormatter"
ITEM_PIPELINES = {
    "pgy_spider.pipelines.notes.NoteDedupPipeline": 200,
    "pgy_spider.pipelines.mongo.MongoPipeline": 300,
}

# Requests are deduplicated by note ID before they are made; the resume state is
# the run accounting's own (see pgy_spider/scheduler.py).
DUPEFILTER_CLASS = "scrapy.dupefilters.BaseDupeFilter"
SCHEDULER = "pgy_spider.scheduler.MemoryScheduler"

# Feeds: UTF-8, never \u escapes; CSV opens in Excel. With no -o/-O/FEEDS the
# spider writes PGY_FEED_URI as JSON lines.
FEED_EXPORT_ENCODING = "utf-8"
# %(job)s (Scrapyd's job id) and the run's %(time)s in feed URIs, as in PGY_FAILED_PATH.
FEED_URI_PARAMS = "pgy_spider.runtime.feed_uri_params"
# Local feed files written through at once (a kill loses no note counted as written) and
# stopping the run when a write fails.
FEED_STORAGES = {
    "": "pgy_spider.feedstorage.DurableFileFeedStorage",
    "file": "pgy_spider.feedstorage.DurableFileFeedStorage",
}
FEED_EXPORTERS = {
    "csv": "pgy_spider.exporters.ExcelCsvItemExporter",
    # Same output as Scrapy's JSON-lines exporter, ~10x cheaper per note (orjson).
    "jsonlines": "pgy_spider.exporters.OrjsonLinesItemExporter",
    "jsonl": "pgy_spider.exporters.OrjsonLinesItemExporter",
    "jl": "pgy_spider.exporters.OrjsonLinesItemExporter",
    # An Excel workbook (XlsxWriter, constant memory); imported only when one is written.
    "xlsx": "pgy_spider.xlsxexport.XlsxItemExporter",
}

LOG_LEVEL = "INFO"
