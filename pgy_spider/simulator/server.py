"""The HTTP layer and the command line: the aiohttp app, its handlers, ``serve`` and ``main``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from pgy_spider.simulator.config import ConfigError, validate_config
from pgy_spider.simulator.endpoint import API_PATH, Answer, Simulator

DESCRIPTION = 'Offline simulator of Just One API\'s "Xiaohongshu PGY - Note Details (V1)" endpoint.'
JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}

SIM_KEY = web.AppKey("simulator", Simulator)


def _abort(request: web.Request) -> None:
    """Drop the connection with a TCP RST (SO_LINGER 0), as a crashed upstream proxy would."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def _to_response(request: web.Request, answer: Answer) -> web.Response:
    if answer.reset:
        _abort(request)
        # aiohttp notices the closed transport and silently drops this response.
        return web.Response(status=499)
    if answer.status == 502:
        return web.Response(status=502, body=answer.body, content_type="text/html")
    return web.Response(status=answer.status, body=answer.body, headers=JSON_HEADERS)


async def api_handler(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    sim.in_flight += 1
    sim.stats.max_concurrency = max(sim.stats.max_concurrency, sim.in_flight)
    try:
        delay = sim.latency()
        if delay:
            await asyncio.sleep(delay)
        query = request.query
        token = query.get("token", "")
        note_id = query.get("noteId", "")
        fault = sim.draw_http_fault()
        if fault == "slow":
            await asyncio.sleep(sim.plan.slow_seconds)
        elif fault is not None:
            return _to_response(request, sim.fault_answer(fault, token, note_id))
        return _to_response(request, sim.answer(token, note_id))
    finally:
        sim.in_flight -= 1


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(payload), headers=JSON_HEADERS)


async def stats_handler(request: web.Request) -> web.Response:
    return _json(request.app[SIM_KEY].stats.as_json())


async def totals_handler(request: web.Request) -> web.Response:
    return _json(request.app[SIM_KEY].stats.totals())


async def calls_handler(request: web.Request) -> web.Response:
    """The call log (config ``call_log``): ``t`` seconds since the reset, token, code."""
    calls = request.app[SIM_KEY].calls
    return _json([{"t": t, "token": token, "code": code} for t, token, code in calls])


async def get_config_handler(request: web.Request) -> web.Response:
    return _json(request.app[SIM_KEY].config)


async def post_config_handler(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    try:
        sim.configure(orjson.loads(await request.read()))
    except (ConfigError, orjson.JSONDecodeError) as exc:
        return _json({"error": str(exc)}, status=400)
    return _json(sim.config)


# How long a reset waits for the calls still being answered (a client killed mid-call
# leaves some): counted after the reset, they would land in the next test's figures.
RESET_DRAIN_SECONDS = 8.0


async def reset_handler(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    deadline = asyncio.get_running_loop().time() + RESET_DRAIN_SECONDS
    while sim.in_flight > 0 and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)
    sim.reset()
    return _json(sim.config)


def make_app(startup: Mapping[str, Any], seeds_dir: Path | None = None) -> web.Application:
    app = web.Application()
    app[SIM_KEY] = Simulator(startup)
    app.router.add_get(API_PATH, api_handler)
    app.router.add_get("/_sim/stats", stats_handler)
    app.router.add_get("/_sim/totals", totals_handler)
    app.router.add_get("/_sim/calls", calls_handler)
    app.router.add_get("/_sim/config", get_config_handler)
    app.router.add_post("/_sim/config", post_config_handler)
    app.router.add_post("/_sim/reset", reset_handler)
    if seeds_dir is not None:
        app.router.add_static("/seeds", seeds_dir)
    return app


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pgy_spider.simulator", description=DESCRIPTION)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--tokens", default="demo-token", help="comma-separated valid tokens")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0, help="seed of the random fault draws")
    parser.add_argument("--quota", type=int, default=None, help="successful calls per token")
    parser.add_argument("--config", default=None, help="initial config, as POST /_sim/config")
    parser.add_argument("--seeds-dir", type=Path, default=None, help="served under /seeds/")
    args = parser.parse_args(argv)
    try:
        args.startup = startup_config(args)
    except (ConfigError, orjson.JSONDecodeError) as exc:
        parser.error(f"--config: {exc}")
    if args.seeds_dir is not None and not args.seeds_dir.is_dir():
        parser.error(f"--seeds-dir: not a directory: {args.seeds_dir}")
    return args


def startup_config(args: argparse.Namespace) -> dict[str, Any]:
    """CLI flags first, then --config on top: the JSON is the more specific statement."""
    cfg: dict[str, Any] = {
        "tokens": args.tokens,
        "latency_ms": args.latency_ms,
        "seed": args.seed,
        "quota": args.quota,
    }
    if args.config:
        cfg.update(orjson.loads(args.config))
    return validate_config(cfg)


async def serve(args: argparse.Namespace) -> None:
    runner = web.AppRunner(
        make_app(args.startup, args.seeds_dir), access_log=None, shutdown_timeout=1.0
    )
    await runner.setup()
    # Handlers go in before the URL line: a caller may signal as soon as it has read it.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await web.TCPSite(runner, args.host, args.port).start()
        host, port = runner.addresses[0][:2]
        shown = f"[{host}]" if ":" in host else host
        print(f"PGY_SIMULATOR_URL=http://{shown}:{port}", flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    asyncio.run(serve(parse_args(argv)))
    return 0
