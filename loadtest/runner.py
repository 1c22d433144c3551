"""Load-test scenarios: synthetic participants against a running Balie server.

Every scenario is bounded in time and count and stops by itself. Participants join through the
admin API's tokens and the same signalling as browsers, publish pre-encoded VP8 simulcast and Opus,
and receive without decoding.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp

from loadtest.participant import SyntheticParticipant
from loadtest.stats import StreamStats, percentile

if TYPE_CHECKING:
    from loadtest.media import MediaLibrary

JOIN_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 30.0
SETUP_TIMEOUT_S = 180.0
JOINS_AT_ONCE = 4
LAG_PERIOD_S = 0.01
MAX_LAG_SAMPLES = 100_000


@dataclass
class LoadtestOptions:
    scenario: str  # fanout, calls, churn
    target: str
    api_key: str
    duration_s: float = 20.0
    subscribers: int = 20
    rooms: int = 4
    participants: int = 2
    churn_interval_s: float = 2.0
    host_address: str = "127.0.0.1"
    max_loss: float | None = None
    max_p99_delay_ms: float | None = None
    # Read the server's /metrics every half second during the window (for its peak memory);
    # benchmarks turn it off, since rendering the metrics costs the server CPU and delay.
    watch_metrics: bool = True


@dataclass
class Progress:
    """What the live display shows; updated by the scenario."""

    started: float = field(default_factory=time.monotonic)
    duration_s: float = 0.0
    joined: int = 0
    left: int = 0
    join_errors: int = 0
    errors: list[str] = field(default_factory=list)
    participants: list[SyntheticParticipant] = field(default_factory=list)
    finished: list[SyntheticParticipant] = field(default_factory=list)

    def streams(self) -> list[StreamStats]:
        result = []
        for participant in [*self.participants, *self.finished]:
            for stream in participant.streams.values():
                if stream.stats is not None:
                    result.append(stream.stats)
        return result


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads), from /proc/PID/stat."""
    text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    fields = text.rsplit(")", 1)[1].split()  # fields from the third (state) on
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class WindowMeter:
    """What the participants received, and a server process's CPU, over the measured window.

    "Packets forwarded" for a server is what its subscribers received in the window: the same
    definition for every server, so ratios between servers are fair. Loss, delay and freezes are
    those of the window too, so joining (a burst of handshakes) does not count as steady state.
    """

    def __init__(self, progress: Progress, cpu: Callable[[], float] | None = None) -> None:
        self._progress = progress
        self._cpu = cpu
        self._streams = {
            id(s): (s.packets, s.expected, len(s.delays_ms), s.freezes) for s in progress.streams()
        }
        self._cpu_start = cpu() if cpu is not None else None
        self._client_cpu_start = time.process_time()
        self._start = time.monotonic()
        self._lags: list[float] = []
        self._lag_task = asyncio.get_running_loop().create_task(self._watch_loop())

    async def _watch_loop(self) -> None:
        """How late this process's event loop wakes up: the participants' own delay."""
        while len(self._lags) < MAX_LAG_SAMPLES:
            before = time.perf_counter()
            await asyncio.sleep(LAG_PERIOD_S)
            self._lags.append((time.perf_counter() - before - LAG_PERIOD_S) * 1000.0)

    def stop(self) -> dict[str, Any]:
        seconds = time.monotonic() - self._start
        self._lag_task.cancel()
        cpu_seconds = None
        if self._cpu is not None and self._cpu_start is not None:
            cpu_seconds = round(self._cpu() - self._cpu_start, 3)
        client_cpu = time.process_time() - self._client_cpu_start
        received = expected = freezes = 0
        delays: list[float] = []
        for stream in self._progress.streams():
            packets, expected_before, delay_count, freezes_before = self._streams.get(
                id(stream), (0, 0, 0, 0)
            )
            received += stream.packets - packets
            expected += stream.expected - expected_before
            freezes += stream.freezes - freezes_before
            delays += stream.delays_ms[delay_count:]
        lost = max(0, expected - received)
        return {
            "seconds": round(seconds, 3),
            "packets_received": received,
            "packets_lost": lost,
            "loss": round(lost / expected, 6) if expected else 0.0,
            "delay_ms": {
                "p50": _round(percentile(delays, 0.5)),
                "p99": _round(percentile(delays, 0.99)),
                "max": _round(max(delays) if delays else None),
            },
            "freezes": freezes,
            "cpu_seconds": cpu_seconds,
            "cpu_share": round(cpu_seconds / seconds, 4) if cpu_seconds is not None else None,
            # the synthetic participants' own CPU (this process): near 1.0, they are the limit
            "client_cpu_share": round(client_cpu / seconds, 4),
            "client_loop_lag_ms": {
                "p99": _round(percentile(self._lags, 0.99)),
                "max": _round(max(self._lags) if self._lags else None),
            },
            "cpu_us_per_received_packet": (
                round(cpu_seconds * 1e6 / received, 2)
                if cpu_seconds is not None and received
                else None
            ),
        }


