"""The recorder process (`balie recorder`), started and supervised by `balie serve`.

The recorder runs apart from the SFU and the control plane, so that a crash there never
disturbs a call. It listens on 127.0.0.1 only and takes requests only with the per-start secret.
When it dies it is started again and every recording that was active continues in a new segment
(`on_restart`); the SFU keeps sending to the same UDP ports meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from common.ports import free_port
from control.recordings import RecordingRecord

log = logging.getLogger(__name__)

SECRET_ENV = "BALIE_RECORDER_SECRET"
KEY_ENV = "BALIE_RECORDING_KEY"
START_TIMEOUT_S = 20.0
REQUEST_TIMEOUT_S = 15.0


class RecorderUnavailable(Exception):
    """The recorder did not take the request."""


class RecorderProcess:
    def __init__(
        self,
        key_hex: str,
        on_restart: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._key_hex = key_hex
        self._secret = secrets.token_hex(32)
        self.on_restart = on_restart
        self.port = 0
        self.process: asyncio.subprocess.Process | None = None
        self._restarts = 0
        self._session: aiohttp.ClientSession | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False
        self._ready = asyncio.Event()

    @property
    def restarts(self) -> int:
        return self._restarts

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(headers={"Authorization": f"Bearer {self._secret}"})
        await self._spawn()
        self._supervisor = asyncio.create_task(self._supervise())

    async def _spawn(self) -> None:
        self._ready.clear()
        self.port = free_port()
        command = [sys.executable, "-m", "recorder.service", "--port", str(self.port)]
        env = dict(os.environ)
        env[SECRET_ENV] = self._secret
        env[KEY_ENV] = self._key_hex
        # Its own session: a Ctrl-C in the terminal (sent to the whole process group) must not
        # stop it behind the supervisor's back; `close()` stops it, and it stops by itself when
        # this process dies (PR_SET_PDEATHSIG).
        self.process = await asyncio.create_subprocess_exec(
            *command, env=env, start_new_session=True
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.returncode is not None:
                break
            if await self._request("GET", "/internal/health", None, 1.0) is not None:
                self._ready.set()
                return
            await asyncio.sleep(0.1)
        raise RuntimeError("the recorder did not start")

    async def _supervise(self) -> None:
        while not self._closing:
            assert self.process is not None
            code = await self.process.wait()
            if self._closing:
                return
            self._ready.clear()
            log.error("recorder stopped (exit %s); restarting", code)
            self._restarts += 1
            await asyncio.sleep(min(5.0, 0.2 * self._restarts))
            try:
                await self._spawn()
            except RuntimeError:
                log.exception("the recorder could not be restarted")
                continue
            if self.on_restart is not None:
                try:
                    await self.on_restart()
                except Exception:
                    log.exception("recordings could not be resumed after a recorder restart")

    async def _request(
        self, method: str, path: str, body: dict[str, Any] | None, timeout_s: float
    ) -> dict[str, Any] | None:
        if self._session is None:
            return None
        try:
            async with self._session.request(
                method,
                f"http://127.0.0.1:{self.port}{path}",
                json=body,
                timeout=aiohttp.ClientTimeout(total=timeout_s),
            ) as response:
                if response.status != 200:
                    return None
                value = await response.json()
                return value if isinstance(value, dict) else None
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None

    async def _wait_ready(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), START_TIMEOUT_S)

    async def begin(self, record: RecordingRecord, directory: Path) -> None:
        await self._wait_ready()
        body = {"record": record.to_json(), "directory": str(directory)}
        answer = await self._request(
            "POST", f"/internal/recordings/{record.id}/begin", body, REQUEST_TIMEOUT_S
        )
        if answer is None:
            raise RecorderUnavailable("the recorder did not start the recording")

    async def end(self, record: RecordingRecord, directory: Path) -> None:
        body = {"record": record.to_json(), "directory": str(directory)}
        answer = None
        if self._ready.is_set():
            answer = await self._request(
                "POST", f"/internal/recordings/{record.id}/end", body, REQUEST_TIMEOUT_S
            )
        if answer is None:
            # The recorder is down: what it wrote is on disk; seal the manifest from here.
            from recorder.archive import finalise_recording

            await asyncio.to_thread(
                finalise_recording, directory, record.to_json(), bytes.fromhex(self._key_hex)
            )

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        if self._session is not None:
            await self._session.close()
