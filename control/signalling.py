"""The /rtc WebSocket: authenticates the join and relays signalling between page and SFU.

Protocol: docs/signalling.md. The token arrives in the first message and is never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from control.appkeys import SETTINGS_KEY, SFU_KEY, STORE_KEY
from control.sfu_types import Message, SessionLike
from control.tokens import TokenError, verify_join_token
from sfu.errors import SignallingError

log = logging.getLogger(__name__)

CLOSE_BAD_INPUT = 4400
CLOSE_TOKEN = 4401
CLOSE_JOIN_TIMEOUT = 4408


@dataclass(frozen=True, slots=True)
class SignallingOptions:
    join_timeout: float = 10.0
    # Largest message accepted, in bytes of UTF-8.
    max_message_bytes: int = 256 * 1024
    # WebSocket ping interval; a page that stops answering is treated as gone.
    heartbeat: float | None = 20.0


SIGNALLING_OPTIONS_KEY = web.AppKey("signalling_options", SignallingOptions)


class WebSocketSender:
    """`send(message)` for the SFU: JSON over the socket, silent once the socket is closed."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self._ws = ws

    async def __call__(self, message: Message) -> None:
        if self._ws.closed:
            return
        data = json.dumps(message)
        try:
            await self._ws.send_str(data)
        except (ConnectionError, RuntimeError):
            # The page went away while we were sending; the read loop notices the close.
            pass


def parse_message(data: str, max_bytes: int) -> Message:
    """Parse one text frame. Raises SignallingError (bad_message / bad_json)."""
    if len(data) > max_bytes or (len(data) * 4 > max_bytes and len(data.encode()) > max_bytes):
        raise SignallingError(
            "bad_message", f"message larger than {max_bytes} bytes", close_code=CLOSE_BAD_INPUT
        )
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        raise SignallingError(
            "bad_json", "message is not valid JSON", close_code=CLOSE_BAD_INPUT
        ) from None
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise SignallingError(
            "bad_json",
            "message must be a JSON object with a string type",
            close_code=CLOSE_BAD_INPUT,
        )
    return value


def _binary_error() -> SignallingError:
    return SignallingError(
        "bad_message", "binary messages are not accepted", close_code=CLOSE_BAD_INPUT
    )


async def _fail(ws: web.WebSocketResponse, send: WebSocketSender, error: SignallingError) -> None:
    """Send `error` to the page and, if it is fatal, close the socket with its close code."""
    await send(error.to_message())
    if error.fatal:
        await ws.close(code=error.close_code, message=error.code.encode("utf-8"))


async def rtc_handler(request: web.Request) -> web.StreamResponse:
    options = request.app[SIGNALLING_OPTIONS_KEY]
    ws = web.WebSocketResponse(
        heartbeat=options.heartbeat,
        # aiohttp drops bigger frames itself (close 1009); smaller oversized ones get an error.
        max_msg_size=options.max_message_bytes * 4,
    )
    await ws.prepare(request)
    send = WebSocketSender(ws)
    try:
        await _serve(request, ws, send, options)
    except Exception:
        log.exception("signalling failed")
        if not ws.closed:
            await ws.close(code=WSCloseCode.INTERNAL_ERROR)
    return ws


async def _serve(
    request: web.Request,
    ws: web.WebSocketResponse,
    send: WebSocketSender,
    options: SignallingOptions,
) -> None:
    join = await _receive_join(ws, send, options)
    if join is None:
        return
    token = join.get("token")
    try:
        claims = verify_join_token(request.app[SETTINGS_KEY].token_secret, token)
    except TokenError as exc:
        await _fail(ws, send, SignallingError(exc.code, exc.message, close_code=CLOSE_TOKEN))
        return
    await request.app[STORE_KEY].ensure(claims.room)
    try:
        session = await request.app[SFU_KEY].join(
            claims.room, claims.identity, claims.name, claims.role, send
        )
    except SignallingError as exc:
        await _fail(ws, send, exc)
        return
    log.info("participant %s joined room %s", session.participant_id, claims.room)
    await _relay(ws, send, session, options)


