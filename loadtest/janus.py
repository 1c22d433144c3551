"""Janus VideoRoom as the reference server in `make bench`, loaded by the same synthetic media.

Three parts:

* a launcher: writes a minimal Janus configuration into a temporary directory (only the VideoRoom
  plugin and the HTTP transport, the HTTP API on 127.0.0.1, no admin API, no STUN/TURN, ICE only
  on one given address) and runs ``janus`` as a subprocess;
* a client of the Janus HTTP API (sessions, handles, plugin messages with JSEP, long polls);
* synthetic publishers and subscribers that reuse `SyntheticParticipant`'s media machinery
  (pre-encoded VP8 simulcast and Opus, ICE/DTLS/SRTP through `MediaTransport`, received without
  decoding into the same `StreamStats`), so Janus and Balie see the same load.

Janus skips loopback interfaces when it gathers ICE candidates, so it must be given an address on
another interface: the benchmark adds a veth pair with 10.77.0.1 inside its own loopback-only
network namespace (both ends stay there), and the synthetic participants gather on that address
too.

Janus writes its own sender reports (it does not forward the publisher's), so one-way delay cannot
come from sender reports as with Balie. Instead the publisher remembers, for each payload
(everything after the 4-byte VP8 descriptor, which Janus may rewrite), the time its media timestamp
was scheduled to be sent — the same instant the publisher's sender reports give, which Balie
forwards — and the subscriber looks the payload up on arrival. So delays through both servers are
measured from the same instant.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import itertools
import os
import secrets
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp

from common.ports import free_port
from loadtest.participant import SyntheticParticipant
from loadtest.processes import stop_process, wait_until_answering
from loadtest.runner import (
    JOIN_TIMEOUT_S,
    JOINS_AT_ONCE,
    SETUP_TIMEOUT_S,
    STOP_TIMEOUT_S,
    LoadtestOptions,
    Progress,
    measure_window,
    process_cpu_seconds,
    summarise,
)
from sfu.aiortc_adapter import MediaTransport
from sfu.rtp import parse_rtp
from sfu.sdp import parse_sdp
from sfu.vp8 import vp8_is_keyframe

if TYPE_CHECKING:
    from loadtest.media import MediaLibrary
    from loadtest.participant import OutgoingStream

JANUS_ADDRESS = "10.77.0.1"  # the dummy interface's address inside the benchmark's namespace
VIDEOROOM = "janus.plugin.videoroom"
EVENT_LOOPS = 2
START_TIMEOUT_S = 20.0
REQUEST_TIMEOUT_S = 15.0
LONG_POLL_S = 40.0  # Janus answers an idle long poll after 30 s with a keepalive
KEEPALIVE_S = 20.0  # well inside Janus's 60 s session timeout
MAX_POLL_ERRORS = 20
VP8_DESCRIPTOR_SIZE = 4  # the part of a video payload Janus may rewrite (picture id)
KEPT_EVENTS = 50


# -- launcher ----------------------------------------------------------------------------------

JANUS_LINK = "bjanus0"  # a veth pair (bjanus0, bjanus1) inside the namespace; no peer outside it
_LOOPBACK_ADDRESSES = ("127.0.0.1", "::1")


def _ip(*args: str) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def add_janus_address(address: str = JANUS_ADDRESS) -> None:
    """Give Janus a non-loopback address inside a loopback-only network namespace (as root).

    Janus skips loopback interfaces when it gathers ICE candidates. Both ends of the veth pair stay
    in this namespace, so no packet can leave it. Refuses to touch a namespace that has any
    address besides loopback (and this helper's own), so it never changes a real network.
    """
    addresses = []
    for line in _ip("-o", "addr", "show").splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[2] in ("inet", "inet6"):
            addresses.append((parts[1], parts[3].split("/")[0]))
    if any(name == JANUS_LINK and ip == address for name, ip in addresses):
        return
    others = [ip for name, ip in addresses if ip not in _LOOPBACK_ADDRESSES]
    if others:
        raise RuntimeError(
            f"refusing to add {address}: this network namespace is not loopback-only ({others}); "
            "run inside `unshare -n`"
        )
    _ip("link", "set", "lo", "up")
    _ip("link", "add", JANUS_LINK, "type", "veth", "peer", "name", "bjanus1")
    _ip("addr", "add", f"{address}/24", "dev", JANUS_LINK)
    _ip("link", "set", JANUS_LINK, "up")
    _ip("link", "set", "bjanus1", "up")


def janus_folder(kind: str) -> Path:
    """Where Debian's janus keeps its plugins, transports, loggers or event handlers."""
    for candidate in [*sorted(glob.glob(f"/usr/lib/*/janus/{kind}")), f"/usr/lib/janus/{kind}"]:
        if Path(candidate).is_dir():
            return Path(candidate)
    raise FileNotFoundError(f"no Janus {kind} folder (apt-get install janus)")


def _others(kind: str, keep: str | None) -> str:
    """Comma-separated file names of the libraries in a Janus folder, all but `keep`."""
    names = sorted(p.name for p in janus_folder(kind).glob("*.so"))
    return ",".join(name for name in names if name != keep)


def write_janus_config(
    directory: Path, http_port: int, ice_address: str, event_loops: int = EVENT_LOOPS
) -> Path:
    """A minimal configuration in `directory`; returns the path of janus.jcfg."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "janus.jcfg").write_text(
        f"""general: {{
	configs_folder = "{directory}"
	plugins_folder = "{janus_folder("plugins")}"
	transports_folder = "{janus_folder("transports")}"
	events_folder = "{janus_folder("events")}"
	loggers_folder = "{janus_folder("loggers")}"
	debug_level = 3
	debug_colors = false
	log_to_stdout = true
	event_loops = {event_loops}
	session_timeout = 60
	protected_folders = ["/bin", "/boot", "/dev", "/etc", "/lib", "/proc", "/sbin", "/sys", "/usr"]
}}
media: {{
	ipv6 = false
}}
nat: {{
	nice_debug = false
	full_trickle = false
	ice_lite = false
	ice_tcp = false
	ice_enforce_list = "{ice_address}"
	ignore_mdns = true
}}
plugins: {{
	disable = "{_others("plugins", "libjanus_videoroom.so")}"
}}
transports: {{
	disable = "{_others("transports", "libjanus_http.so")}"
}}
loggers: {{
	disable = "{_others("loggers", None)}"
}}
events: {{
	broadcast = false
}}
""",
        encoding="utf-8",
    )
    (directory / "janus.transport.http.jcfg").write_text(
        f"""general: {{
	json = "plain"
	base_path = "/janus"
	http = true
	port = {http_port}
	ip = "127.0.0.1"
	https = false
}}
admin: {{
	admin_http = false
	admin_https = false
}}
""",
        encoding="utf-8",
    )
    (directory / "janus.plugin.videoroom.jcfg").write_text("general: {\n}\n", encoding="utf-8")
    return directory / "janus.jcfg"


@dataclass
class JanusServer:
    process: subprocess.Popen[bytes]
    url: str  # http://127.0.0.1:PORT/janus
    directory: Path
    ice_address: str

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float:
        """User + system CPU time of the janus process (all its threads)."""
        return process_cpu_seconds(self.process.pid)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = (self.directory / "janus.log").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def running_janus(
    ice_address: str = JANUS_ADDRESS, event_loops: int = EVENT_LOOPS
) -> Iterator[JanusServer]:
    """Janus in a subprocess until the block ends; waits until GET /janus/info answers."""
    with tempfile.TemporaryDirectory(prefix="balie-janus-") as tmp:
        directory = Path(tmp)
        port = free_port()
        config = write_janus_config(directory, port, ice_address, event_loops)
        log = (directory / "janus.log").open("wb")
        process = subprocess.Popen(
            ["janus", "--config", str(config), "--configs-folder", str(directory)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        server = JanusServer(process, f"http://127.0.0.1:{port}/janus", directory, ice_address)
        try:
            _wait_for_info(server)
            yield server
        finally:
            stop_process(process)
            log.close()


def _wait_for_info(server: JanusServer) -> None:
    wait_until_answering(
        server.process,
        f"{server.url}/info",
        START_TIMEOUT_S,
        "janus",
        expect=VIDEOROOM.encode(),
        detail=server.log_tail,
    )


# -- HTTP API client ---------------------------------------------------------------------------


class JanusError(RuntimeError):
    pass


def _transaction() -> str:
    return secrets.token_hex(8)


class JanusSession:
    """One Janus session (many handles), with one long poll that routes events to handles."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self._http = http
        self._url = url.rstrip("/")
        self.id: int | None = None
        self.handles: dict[int, JanusHandle] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self.poll_errors = 0

    @property
    def url(self) -> str:
        return self._url

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        body = {"transaction": _transaction(), **body}
        async with self._http.post(
            self._url + path, json=body, timeout=aiohttp.ClientTimeout(REQUEST_TIMEOUT_S)
        ) as response:
            answer: dict[str, Any] = await response.json(content_type=None)
        if answer.get("janus") == "error":
            raise JanusError(f"{body.get('janus')}: {answer.get('error')}")
        return answer

    async def create(self) -> None:
        answer = await self.post("", {"janus": "create"})
        self.id = int(answer["data"]["id"])
        self._tasks.append(asyncio.create_task(self._poll_loop()))
        self._tasks.append(asyncio.create_task(self._keepalive_loop()))

    async def attach(self, plugin: str = VIDEOROOM) -> JanusHandle:
        answer = await self.post(f"/{self.id}", {"janus": "attach", "plugin": plugin})
        handle = JanusHandle(self, int(answer["data"]["id"]))
        self.handles[handle.id] = handle
        return handle

    async def _poll_loop(self) -> None:
        """Long polls until the session closes (or fails too often)."""
        while not self._closed and self.poll_errors < MAX_POLL_ERRORS:
            try:
                async with self._http.get(
                    f"{self._url}/{self.id}",
                    params={"maxev": "20", "rid": str(int(time.time() * 1000))},
                    timeout=aiohttp.ClientTimeout(LONG_POLL_S),
                ) as response:
                    answer = await response.json(content_type=None)
            except (aiohttp.ClientError, TimeoutError, ValueError):
                self.poll_errors += 1
                await asyncio.sleep(0.2)
                continue
            for event in answer if isinstance(answer, list) else [answer]:
                self._dispatch(event)

    def _dispatch(self, event: dict[str, Any]) -> None:
        handle = self.handles.get(int(event.get("sender") or 0))
        if handle is not None:
            handle.deliver(event)

    async def _keepalive_loop(self) -> None:
        while not self._closed:
            await asyncio.sleep(KEEPALIVE_S)
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, JanusError):
                await self.post(f"/{self.id}", {"janus": "keepalive"})

    async def destroy(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.id is not None:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, JanusError):
                await self.post(f"/{self.id}", {"janus": "destroy"})
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


