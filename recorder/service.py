"""The recorder process: `balie recorder` (started and supervised by `balie serve`).

For each recording it listens on a UDP port on 127.0.0.1 for the SFU's plain RTP/RTCP and track
announcements (sfu/recording_tap.py), feeds a `RecordingSession` (the synchronous core) and sends
its keyframe requests back. A small internal HTTP API on 127.0.0.1 (only with the secret the
control plane started it with) begins and ends recordings. Everything it needs after a crash is
on disk: a restarted recorder continues a recording in a new segment when asked to begin again.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from aiohttp import web

from common.childprocess import die_with_parent, serve_internal
from recorder.archive import (
    finalise_recording,
    iso_to_unix,
    merge_tracks,
    previous_state,
    recording_manifest,
    segment_files,
    track_from_dict,
)
from recorder.manifest import MANIFEST_NAME, write_manifest
from recorder.session import RecordingSession, TrackInfo

log = logging.getLogger("recorder")

SECRET_ENV = "BALIE_RECORDER_SECRET"
KEY_ENV = "BALIE_RECORDING_KEY"
ANNOUNCE_TYPE = "balie-recording-tracks"
POLL_INTERVAL_S = 0.1
MANIFEST_INTERVAL_S = 5.0
MAX_ANNOUNCED_TRACKS = 128


class ActiveRecording(asyncio.DatagramProtocol):
    """One recording: its UDP socket, its session and its live manifest."""

    def __init__(self, record: dict[str, Any], directory: Path, key: bytes) -> None:
        self.record = record
        self.id = str(record["id"])
        self.directory = directory
        self.key = key
        started = float(
            record.get("started_unix_s") or iso_to_unix(str(record["started_at"])) or time.time()
        )
        self.session = RecordingSession(
            directory, key, recording_id=self.id, start_unix_s=started, fsync=True
        )
        self._tracks: dict[int, TrackInfo] = {}
        # What an earlier run of this recording (before a restart) saw stays in the manifest.
        self._earlier_tracks, earlier_participants = previous_state(directory)
        self.participants: dict[str, dict[str, Any]] = {p["id"]: p for p in earlier_participants}
        self._transport: asyncio.DatagramTransport | None = None
        self._sfu_address: tuple[Any, ...] | None = None
        self._task: asyncio.Task[None] | None = None
        self.bad_announcements = 0
        self.failed = False
        self._closed = False

    async def open(self, port: int) -> None:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, local_addr=("127.0.0.1", port))
        self.write_manifest()
        self._task = asyncio.create_task(self._run())

    # -- datagrams ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        if self._closed or self.failed:
            return
        now = time.time()
        try:
            if data[:1] == b"{":
                self._announcement(data, now)
                return
            if len(data) < 12 or data[0] & 0xC0 != 0x80:
                return
            self._sfu_address = addr
            if 191 < data[1] < 224:
                replies = self.session.on_rtcp(data, now)
            else:
                replies = self.session.on_rtp(data, now)
        except Exception:
            # A write error (disk full, ...) ends this recording, never the process.
            log.exception("recording %s failed", self.id)
            self.failed = True
            return
        transport = self._transport
        if transport is not None:
            for reply in replies:
                transport.sendto(reply, addr)

    def _announcement(self, data: bytes, now: float) -> None:
        try:
            message = json.loads(data)
            if message.get("type") != ANNOUNCE_TYPE or message.get("recording_id") != self.id:
                raise ValueError("not ours")
            announced = message["tracks"][:MAX_ANNOUNCED_TRACKS]
            tracks = {int(t["ssrc"]): (track_from_dict(t), t) for t in announced}
        except (ValueError, KeyError, TypeError, AttributeError):
            self.bad_announcements += 1
            return
        for ssrc, (info, raw) in tracks.items():
            if ssrc not in self._tracks:
                self.session.add_track(info)
                self._tracks[ssrc] = info
                participant = self.participants.setdefault(
                    info.participant_id,
                    {
                        "id": info.participant_id,
                        "name": str(raw.get("name") or ""),
                        "role": info.role,
                        "first_seen_unix_s": now,
                    },
                )
                participant["last_seen_unix_s"] = None
        for ssrc in [s for s in self._tracks if s not in tracks]:
            info = self._tracks.pop(ssrc)
            self.session.remove_track(ssrc)
            if not any(t.participant_id == info.participant_id for t in self._tracks.values()):
                self.participants[info.participant_id]["last_seen_unix_s"] = now

    # -- housekeeping ------------------------------------------------------------------------

    async def _run(self) -> None:
        next_manifest = time.monotonic() + MANIFEST_INTERVAL_S
        while True:
            await asyncio.sleep(POLL_INTERVAL_S)
            if self.failed:
                continue
            try:
                replies = self.session.poll(time.time())
                if replies and self._transport is not None and self._sfu_address is not None:
                    for reply in replies:
                        self._transport.sendto(reply, self._sfu_address)
                if time.monotonic() >= next_manifest:
                    next_manifest = time.monotonic() + MANIFEST_INTERVAL_S
                    self.write_manifest()
            except Exception:
                log.exception("recording %s failed", self.id)
                self.failed = True

    def _segments(self) -> list[Any]:
        """Closed segments: this run's summaries, and earlier runs' files (before a restart).

        The segment being written is left out of a live manifest: its hash would not hold.
        """
        closed = list(self.session.segments)
        names = {summary.path.name for summary in closed}
        current = self.session.current_segment
        if current is not None:
            names.add(current.name)
        earlier = [p for p in segment_files(self.directory) if p.name not in names]
        return [*earlier, *closed]

    def write_manifest(self, *, live: bool = True) -> dict[str, Any]:
        manifest = recording_manifest(
            self.record,
            self.directory,
            self.key,
            merge_tracks(self._earlier_tracks, self.session.tracks),
            list(self.participants.values()),
            self._segments(),
            live=live,
            recorder_restarts=int(self.record.get("recorder_restarts") or 0),
        )
        write_manifest(manifest, self.directory / MANIFEST_NAME)
        return manifest

    async def close(self, record: dict[str, Any]) -> dict[str, Any]:
        """End the recording: flush, close the segment, write the final manifest."""
        if not self._closed:
            self._closed = True
            if self._task is not None:
                self._task.cancel()
                try:
                    await self._task
                except asyncio.CancelledError:
                    pass
            if self._transport is not None:
                self._transport.close()
            try:
                self.session.close()
            except Exception:
                log.exception("recording %s did not close cleanly", self.id)
        self.record = record
        return self.write_manifest(live=False)


class Recorder:
    def __init__(self, key: bytes) -> None:
        self.key = key
        self.recordings: dict[str, ActiveRecording] = {}

    async def begin(self, record: dict[str, Any], directory: Path) -> ActiveRecording:
        recording_id = str(record["id"])
        active = self.recordings.get(recording_id)
        if active is not None:
            return active
        active = ActiveRecording(record, directory, self.key)
        await active.open(int(record["port"]))
        self.recordings[recording_id] = active
        log.info("recording %s: begun (port %d)", recording_id, int(record["port"]))
        return active

    async def end(self, record: dict[str, Any], directory: Path) -> dict[str, Any]:
        active = self.recordings.pop(str(record["id"]), None)
        if active is None:
            return await asyncio.to_thread(finalise_recording, directory, record, self.key)
        manifest = await active.close(record)
        log.info("recording %s: ended", active.id)
        return manifest

    async def close(self) -> None:
        """Shutting down: close every segment cleanly (the control plane ends them later)."""
        for active in list(self.recordings.values()):
            await active.close(active.record)
        self.recordings.clear()


RECORDER = web.AppKey("recorder", Recorder)
SECRET = web.AppKey("secret", str)


def _authorised(request: web.Request) -> None:
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {request.app[SECRET]}".encode()):
        raise web.HTTPUnauthorized()


async def _read(request: web.Request) -> tuple[dict[str, Any], Path]:
    _authorised(request)
    try:
        body = await request.json()
        record = body["record"]
        directory = Path(body["directory"])
        if record["id"] != request.match_info["id"]:
            raise ValueError("id mismatch")
    except (ValueError, KeyError, TypeError) as exc:
        raise web.HTTPBadRequest() from exc
    return record, directory


async def begin(request: web.Request) -> web.StreamResponse:
    record, directory = await _read(request)
    active = await request.app[RECORDER].begin(record, directory)
    return web.json_response({"status": "recording", "segments": len(active.session.segments)})


async def end(request: web.Request) -> web.StreamResponse:
    record, directory = await _read(request)
    manifest = await request.app[RECORDER].end(record, directory)
    return web.json_response({"status": "stopped", "manifest": manifest})


async def stats(request: web.Request) -> web.StreamResponse:
    _authorised(request)
    recorder = request.app[RECORDER]
    return web.json_response(
        {
            "cpu_seconds": time.process_time(),
            "recordings": {
                rid: {
                    "failed": active.failed,
                    "tracks": len(active.session.active_tracks),
                    "unknown_packets": active.session.unknown_packets,
                    "bad_announcements": active.bad_announcements,
                }
                for rid, active in recorder.recordings.items()
            },
        }
    )


async def health(request: web.Request) -> web.StreamResponse:
    _authorised(request)
    return web.json_response({"status": "ok"})


def build_app(recorder: Recorder, secret: str) -> web.Application:
    app = web.Application()
    app[RECORDER] = recorder
    app[SECRET] = secret
    app.router.add_get("/internal/health", health)
    app.router.add_get("/internal/stats", stats)
    app.router.add_post("/internal/recordings/{id}/begin", begin)
    app.router.add_post("/internal/recordings/{id}/end", end)

    async def close(app: web.Application) -> None:
        await app[RECORDER].close()

    app.on_shutdown.append(close)
    return app


async def serve(port: int, key: bytes, secret: str) -> None:
    await serve_internal(build_app(Recorder(key), secret), port)


def key_from_environment() -> str:
    """The recording key (64 hex digits) as the control plane passes it, in BALIE_RECORDING_KEY."""
    return os.environ.get(KEY_ENV, "").strip()


def run(port: int, recording_key: Callable[[], str] = key_from_environment) -> int:
    """Run the recorder: the control plane's secret comes from the environment.

    `recording_key` gives the key as 64 hex digits; it is asked only once the secret is there.
    `balie recorder` (control/cli.py) passes one that falls back to the data directory's key.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    secret = os.environ.pop(SECRET_ENV, "")
    if len(secret) < 32:
        print(f"balie recorder: {SECRET_ENV} must hold the control plane's secret", file=sys.stderr)
        return 2
    hex_key = recording_key()
    try:
        key = bytes.fromhex(hex_key)
    except ValueError:
        key = b""
    if len(key) != 32:
        print("balie recorder: the recording key must be 64 hex digits", file=sys.stderr)
        return 2
    die_with_parent()
    asyncio.run(serve(port, key, secret))
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m recorder.service --port N`, as the control plane starts it (key in the env)."""
    parser = argparse.ArgumentParser(prog="balie-recorder")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    return run(args.port)


if __name__ == "__main__":
    sys.exit(main())
