"""One SFU worker process per core, supervised by the control plane.

Python runs one core per process, so `balie serve --workers N` starts N worker processes
(control/worker.py). Each room lives on one worker (control/placement.py); the control plane checks
join tokens itself and relays the page's signalling to the room's worker. A worker that dies is
started again; its participants' pages see their socket close (1012, service restart) and
reconnect by themselves, landing on a worker that is up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from common.ports import free_port
from control.placement import Placement
from control.sfu_types import Message, Send
from control.worker import SECRET_ENV
from sfu.config import IPNetwork
from sfu.errors import SignallingError
from sfu.metrics import MediaCounters

log = logging.getLogger(__name__)

CLOSE_SERVICE_RESTART = 1012
POLL_INTERVAL_S = 1.0
START_TIMEOUT_S = 20.0
RESTART_DELAY_S = 0.5


@dataclass
class Worker:
    index: int
    port: int = 0
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class RemoteSession:
    """A participant's session on a worker, relayed over one WebSocket."""

    def __init__(
        self,
        sfu: RemoteSfu,
        worker: int,
        room: str,
        ws: aiohttp.ClientWebSocketResponse,
        send: Send,
        participant_id: str,
    ) -> None:
        self._sfu = sfu
        self._worker = worker
        self._room = room
        self._ws = ws
        self._send = send
        self._participant_id = participant_id
        self._close_code = CLOSE_SERVICE_RESTART
        self._closed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @property
    def participant_id(self) -> str:
        return self._participant_id

    @property
    def close_code(self) -> int:
        return self._close_code

    async def _read(self) -> None:
        try:
            async for frame in self._ws:
                if frame.type != aiohttp.WSMsgType.TEXT:
                    break
                await self._send(json.loads(frame.data))
        except (aiohttp.ClientError, ConnectionError, ValueError):
            pass
        finally:
            code = self._ws.close_code
            # A worker that vanished closes abnormally: tell the page to come back.
            self._close_code = (
                code if code is not None and code not in (1006, 1011) else (CLOSE_SERVICE_RESTART)
            )
            self._sfu.placement.release(self._room)
            self._sfu.forget(self)
            self._closed.set()

    async def handle_message(self, message: Message) -> None:
        if self._ws.closed:
            return
        with contextlib.suppress(ConnectionError, RuntimeError, aiohttp.ClientError):
            await self._ws.send_str(json.dumps(message))

    async def signalling_lost(self) -> None:
        # Closing without "leave": the worker keeps the participant for its grace period.
        await self._ws.close(code=4000)
        await self._stop_reader()

    async def close(self, reason: str = "left") -> None:
        if not self._ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError, aiohttp.ClientError):
                await self._ws.send_str(json.dumps({"type": "leave"}))
            await self._ws.close()
        await self._stop_reader()

    async def _stop_reader(self) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._reader), 5)
        if not self._reader.done():
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def wait_closed(self) -> None:
        await self._closed.wait()