async def measure_window(
    progress: Progress,
    duration_s: float,
    cpu: Callable[[], float] | None = None,
    settle_s: float = 0.0,
) -> dict[str, Any]:
    """Wait `settle_s`, then `duration_s`; returns what `WindowMeter` measured over the latter."""
    await asyncio.sleep(settle_s)
    meter = WindowMeter(progress, cpu)
    progress.started = time.monotonic()
    await asyncio.sleep(duration_s)
    return meter.stop()


class AdminClient:
    """The admin API: rooms and join tokens."""

    def __init__(self, session: aiohttp.ClientSession, target: str, api_key: str) -> None:
        self._session = session
        self._target = target.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"}

    async def create_room(self, room: str) -> None:
        async with self._session.post(
            f"{self._target}/api/v1/rooms", json={"id": room}, headers=self._headers
        ) as response:
            if response.status not in (201, 409):
                raise RuntimeError(f"creating room {room}: HTTP {response.status}")

    async def token(self, room: str, identity: str, role: str) -> str:
        async with self._session.post(
            f"{self._target}/api/v1/rooms/{room}/tokens",
            json={"identity": identity, "name": identity, "role": role, "ttl": 3600},
            headers=self._headers,
        ) as response:
            body = await response.json()
            if response.status != 201:
                raise RuntimeError(f"token for {room}: HTTP {response.status}: {body}")
            return str(body["token"])

    async def server_usage(self) -> tuple[float, int, int] | None:
        """(CPU seconds, resident memory bytes, packets out) of the server, from /metrics."""
        try:
            async with self._session.get(
                f"{self._target}/metrics", headers=self._headers, timeout=aiohttp.ClientTimeout(5)
            ) as response:
                if response.status != 200:
                    return None
                text = await response.text()
        except (aiohttp.ClientError, TimeoutError):
            return None
        cpu = 0.0
        memory = 0
        packets_out = 0
        for line in text.splitlines():
            if line.startswith("balie_packets_out_total"):
                packets_out += int(float(line.rsplit(" ", 1)[1]))
            if line.startswith("balie_worker_cpu_seconds_total"):
                cpu += float(line.rsplit(" ", 1)[1])
            elif line.startswith("balie_worker_resident_memory_bytes"):
                memory += int(float(line.rsplit(" ", 1)[1]))
        return cpu, memory, packets_out


async def _join(
    admin: AdminClient,
    options: LoadtestOptions,
    media: MediaLibrary,
    progress: Progress,
    room: str,
    identity: str,
    *,
    publish: bool,
) -> SyntheticParticipant | None:
    try:
        token = await admin.token(room, identity, "resident")
        participant = SyntheticParticipant(
            options.target,
            token,
            host_address=options.host_address,
            publish_audio=publish,
            publish_video=publish,
            simulcast=True,
            media=media,
        )
        progress.participants.append(participant)
        await participant.join(JOIN_TIMEOUT_S)
        await asyncio.wait_for(participant.connected.wait(), JOIN_TIMEOUT_S)
    except (RuntimeError, OSError, TimeoutError, aiohttp.ClientError) as exc:
        progress.join_errors += 1
        if len(progress.errors) < 10:
            progress.errors.append(f"{identity} in {room}: {type(exc).__name__}: {exc}")
        return None
    progress.joined += 1
    return participant