async def _receive_join(
    ws: web.WebSocketResponse, send: WebSocketSender, options: SignallingOptions
) -> Message | None:
    """Wait for the join message. Returns None if the socket was closed instead."""
    try:
        msg = await ws.receive(timeout=options.join_timeout)
    except TimeoutError:
        error = SignallingError(
            "join_timeout",
            f"no join message within {options.join_timeout:g} seconds",
            close_code=CLOSE_JOIN_TIMEOUT,
        )
        await _fail(ws, send, error)
        return None
    if msg.type is WSMsgType.BINARY:
        await _fail(ws, send, _binary_error())
        return None
    if msg.type is not WSMsgType.TEXT:
        return None  # closed or broken before joining
    try:
        message = parse_message(msg.data, options.max_message_bytes)
    except SignallingError as exc:
        await _fail(ws, send, exc)
        return None
    if message["type"] != "join":
        error = SignallingError(
            "join_required", "the first message must be join", close_code=CLOSE_BAD_INPUT
        )
        await _fail(ws, send, error)
        return None
    return message


class _SessionWatch:
    """Closes the socket when the SFU ends the session."""

    def __init__(self, session: SessionLike, ws: web.WebSocketResponse) -> None:
        self.ended = False
        self._session = session
        self._ws = ws
        self.task = asyncio.create_task(self._run(), name=f"rtc-watch-{session.participant_id}")

    async def _run(self) -> None:
        await self._session.wait_closed()
        self.ended = True
        await self._ws.close(code=self._session.close_code)

    async def stop(self) -> None:
        """Let a close that is under way finish; otherwise stop watching."""
        if not self.ended:
            self.task.cancel()
        # gather() returns the task's own cancellation as a result but lets ours through.
        (result,) = await asyncio.gather(self.task, return_exceptions=True)
        if isinstance(result, Exception):
            log.error("closing the socket after the session ended failed: %r", result)


async def _relay(
    ws: web.WebSocketResponse,
    send: WebSocketSender,
    session: SessionLike,
    options: SignallingOptions,
) -> None:
    watch = _SessionWatch(session, ws)
    try:
        await _read_loop(ws, send, session, options)
    finally:
        # Also when this handler is cancelled (the connection dropped): the SFU must hear of it.
        await _run_to_end(_finish(ws, session, watch))


async def _read_loop(
    ws: web.WebSocketResponse,
    send: WebSocketSender,
    session: SessionLike,
    options: SignallingOptions,
) -> None:
    async for msg in ws:
        if msg.type is WSMsgType.BINARY:
            await _fail(ws, send, _binary_error())
            return
        if msg.type is not WSMsgType.TEXT:
            return  # ERROR: aiohttp has already closed the socket
        try:
            message = parse_message(msg.data, options.max_message_bytes)
            await session.handle_message(message)
        except SignallingError as exc:
            await _fail(ws, send, exc)
            if exc.fatal:
                # Bad input ends this participant at once; nobody else is affected.
                await session.close("error")
                return


async def _finish(ws: web.WebSocketResponse, session: SessionLike, watch: _SessionWatch) -> None:
    await watch.stop()
    if watch.ended:
        return
    if not ws.closed:
        with contextlib.suppress(Exception):
            await ws.close(code=WSCloseCode.INTERNAL_ERROR)
    # The page is gone without "leave": the SFU keeps it for a grace period.
    await session.signalling_lost()
    log.info("participant %s lost its signalling connection", session.participant_id)


async def _run_to_end(coro: Coroutine[Any, Any, None]) -> None:
    """Run `coro` to completion even if the current task is cancelled meanwhile.

    A cancellation that arrives while waiting is raised again once `coro` has finished, so no
    task is left running behind the caller's back.
    """
    task = asyncio.ensure_future(coro)
    cancelled = False
    while True:
        try:
            await asyncio.shield(task)
            break
        except asyncio.CancelledError:
            if task.done():
                raise
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
