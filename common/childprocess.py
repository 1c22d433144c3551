"""Start-up of child processes (SFU workers, the recorder): dying with the parent, freezing
start-up objects, serving an internal API on 127.0.0.1."""

from __future__ import annotations

import asyncio
import ctypes
import gc
import signal

from aiohttp import web

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Linux: get SIGTERM when the parent goes away, even when it was killed."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def freeze_startup_objects() -> None:
    """Keep what start-up made (modules, classes, functions) out of the garbage collector's scans.

    A full collection scans every tracked object; the tens of thousands made at start-up live
    for ever, and scanning them each time is pause (delay for every packet arriving meanwhile).
    """
    gc.collect()
    gc.freeze()


async def serve_internal(app: web.Application, port: int, shutdown_timeout_s: float = 60) -> None:
    """Serve `app` on 127.0.0.1:`port` until SIGTERM or SIGINT, then clean up."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout_s)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    freeze_startup_objects()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
