"""The obvious Python alternative to an SFU, as a baseline: aiortc's `MediaRelay`.

`python -m loadtest.relay_baseline serve --port P` runs a small aiortc server: one
`RTCPeerConnection` per client, offers and answers over a tiny HTTP endpoint on 127.0.0.1
(POST /publish, POST /subscribe), the publisher's video track shared with every subscriber through
`aiortc.contrib.media.MediaRelay`. aiortc decodes the publisher's VP8 once and encodes it again for
every subscriber; that is what a Python server without a forwarding path costs.

`run_relay()` loads it with the same synthetic media as the other servers (the 1280x720 VP8 layer
at about 1.5 Mbit/s, pre-encoded, sent by a `SyntheticParticipant`; subscribers receive without
decoding and ask for 1.5 Mbit/s with REMB, aiortc's highest rate) and measures the server process's
CPU time for a number of subscribers.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import aiohttp

from loadtest.participant import ReceivedStream, SyntheticParticipant
from loadtest.processes import stop_process, wait_until_answering
from loadtest.runner import (
    JOIN_TIMEOUT_S,
    STOP_TIMEOUT_S,
    Progress,
    WindowMeter,
    process_cpu_seconds,
)
from loadtest.stats import StreamStats
from sfu.rtcp import build_remb
from sfu.sdp import DEFAULT_VP8, Codec, LocalMediaLine, parse_sdp

if TYPE_CHECKING:
    from loadtest.media import MediaLibrary

START_TIMEOUT_S = 20.0
WARM_UP_S = 3.0  # the encoders start and settle before the window opens
REMB_BPS = 1_500_000
REMB_INTERVAL_S = 1.0


# -- the server --------------------------------------------------------------------------------


def serve(port: int, rtc_ip: str) -> None:
    """The MediaRelay server (runs until killed)."""
    import aioice.ice
    from aiohttp import web
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from aiortc.contrib.media import MediaRelay
    from aiortc.mediastreams import MediaStreamTrack

    # aioice gathers on every non-loopback address: here only the one given (its own process).
    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [rtc_ip]

    aioice.ice.get_host_addresses = host_addresses
    relay = MediaRelay()
    connections: set[RTCPeerConnection] = set()
    source: dict[str, MediaStreamTrack] = {}
    video_ready = asyncio.Event()

    def connection() -> RTCPeerConnection:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        connections.add(pc)
        return pc

    async def publish(request: web.Request) -> web.Response:
        offer = await request.json()
        pc = connection()

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video":
                source["video"] = track
                video_ready.set()

        await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return web.json_response({"sdp": pc.localDescription.sdp})

    async def subscribe(request: web.Request) -> web.Response:
        offer = await request.json()
        await asyncio.wait_for(video_ready.wait(), JOIN_TIMEOUT_S)
        pc = connection()
        await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        pc.addTrack(relay.subscribe(source["video"]))
        await pc.setLocalDescription(await pc.createAnswer())
        return web.json_response({"sdp": pc.localDescription.sdp})

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"connections": len(connections)})

    app = web.Application()
    app.router.add_post("/publish", publish)
    app.router.add_post("/subscribe", subscribe)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host="127.0.0.1", port=port, print=None, handle_signals=True)


# -- the clients -------------------------------------------------------------------------------


class RelayPublisher(SyntheticParticipant):
    """Sends the top pre-encoded VP8 layer (1280x720) as a single stream; no audio."""

    def __init__(self, url: str, *, host_address: str, media: MediaLibrary) -> None:
        super().__init__(
            url, "", host_address=host_address, publish_audio=False, simulcast=False, media=media
        )
        self.video_layers[0].layer = len(media.video_layers) - 1

    async def join(self, join_timeout_s: float = JOIN_TIMEOUT_S) -> None:
        self._session = aiohttp.ClientSession()
        self.joined.set()
        await self._send_offer()

    async def _send(self, message: dict[str, Any]) -> None:
        if message.get("type") != "offer" or self._session is None:
            return
        async with self._session.post(
            f"{self.base_url}/publish",
            json={"sdp": message["sdp"]},
            timeout=aiohttp.ClientTimeout(JOIN_TIMEOUT_S),
        ) as response:
            answer = await response.json()
        await self._accept_answer(answer["sdp"])


class RelaySubscriber(SyntheticParticipant):
    """Offers to receive VP8, counts what arrives (undecoded) and asks for 1.5 Mbit/s by REMB."""

    def __init__(self, url: str, *, host_address: str, media: MediaLibrary) -> None:
        super().__init__(
            url,
            "",
            host_address=host_address,
            publish_audio=False,
            publish_video=False,
            media=media,
        )

    async def join(self, join_timeout_s: float = JOIN_TIMEOUT_S) -> None:
        self._session = aiohttp.ClientSession()
        self._candidates = await self.transport.gather()
        self._lines = [
            LocalMediaLine(
                mid="0",
                kind="video",
                direction="recvonly",
                codec=Codec(96, "VP8", 90000, None, None, DEFAULT_VP8.rtcp_fb),
            )
        ]
        async with self._session.post(
            f"{self.base_url}/subscribe",
            json={"sdp": self._describe("actpass")},
            timeout=aiohttp.ClientTimeout(join_timeout_s),
        ) as response:
            answer = await response.json()
        description = parse_sdp(answer["sdp"])
        for section in description.media:
            ssrcs = section.ssrcs()
            if section.kind == "video" and ssrcs:
                stream = self.streams.setdefault(section.mid or "0", _received(section.mid or "0"))
                stream.ssrc = ssrcs[0]
                self._streams_by_ssrc[ssrcs[0]] = stream
        self.joined.set()
        await self._accept_answer(answer["sdp"])
        self._tasks.append(asyncio.create_task(self._remb_loop()))

    async def _remb_loop(self) -> None:
        while not self._closed:
            for stream in self.streams.values():
                if stream.ssrc is not None:
                    self.transport.send_rtcp(build_remb(self.audio.ssrc, REMB_BPS, [stream.ssrc]))
            await asyncio.sleep(REMB_INTERVAL_S)


def _received(mid: str) -> ReceivedStream:
    stream = ReceivedStream(mid, "video", "publisher")
    stream.stats = StreamStats(90000, True)
    return stream


# -- the measurement ---------------------------------------------------------------------------


def start_server(port: int, rtc_ip: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "loadtest.relay_baseline", "serve", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--rtc-ip", rtc_ip], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}/healthz"
    wait_until_answering(process, url, START_TIMEOUT_S, "the relay server")
    return process


async def measure_relay(
    url: str,
    server_pid: int,
    subscribers: int,
    media: MediaLibrary,
    duration_s: float,
    host_address: str = "127.0.0.1",
) -> dict[str, Any]:
    """One publisher and `subscribers` subscribers; the server's CPU over `duration_s`."""
    progress = Progress()
    publisher = RelayPublisher(url, host_address=host_address, media=media)
    progress.participants.append(publisher)
    window: dict[str, Any] | None = None
    try:
        await publisher.join()
        await asyncio.wait_for(publisher.connected.wait(), JOIN_TIMEOUT_S)
        for _ in range(subscribers):
            subscriber = RelaySubscriber(url, host_address=host_address, media=media)
            progress.participants.append(subscriber)
            await subscriber.join()
            await asyncio.wait_for(subscriber.connected.wait(), JOIN_TIMEOUT_S)
        await asyncio.sleep(WARM_UP_S)
        meter = WindowMeter(progress, lambda: process_cpu_seconds(server_pid))
        await asyncio.sleep(duration_s)
        window = meter.stop()
    finally:
        await asyncio.gather(
            *(asyncio.wait_for(p.close(), STOP_TIMEOUT_S) for p in progress.participants),
            return_exceptions=True,
        )
    streams = progress.streams()
    return {
        "subscribers": subscribers,
        "window": window,
        "subscribers_receiving": sum(1 for s in streams if s.packets > 0),
        "frames_received": sum(s.frames for s in streams),
        "publisher_packets_sent": publisher.video_layers[0].packets_sent,
    }


async def run_relay(
    media: MediaLibrary,
    subscriber_counts: tuple[int, ...],
    duration_s: float,
    port: int,
    host_address: str = "127.0.0.1",
) -> list[dict[str, Any]]:
    """A fresh relay server for each count of subscribers."""
    points = []
    for count in subscriber_counts:
        process = await asyncio.to_thread(start_server, port, host_address)
        try:
            points.append(
                await measure_relay(
                    f"http://127.0.0.1:{port}", process.pid, count, media, duration_s, host_address
                )
            )
        finally:
            await asyncio.to_thread(stop_process, process)
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    server = commands.add_parser("serve", help="run the MediaRelay server")
    server.add_argument("--port", type=int, required=True)
    server.add_argument("--rtc-ip", default="127.0.0.1")
    args = parser.parse_args()
    if args.command == "serve":
        serve(args.port, args.rtc_ip)


if __name__ == "__main__":
    main()
