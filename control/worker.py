"""One SFU worker process (`balie serve --workers N` starts N of them).

It runs an `Sfu` and a small internal HTTP server on 127.0.0.1: the control plane relays each
participant's signalling over `/internal/rtc` (after checking the join token itself) and reads
`/internal/stats`. Media goes straight between browsers and this process. Only the control plane
may talk to it: every request carries the shared secret it was started with.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hmac
import ipaddress
import os
import sys
import time

from aiohttp import web

from common.childprocess import die_with_parent, serve_internal
from control.metrics import resident_memory_bytes
from control.signalling import (
    SignallingOptions,
    WebSocketSender,
    _fail,
    _receive_join,
    _relay,
)
from sfu.config import SfuConfig
from sfu.errors import SignallingError
from sfu.service import Sfu

SECRET_ENV = "BALIE_WORKER_SECRET"
SFU = web.AppKey("sfu", Sfu)
SECRET = web.AppKey("secret", str)


def _authorised(request: web.Request) -> bool:
    given = request.headers.get("Authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {request.app[SECRET]}".encode())


async def internal_rtc(request: web.Request) -> web.StreamResponse:
    if not _authorised(request):
        raise web.HTTPUnauthorized()
    options = SignallingOptions(join_timeout=10.0, heartbeat=None)
    ws = web.WebSocketResponse(max_msg_size=options.max_message_bytes * 4)
    await ws.prepare(request)
    send = WebSocketSender(ws)
    join = await _receive_join(ws, send, options)
    if join is None:
        return ws
    fields = [join.get(key) for key in ("room", "identity", "name", "role")]
    if not all(isinstance(value, str) and value for value in fields):
        await _fail(ws, send, SignallingError("bad_message", "internal join needs its fields"))
        return ws
    room, identity, name, role = (str(value) for value in fields)
    try:
        session = await request.app[SFU].join(room, identity, name, role, send)
    except SignallingError as exc:
        await _fail(ws, send, exc)
        return ws
    await _relay(ws, send, session, options)
    return ws


async def internal_stats(request: web.Request) -> web.StreamResponse:
    if not _authorised(request):
        raise web.HTTPUnauthorized()
    sfu = request.app[SFU]
    totals = sfu.counters()
    counters: dict[str, object] = {
        field.name: getattr(totals, field.name)
        for field in dataclasses.fields(totals)
        if field.name != "dropped"
    }
    counters["dropped"] = dict(totals.dropped)
    rooms = {room_id: sfu.room_snapshot(room_id) for room_id in list(sfu.rooms)}
    return web.json_response(
        {
            "gauges": sfu.gauges(),
            "counters": counters,
            "rooms": {key: value for key, value in rooms.items() if value is not None},
            "cpu_seconds": time.process_time(),
            "resident_memory_bytes": resident_memory_bytes(),
        }
    )


async def internal_recording(request: web.Request) -> web.StreamResponse:
    """Start or stop sending a room's media to the recorder: {room, recording_id|null, port}."""
    if not _authorised(request):
        raise web.HTTPUnauthorized()
    try:
        body = await request.json()
        room = body["room"]
        recording_id = body.get("recording_id")
        port = int(body.get("port") or 0)
    except (ValueError, KeyError, TypeError) as exc:
        raise web.HTTPBadRequest() from exc
    if not isinstance(room, str) or not (recording_id is None or isinstance(recording_id, str)):
        raise web.HTTPBadRequest()
    if recording_id is not None and not 0 < port < 65536:
        raise web.HTTPBadRequest()
    await request.app[SFU].set_recording(room, recording_id, port)
    return web.json_response({"status": "ok"})


async def health(request: web.Request) -> web.StreamResponse:
    return web.json_response({"status": "ok"})


def build_app(sfu: Sfu, secret: str) -> web.Application:
    app = web.Application()
    app[SFU] = sfu
    app[SECRET] = secret
    app.router.add_get("/internal/rtc", internal_rtc)
    app.router.add_get("/internal/stats", internal_stats)
    app.router.add_get("/internal/health", health)
    app.router.add_post("/internal/recording", internal_recording)

    async def close_sfu(app: web.Application) -> None:
        await app[SFU].close()

    app.on_shutdown.append(close_sfu)
    return app


async def serve(args: argparse.Namespace, secret: str) -> None:
    networks = tuple(ipaddress.ip_network(n) for n in args.allow_network)
    sfu = Sfu(
        SfuConfig(
            rtc_ips=tuple(args.rtc_ip),
            allowed_networks=networks,
            max_participants_per_room=args.max_participants,
        )
    )
    await serve_internal(build_app(sfu, secret), args.port, shutdown_timeout_s=5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="balie-worker")
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rtc-ip", action="append", required=True)
    parser.add_argument("--allow-network", action="append", required=True)
    parser.add_argument("--max-participants", type=int, default=32)
    args = parser.parse_args(argv)
    secret = os.environ.pop(SECRET_ENV, "")
    if len(secret) < 32:
        print("balie-worker: no secret from the control plane", file=sys.stderr)
        return 2
    die_with_parent()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(args, secret))
    return 0


if __name__ == "__main__":
    sys.exit(main())