async def _leave(participant: SyntheticParticipant, progress: Progress) -> None:
    try:
        await asyncio.wait_for(participant.close(), STOP_TIMEOUT_S)
    finally:
        if participant in progress.participants:
            progress.participants.remove(participant)
            progress.finished.append(participant)
            progress.left += 1


async def run_scenario(
    options: LoadtestOptions,
    media: MediaLibrary,
    progress: Progress,
    on_tick: Callable[[], None] | None = None,
    server_cpu: Callable[[], float] | None = None,
    settle_s: float = 0.0,
) -> dict[str, Any]:
    """Join everyone (bounded), measure for the duration, leave, and return the result.

    `server_cpu`: reads the server process's CPU seconds (e.g. `process_cpu_seconds`), for the
    result's "window" figures. `settle_s`: seconds between the last join and the window.
    """
    window: dict[str, Any] | None = None
    progress.duration_s = options.duration_s
    async with aiohttp.ClientSession() as session:
        admin = AdminClient(session, options.target, options.api_key)
        joiner = _Joiner(admin, options, media, progress)
        try:
            if options.scenario == "fanout":
                plan = [("fanout", "publisher", True)] + [
                    ("fanout", f"sub-{index}", False) for index in range(options.subscribers)
                ]
            elif options.scenario in ("calls", "churn"):
                plan = [
                    (f"{options.scenario}-{room}", f"p{person}", True)
                    for room in range(options.rooms)
                    for person in range(options.participants)
                ]
            else:
                raise ValueError(f"unknown scenario {options.scenario!r}")
            try:
                await asyncio.wait_for(joiner.join_all(plan), SETUP_TIMEOUT_S)
            except TimeoutError:
                progress.join_errors += 1
                progress.errors.append(f"not everyone joined within {SETUP_TIMEOUT_S:.0f} s")
            await asyncio.sleep(settle_s)
            # The participants' own process must not stall in the window: collect what earlier
            # scenarios and the joins left, and keep what lives now out of later scans.
            gc.collect()
            gc.freeze()
            usage_before = await admin.server_usage()
            meter = WindowMeter(progress, server_cpu)
            peak_memory = usage_before[1] if usage_before else 0
            deadline = time.monotonic() + options.duration_s
            next_churn = time.monotonic() + options.churn_interval_s
            churn_index = 0
            progress.started = time.monotonic()
            while time.monotonic() < deadline:
                await asyncio.sleep(0.5)
                if on_tick is not None:
                    on_tick()
                usage = await admin.server_usage() if options.watch_metrics else None
                if usage is not None:
                    peak_memory = max(peak_memory, usage[1])
                if options.scenario == "churn" and time.monotonic() >= next_churn:
                    next_churn += options.churn_interval_s
                    await joiner.churn(churn_index % max(1, options.rooms))
                    churn_index += 1
            window = meter.stop()
            usage_after = await admin.server_usage()
        finally:
            await asyncio.gather(
                *(_leave(p, progress) for p in list(progress.participants)),
                return_exceptions=True,
            )
            gc.unfreeze()  # what this scenario made may be collected again
    sfu: dict[str, Any] | None = None
    if usage_before is not None and usage_after is not None:
        forwarded = usage_after[2] - usage_before[2]
        cpu_seconds = usage_after[0] - usage_before[0]
        sfu = {
            "cpu_seconds": round(cpu_seconds, 3),
            "peak_memory_bytes": max(peak_memory, usage_after[1]),
            "packets_forwarded": forwarded,
            "cpu_us_per_forwarded_packet": (
                round(cpu_seconds * 1e6 / forwarded, 2) if forwarded else None
            ),
        }
    result = summarise(options, progress, sfu)
    result["window"] = window
    return result