class RemoteSfu:
    """The control plane's view of N worker processes, with the `SfuLike` interface."""

    def __init__(
        self,
        workers: int,
        rtc_ips: tuple[str, ...],
        allowed_networks: tuple[IPNetwork, ...],
        max_participants: int,
    ) -> None:
        self.placement = Placement(workers)
        self._workers = [Worker(index) for index in range(workers)]
        self._rtc_ips = rtc_ips
        self._networks = allowed_networks
        self._max_participants = max_participants
        self._secret = secrets.token_hex(32)
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._sessions: set[RemoteSession] = set()
        self._closing = False
        self._recordings: dict[str, tuple[str, int]] = {}  # room -> (recording id, port)

    @property
    def worker_count(self) -> int:
        return len(self._workers)

    def worker_pids(self) -> list[int | None]:
        return [w.process.pid if w.process else None for w in self._workers]

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(headers={"Authorization": f"Bearer {self._secret}"})
        await asyncio.gather(*(self._start_worker(worker) for worker in self._workers))
        for worker in self._workers:
            self._tasks.append(asyncio.create_task(self._supervise(worker)))
        self._tasks.append(asyncio.create_task(self._poll()))

    async def _start_worker(self, worker: Worker) -> None:
        worker.port = free_port()
        command = [sys.executable, "-m", "control.worker", "--index", str(worker.index)]
        command += ["--port", str(worker.port), "--max-participants", str(self._max_participants)]
        for ip in self._rtc_ips:
            command += ["--rtc-ip", ip]
        for network in self._networks:
            command += ["--allow-network", str(network)]
        env = dict(os.environ)
        env[SECRET_ENV] = self._secret
        # Its own session: a Ctrl-C for the whole process group must not reach it behind the
        # supervisor's back (it stops with `close()`, or with this process: PR_SET_PDEATHSIG).
        worker.process = await asyncio.create_subprocess_exec(
            *command, env=env, start_new_session=True
        )
        assert self._session is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if worker.process.returncode is not None:
                break
            if await self._get(worker, "/internal/health", 1.0) is not None:
                for room_id, (recording_id, port) in list(self._recordings.items()):
                    await self._post_recording(worker, room_id, recording_id, port)
                self.placement.up(worker.index)
                return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"SFU worker {worker.index} did not start")

    async def _supervise(self, worker: Worker) -> None:
        """Restart a worker that stops while the server keeps running."""
        while not self._closing:
            assert worker.process is not None
            code = await worker.process.wait()
            if self._closing:
                return
            rooms = self.placement.down(worker.index)
            log.error(
                "SFU worker %d stopped (exit %s); restarting; %d rooms move",
                worker.index,
                code,
                len(rooms),
            )
            worker.stats = {}
            await asyncio.sleep(min(5.0, RESTART_DELAY_S * (1 + worker.restarts)))
            worker.restarts += 1
            try:
                await self._start_worker(worker)
            except RuntimeError:
                log.exception("SFU worker %d could not be restarted", worker.index)

    async def _poll(self) -> None:
        assert self._session is not None
        while not self._closing:
            for worker in self._workers:
                if not self.placement.is_up(worker.index):
                    continue
                stats = await self._get(worker, "/internal/stats", 2.0)
                if stats is not None:
                    worker.stats = stats
                    self.placement.reported(worker.index, set(stats.get("rooms") or {}))
            await asyncio.sleep(POLL_INTERVAL_S)

    async def _get(self, worker: Worker, path: str, timeout_s: float) -> dict[str, Any] | None:
        """A worker's JSON answer, or None when it does not answer well."""
        assert self._session is not None
        try:
            async with self._session.get(
                f"{worker.url}{path}", timeout=aiohttp.ClientTimeout(total=timeout_s)
            ) as response:
                if response.status != 200:
                    return None
                body = await response.json()
                return body if isinstance(body, dict) else None
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None

    async def set_recording(self, room_id: str, recording_id: str | None, port: int = 0) -> None:
        """Every worker learns it, so the room is recorded wherever it is placed (now or later)."""
        if recording_id is None:
            self._recordings.pop(room_id, None)
        else:
            self._recordings[room_id] = (recording_id, port)
        for worker in self._workers:
            if self.placement.is_up(worker.index):
                await self._post_recording(worker, room_id, recording_id, port)

    async def _post_recording(
        self, worker: Worker, room_id: str, recording_id: str | None, port: int
    ) -> None:
        assert self._session is not None
        body = {"room": room_id, "recording_id": recording_id, "port": port}
        try:
            async with self._session.post(
                f"{worker.url}/internal/recording",
                json=body,
                timeout=aiohttp.ClientTimeout(total=5),
            ) as response:
                if response.status != 200:
                    log.error("worker %d refused a recording change", worker.index)
        except (aiohttp.ClientError, TimeoutError):
            # A worker that is down learns it when it is started again.
            log.warning("worker %d did not take a recording change", worker.index)

    async def join(
        self, room_id: str, identity: str, name: str, role: str, send: Send
    ) -> RemoteSession:
        index = self.placement.worker_for(room_id)
        if index is None or self._session is None:
            raise SignallingError(
                "server_busy", "the server is restarting; try again", close_code=4503
            )
        worker = self._workers[index]
        try:
            ws = await self._session.ws_connect(f"{worker.url}/internal/rtc", heartbeat=None)
            await ws.send_str(
                json.dumps(
                    {
                        "type": "join",
                        "room": room_id,
                        "identity": identity,
                        "name": name,
                        "role": role,
                    }
                )
            )
            first = await ws.receive(timeout=15)
        except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
            self.placement.release(room_id)
            raise SignallingError(
                "server_busy", "the server is restarting; try again", close_code=4503
            ) from exc
        if first.type != aiohttp.WSMsgType.TEXT:
            await ws.close()
            self.placement.release(room_id)
            raise SignallingError("server_busy", "the server is restarting", close_code=4503)
        message = json.loads(first.data)
        if message.get("type") == "error":
            await ws.close()
            self.placement.release(room_id)
            raise SignallingError(
                str(message.get("code")),
                str(message.get("message")),
                close_code=4429 if message.get("code") == "room_full" else 4400,
            )
        await send(message)
        participant = message.get("participant") or {}
        session = RemoteSession(self, index, room_id, ws, send, str(participant.get("id", "")))
        self._sessions.add(session)
        return session

    def forget(self, session: RemoteSession) -> None:
        self._sessions.discard(session)

    def room_snapshot(self, room_id: str) -> dict[str, Any] | None:
        for worker in self._workers:
            rooms = worker.stats.get("rooms") or {}
            if room_id in rooms:
                snapshot: dict[str, Any] = rooms[room_id]
                return snapshot
        return None

    def counters(self) -> MediaCounters:
        totals = MediaCounters()
        for worker in self._workers:
            values = dict(worker.stats.get("counters") or {})
            if not values:
                continue
            dropped = values.pop("dropped", {})
            part = MediaCounters(**values)
            part.dropped.update(dropped)
            totals.add(part)
        return totals

    def gauges(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for worker in self._workers:
            for key, value in (worker.stats.get("gauges") or {}).items():
                totals[key] = totals.get(key, 0) + int(value)
        return totals

    def worker_usage(self) -> list[tuple[str, float, int | None]]:
        """(worker label, CPU seconds, resident memory bytes) of each worker process."""
        usage = []
        for worker in self._workers:
            if worker.stats:
                usage.append(
                    (
                        str(worker.index),
                        float(worker.stats.get("cpu_seconds", 0.0)),
                        worker.stats.get("resident_memory_bytes"),
                    )
                )
        return usage

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        for session in list(self._sessions):
            await session.close("server_shutdown")
        for worker in self._workers:
            if worker.process is not None and worker.process.returncode is None:
                worker.process.terminate()
        for worker in self._workers:
            if worker.process is not None:
                try:
                    await asyncio.wait_for(worker.process.wait(), 10)
                except TimeoutError:
                    worker.process.kill()
                    await worker.process.wait()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()