class JanusHandle:
    """A handle attached to a plugin: synchronous requests and asynchronous messages."""

    def __init__(self, session: JanusSession, handle_id: int) -> None:
        self.session = session
        self.id = handle_id
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []  # the latest events nobody waited for

    @property
    def _path(self) -> str:
        return f"/{self.session.id}/{self.id}"

    def deliver(self, event: dict[str, Any]) -> None:
        future = self._waiting.pop(str(event.get("transaction")), None)
        if future is not None and not future.done():
            future.set_result(event)
            return
        self.events.append(event)
        del self.events[:-KEPT_EVENTS]

    async def request(self, body: dict[str, Any]) -> dict[str, Any]:
        """A synchronous plugin request (create, list, ...); returns the plugin's data."""
        answer = await self.session.post(self._path, {"janus": "message", "body": body})
        return _plugin_data(answer)

    async def message(
        self,
        body: dict[str, Any],
        jsep: dict[str, str] | None = None,
        timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """An asynchronous plugin request: waits for its event; returns (data, jsep)."""
        transaction = _transaction()
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[transaction] = future
        message: dict[str, Any] = {"janus": "message", "transaction": transaction, "body": body}
        if jsep is not None:
            message["jsep"] = jsep
        try:
            answer = await self.session.post(self._path, message)
            if answer.get("janus") != "ack":
                return _plugin_data(answer), answer.get("jsep")
            event = await asyncio.wait_for(future, timeout_s)
        finally:
            self._waiting.pop(transaction, None)
        return _plugin_data(event), event.get("jsep")

    async def detach(self) -> None:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError, JanusError):
            await self.session.post(self._path, {"janus": "detach"})
        self.session.handles.pop(self.id, None)


