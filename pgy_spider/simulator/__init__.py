"""Offline simulator of Just One API's "Xiaohongshu PGY - Note Details (V1)" endpoint.

Tests, the README demo and the benchmark run against this server instead of the paid API, so it
reproduces the endpoint's documented contract: the JSON envelope, the business codes, billing,
quotas and the transport-level failures a real client meets. It must never be the bottleneck of a
benchmark, hence one aiohttp process, no logging on the request path, and a success path that
serialises nothing per call: each note's JSON is built once and an answer joins it with its
metrics, ``recordTime`` and ``requestId``.

Run ``python -m pgy_spider.simulator --help``. Once listening it prints exactly one line,
``PGY_SIMULATOR_URL=http://HOST:PORT``, to stdout.

Admin routes (never delayed, never counted): ``GET /_sim/stats``, ``GET /_sim/totals`` (the
stats without the per-note and per-token maps, to poll during a run), ``GET|POST /_sim/config``
and ``POST /_sim/reset``. ``GET /seeds/<relpath>`` serves ``--seeds-dir`` when given.

Modules, one concern each: ``config`` (defaults, validation), ``faults`` (the config as a fault
plan), ``notes`` (deterministic note generation), ``endpoint`` (state, counters and the decision
order), ``server`` (the aiohttp app, its handlers and the command line).
"""

from pgy_spider.simulator.config import (
    BUSINESS_RATES,
    DEFAULT_CONFIG,
    HTTP_FAULTS,
    VALIDATORS,
    ConfigError,
    validate_config,
)
from pgy_spider.simulator.endpoint import (
    API_PATH,
    BILLED_CODES,
    HTML_502,
    MALFORMED_BODY,
    MESSAGES,
    OPENAPI_STATUS,
    Answer,
    Simulator,
    Stats,
)
from pgy_spider.simulator.faults import Plan
from pgy_spider.simulator.notes import (
    KOLS,
    base_note,
    invalid_note,
    is_note_id,
    render_note,
)
from pgy_spider.simulator.server import (
    JSON_HEADERS,
    SIM_KEY,
    main,
    make_app,
    parse_args,
    serve,
    startup_config,
)

__all__ = [
    "API_PATH",
    "BILLED_CODES",
    "BUSINESS_RATES",
    "DEFAULT_CONFIG",
    "HTML_502",
    "HTTP_FAULTS",
    "JSON_HEADERS",
    "KOLS",
    "MALFORMED_BODY",
    "MESSAGES",
    "OPENAPI_STATUS",
    "SIM_KEY",
    "VALIDATORS",
    "Answer",
    "ConfigError",
    "Plan",
    "Simulator",
    "Stats",
    "base_note",
    "invalid_note",
    "is_note_id",
    "main",
    "make_app",
    "parse_args",
    "render_note",
    "serve",
    "startup_config",
    "validate_config",
]