class _Joiner:
    """Joins participants a few at a time; remembers who is in which room (for churn)."""

    def __init__(
        self, admin: AdminClient, options: LoadtestOptions, media: MediaLibrary, progress: Progress
    ) -> None:
        self._admin = admin
        self._options = options
        self._media = media
        self._progress = progress
        self._stamp = int(time.time())
        self._members: dict[str, list[SyntheticParticipant]] = {}
        self._serial = 0

    def _room(self, name: str) -> str:
        return f"{name}-{self._stamp}"

    async def join_all(self, plan: list[tuple[str, str, bool]]) -> None:
        rooms = sorted({room for room, _, _ in plan})
        for room in rooms:
            await self._admin.create_room(self._room(room))
            self._members.setdefault(room, [])
        limit = asyncio.Semaphore(JOINS_AT_ONCE)

        async def one(room: str, identity: str, publish: bool) -> None:
            async with limit:
                await self._join(room, identity, publish)

        # The first of the plan (the publisher, in fan-out) joins before the rest.
        await one(*plan[0])
        await asyncio.gather(*(one(*step) for step in plan[1:]))

    async def _join(self, room: str, identity: str, publish: bool) -> None:
        joined = await _join(
            self._admin,
            self._options,
            self._media,
            self._progress,
            self._room(room),
            identity,
            publish=publish,
        )
        if joined is not None:
            self._members[room].append(joined)

    async def churn(self, room_index: int) -> None:
        """One participant of a room leaves and a new one joins."""
        room = f"churn-{room_index}"
        members = self._members.get(room, [])
        if members:
            await _leave(members.pop(0), self._progress)
        self._serial += 1
        await self._join(room, f"n{self._serial}", True)


def summarise(
    options: LoadtestOptions, progress: Progress, sfu: dict[str, Any] | None
) -> dict[str, Any]:
    streams = progress.streams()
    everyone = [*progress.participants, *progress.finished]
    sent = sum(o.packets_sent for p in everyone for o in (p.audio, *p.video_layers))
    received = sum(s.packets for s in streams)
    lost = sum(s.lost for s in streams)
    expected = received + lost
    delays = [d for s in streams for d in s.delays_ms]
    loss = lost / expected if expected else 0.0
    p99 = percentile(delays, 0.99)
    failures = []
    if options.max_loss is not None and loss > options.max_loss:
        failures.append(f"loss {loss:.4f} > {options.max_loss}")
    if options.max_p99_delay_ms is not None and (p99 is None or p99 > options.max_p99_delay_ms):
        failures.append(f"p99 delay {p99} ms > {options.max_p99_delay_ms} ms")
    if progress.join_errors:
        failures.append(
            f"{progress.join_errors} participants could not join: " + "; ".join(progress.errors)
        )
    return {
        "scenario": options.scenario,
        "target": options.target,
        "duration_s": options.duration_s,
        "joined": progress.joined,
        "left": progress.left,
        "join_errors": progress.join_errors,
        "streams": len(streams),
        "packets_sent": sent,
        "packets_received": received,
        "packets_lost": lost,
        "loss": round(loss, 6),
        "jitter_ms_p50": _round(percentile([s.jitter_ms for s in streams], 0.5)),
        "delay_ms": {
            "p50": _round(percentile(delays, 0.5)),
            "p99": _round(p99),
            "max": _round(max(delays) if delays else None),
        },
        "freezes": sum(s.freezes for s in streams),
        "freeze_ms": round(sum(s.freeze_ms for s in streams), 1),
        "keyframes": sum(s.keyframes for s in streams),
        "sfu": sfu,
        "thresholds": {"max_loss": options.max_loss, "max_p99_delay_ms": options.max_p99_delay_ms},
        "passed": not failures,
        "failures": failures,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def default_media_cache() -> Path:
    return Path.home() / ".cache" / "digitale-balie" / "media"