def _plugin_data(answer: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = (answer.get("plugindata") or {}).get("data") or {}
    if "error" in data or "error_code" in data:
        raise JanusError(f"{data.get('error_code')}: {data.get('error')}")
    return data


_room_ids = itertools.count(int.from_bytes(os.urandom(3), "big") * 1000 + 1)


async def create_room(handle: JanusHandle, publishers: int) -> int:
    """A VideoRoom room for VP8 + Opus, without bitrate cap or periodic keyframe requests."""
    room = next(_room_ids)
    await handle.request(
        {
            "request": "create",
            "room": room,
            "publishers": publishers,
            "bitrate": 0,
            "fir_freq": 0,
            "audiocodec": "opus",
            "videocodec": "vp8",
            "notify_joining": False,
        }
    )
    return room


# -- synthetic participants --------------------------------------------------------------------


def janus_rid_order(sdp: str) -> str:
    """Janus expects simulcast rids from the highest layer down; ours list the lowest first."""
    lines = sdp.split("\r\n")
    rids = [line for line in lines if line.startswith("a=rid:")]
    out: list[str] = []
    for line in lines:
        if line.startswith("a=rid:"):
            if line == rids[0]:
                out += list(reversed(rids))
            continue
        if line.startswith("a=simulcast:send "):
            order = line.removeprefix("a=simulcast:send ").split(";")
            line = "a=simulcast:send " + ";".join(reversed(order))
        out.append(line)
    return "\r\n".join(out)


def _payload_key(kind: str, payload: bytes) -> bytes:
    return payload[VP8_DESCRIPTOR_SIZE:] if kind == "video" else payload


class JanusPublisher(SyntheticParticipant):
    """Publishes simulcast VP8 + Opus to a VideoRoom room; remembers when it sent each payload."""

    def __init__(
        self,
        session: JanusSession,
        room: int,
        display: str,
        *,
        host_address: str = JANUS_ADDRESS,
        media: MediaLibrary | None = None,
    ) -> None:
        super().__init__(
            session_url(session), "", host_address=host_address, simulcast=True, media=media
        )
        self._janus = session
        self.room = room
        self.display = display
        self.handle: JanusHandle | None = None
        self.feed_id: int | None = None
        self.sent_at: dict[bytes, float] = {}  # bounded: the media repeats every few seconds

    async def join(self, join_timeout_s: float = JOIN_TIMEOUT_S) -> None:
        self.handle = await self._janus.attach()
        data, _ = await self.handle.message(
            {"request": "join", "ptype": "publisher", "room": self.room, "display": self.display},
            timeout_s=join_timeout_s,
        )
        self.feed_id = int(data["id"])
        self.participant_id = str(self.feed_id)
        self.joined.set()
        await self._send_offer()  # comes back through _send

    async def _send(self, message: dict[str, Any]) -> None:
        if message.get("type") != "offer" or self.handle is None:
            return
        _, jsep = await self.handle.message(
            {"request": "configure", "audio": True, "video": True},
            {"type": "offer", "sdp": janus_rid_order(message["sdp"])},
        )
        if not jsep or jsep.get("type") != "answer":
            raise JanusError("configure brought no SDP answer")
        await self._accept_answer(jsep["sdp"])

    def _send_packet(self, stream: OutgoingStream, payload: bytes, marker: bool) -> None:
        # The scheduled send time of the packet's media timestamp, as the sender reports that
        # Balie forwards describe it, so that delays through both servers mean the same thing.
        media_time = ((stream.timestamp - stream.ts_base) & 0xFFFFFFFF) / stream.clock_rate
        lateness = time.monotonic() - (self._media_clock_start + media_time)
        self.sent_at[_payload_key(stream.kind, payload)] = time.time() - lateness
        super()._send_packet(stream, payload, marker)

    async def close(self) -> None:
        if self.handle is not None:
            await self.handle.detach()
        await super().close()


class JanusSubscriber(SyntheticParticipant):
    """Subscribes to one publisher's feed on its own PeerConnection; counts without decoding."""

    def __init__(
        self,
        session: JanusSession,
        room: int,
        publisher: JanusPublisher,
        *,
        host_address: str = JANUS_ADDRESS,
        media: MediaLibrary | None = None,
    ) -> None:
        super().__init__(
            session_url(session),
            "",
            host_address=host_address,
            publish_audio=False,
            publish_video=False,
            media=media,
        )
        # Janus makes the offer here, so it is the controlling ICE agent and this side answers.
        self.transport = MediaTransport(
            (host_address,), self._on_rtp, self._on_rtcp, self._on_state, controlling=False
        )
        self._janus = session
        self.room = room
        self.publisher = publisher
        self.handle: JanusHandle | None = None
        self.unmatched_payloads = 0
        self._by_payload_type: dict[int, str] = {}

    async def join(self, join_timeout_s: float = JOIN_TIMEOUT_S) -> None:
        if self.publisher.feed_id is None:
            raise JanusError("the publisher has not joined")
        self.handle = await self._janus.attach()
        _, jsep = await self.handle.message(
            {
                "request": "join",
                "ptype": "subscriber",
                "room": self.room,
                "streams": [{"feed": self.publisher.feed_id}],
            },
            timeout_s=join_timeout_s,
        )
        if not jsep or jsep.get("type") != "offer":
            raise JanusError("joining as a subscriber brought no SDP offer")
        self.joined.set()
        self._candidates = await self.transport.gather()
        description = parse_sdp(jsep["sdp"])
        feed = {"participant_id": str(self.publisher.feed_id)}
        await self._answer_offer(jsep["sdp"], {s.mid or "": feed for s in description.media})
        for section in description.media:
            rtpmap = section.rtpmap()
            if section.mid in self.streams:
                for pt in rtpmap:
                    self._by_payload_type[pt] = section.mid
        await self._accept_answer(jsep["sdp"])  # Janus's ICE and DTLS parameters, candidates

    def _describe(self, setup: str) -> str:
        # The answerer of a fresh connection, and the DTLS client (aiortc: controlled = client).
        return super()._describe("active")

    async def _send(self, message: dict[str, Any]) -> None:
        if message.get("type") != "answer" or self.handle is None:
            return
        await self.handle.message({"request": "start"}, {"type": "answer", "sdp": message["sdp"]})

    def _on_rtp(self, data: bytes, arrival_time_ms: int) -> None:
        packet = parse_rtp(data)
        if packet is None:
            return
        stream = self._streams_by_ssrc.get(packet.ssrc)
        if stream is None:
            mid = self._by_payload_type.get(packet.payload_type)
            if mid is None:
                return
            stream = self.streams[mid]  # Janus's offer named no SSRC: learn it from the stream
            stream.ssrc = packet.ssrc
            self._streams_by_ssrc[packet.ssrc] = stream
        now = time.time()
        stream.packets += 1
        stream.bytes += len(packet.payload)
        stream.last_packet_time = time.monotonic()
        stats = stream.stats
        if stats is None:
            return
        sent = self.publisher.sent_at.get(_payload_key(stream.kind, packet.payload))
        if sent is not None:
            stats.sender_report(sent, packet.timestamp)  # delay = now - sent, exactly
        else:
            self.unmatched_payloads += 1
        video = stream.kind == "video"
        stats.packet(
            packet.seq,
            packet.timestamp,
            packet.marker,
            video and vp8_is_keyframe(packet.payload),
            now,
        )

    def _on_rtcp(self, data: bytes) -> None:
        """Janus's sender reports describe its own sending, not the publisher's: not used."""

    async def close(self) -> None:
        if self.handle is not None:
            await self.handle.detach()
        await super().close()


def session_url(session: JanusSession) -> str:
    return f"{session.url}/{session.id}"


# -- scenarios ---------------------------------------------------------------------------------


async def _join(participant: SyntheticParticipant, progress: Progress, name: str) -> bool:
    progress.participants.append(participant)
    try:
        await asyncio.wait_for(participant.join(JOIN_TIMEOUT_S), JOIN_TIMEOUT_S)
        await asyncio.wait_for(participant.connected.wait(), JOIN_TIMEOUT_S)
    except (JanusError, OSError, TimeoutError, aiohttp.ClientError, KeyError) as exc:
        progress.join_errors += 1
        if len(progress.errors) < 10:
            progress.errors.append(f"{name}: {type(exc).__name__}: {exc}")
        return False
    progress.joined += 1
    return True


async def _join_all(
    steps: Sequence[tuple[SyntheticParticipant, str]], progress: Progress
) -> list[bool]:
    limit = asyncio.Semaphore(JOINS_AT_ONCE)

    async def one(participant: SyntheticParticipant, name: str) -> bool:
        async with limit:
            return await _join(participant, progress, name)

    return list(await asyncio.gather(*(one(p, n) for p, n in steps)))


class _Setup:
    """Creates the rooms and joins the participants of one scenario, a few at a time."""

    def __init__(
        self,
        session: JanusSession,
        admin: JanusHandle,
        options: LoadtestOptions,
        media: MediaLibrary,
        progress: Progress,
    ) -> None:
        self._session = session
        self._admin = admin
        self._options = options
        self._media = media
        self._progress = progress

    def _publisher(self, room: int, display: str) -> JanusPublisher:
        return JanusPublisher(
            self._session,
            room,
            display,
            host_address=self._options.host_address,
            media=self._media,
        )

    def _subscriber(self, room: int, publisher: JanusPublisher) -> JanusSubscriber:
        return JanusSubscriber(
            self._session,
            room,
            publisher,
            host_address=self._options.host_address,
            media=self._media,
        )

    async def fanout(self) -> None:
        """One publisher first, then the subscribers to its feed."""
        room = await create_room(self._admin, 2)
        publisher = self._publisher(room, "publisher")
        if not await _join(publisher, self._progress, "publisher"):
            return
        steps = [
            (self._subscriber(room, publisher), f"subscriber {index}")
            for index in range(self._options.subscribers)
        ]
        await _join_all(steps, self._progress)

    async def calls(self) -> None:
        """Rooms of two: both publish, then each subscribes to the other's feed."""
        rooms = []
        for _ in range(self._options.rooms):
            room = await create_room(self._admin, 2)
            rooms.append((room, self._publisher(room, "a"), self._publisher(room, "b")))
        publishers: list[tuple[SyntheticParticipant, str]] = []
        for index, (_, a, b) in enumerate(rooms):
            publishers += [(a, f"room {index} a"), (b, f"room {index} b")]
        await _join_all(publishers, self._progress)
        subscribers: list[tuple[SyntheticParticipant, str]] = []
        for index, (room, a, b) in enumerate(rooms):
            if a.feed_id is not None and b.feed_id is not None:
                subscribers.append((self._subscriber(room, b), f"room {index} a receives b"))
                subscribers.append((self._subscriber(room, a), f"room {index} b receives a"))
        await _join_all(subscribers, self._progress)


async def run_janus_scenario(
    janus: JanusServer,
    options: LoadtestOptions,
    media: MediaLibrary,
    progress: Progress | None = None,
    settle_s: float = 0.0,
) -> dict[str, Any]:
    """Fan-out (1 publisher, N subscribers) or calls (K rooms of 2, each subscribes to the other).

    Returns the same figures as `run_scenario` does for Balie. The server's CPU is the janus
    process's CPU time over the measured window, and packets forwarded are what the subscribers
    received in that window. `settle_s`: seconds between the last join and the window.
    """
    if options.scenario not in ("fanout", "calls"):
        raise ValueError(f"Janus runs fanout and calls, not {options.scenario!r}")
    progress = progress or Progress()
    progress.duration_s = options.duration_s
    window: dict[str, Any] | None = None
    async with aiohttp.ClientSession() as http:
        session = JanusSession(http, janus.url)
        await session.create()
        try:
            setup = _Setup(session, await session.attach(), options, media, progress)
            try:
                await asyncio.wait_for(
                    setup.fanout() if options.scenario == "fanout" else setup.calls(),
                    SETUP_TIMEOUT_S,
                )
            except TimeoutError:
                progress.join_errors += 1
                progress.errors.append(f"not everyone joined within {SETUP_TIMEOUT_S:.0f} s")
            window = await measure_window(
                progress, options.duration_s, janus.cpu_seconds, settle_s=settle_s
            )
        finally:
            await asyncio.gather(
                *(asyncio.wait_for(p.close(), STOP_TIMEOUT_S) for p in progress.participants),
                return_exceptions=True,
            )
            progress.finished.extend(progress.participants)
            progress.left += len(progress.participants)
            progress.participants.clear()
            await session.destroy()
    sfu = None
    if window is not None:
        sfu = {
            "cpu_seconds": window["cpu_seconds"],
            "peak_memory_bytes": None,
            "packets_forwarded": window["packets_received"],
            "cpu_us_per_forwarded_packet": window["cpu_us_per_received_packet"],
        }
    result = summarise(options, progress, sfu)
    result["window"] = window
    result["server"] = "janus"
    return result


def main() -> None:
    """`python -m loadtest.janus fanout|calls ...`: one scenario against a fresh Janus.

    Run it as root inside a loopback-only network namespace (`unshare -n`); it adds the address
    Janus needs (see `add_janus_address`) and prints the result as JSON.
    """
    import argparse
    import json

    from loadtest.media import load_media
    from loadtest.runner import default_media_cache

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("scenario", choices=("fanout", "calls"))
    parser.add_argument("--subscribers", type=int, default=2)
    parser.add_argument("--rooms", type=int, default=2)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--media-cache", type=Path, default=None)
    parser.add_argument("--media-seconds", type=float, default=10.0, help="length of the media")
    args = parser.parse_args()
    add_janus_address()
    media = load_media(args.media_cache or default_media_cache(), seconds=args.media_seconds)
    with running_janus() as janus:
        options = LoadtestOptions(
            scenario=args.scenario,
            target=janus.url,
            api_key="",
            duration_s=args.duration,
            subscribers=args.subscribers,
            rooms=args.rooms,
            participants=2,
            host_address=JANUS_ADDRESS,
        )
        result = asyncio.run(run_janus_scenario(janus, options, media))
        if not result["passed"]:
            result["janus_log"] = janus.log_tail()
    text = json.dumps(result, indent=2)
    if args.json is not None:
        args.json.write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
