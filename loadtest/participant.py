"""A synthetic participant: joins like a browser, publishes generated RTP, receives undecoded.

It uses the same signalling as the web page and aiortc's ICE/DTLS/SRTP (through the SFU's adapter),
so everything between the socket and the forwarding path is exercised for real. Every payload it
sends ends in a CRC-32 of the rest, so a receiver can prove that the SFU forwarded the payload
byte for byte (a transcoding server could not keep it).
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from sfu.aiortc_adapter import MediaTransport
from sfu.rtcp import (
    FullIntraRequest,
    Nack,
    PictureLossIndication,
    RtcpError,
    SenderReport,
    build_pli,
    build_sdes_cname,
    build_sender_report,
    parse_rtcp,
)
from sfu.rtp import build_rtp, parse_rtp
from sfu.sdp import (
    DEFAULT_OPUS,
    DEFAULT_VP8,
    MID_URI,
    Codec,
    LocalMediaLine,
    LocalTransport,
    SessionDescription,
    build_sdp,
    parse_sdp,
)
from sfu.sender_report import ntp_from_unix
from sfu.vp8 import vp8_is_keyframe

AUDIO_PACKET_MS = 20
VIDEO_FRAME_MS = 40  # 25 frames per second


def sealed_payload(prefix: bytes, size: int) -> bytes:
    """`prefix` + filler + CRC-32 of everything before it."""
    body = prefix + os.urandom(max(0, size - len(prefix) - 4))
    return body + struct.pack("!I", zlib.crc32(body))


def payload_intact(payload: bytes) -> bool:
    return len(payload) >= 4 and zlib.crc32(payload[:-4]) == struct.unpack("!I", payload[-4:])[0]


@dataclass
class ReceivedStream:
    """What arrived for one remote track."""

    mid: str
    kind: str
    participant_id: str
    ssrc: int | None = None
    packets: int = 0
    bytes: int = 0
    corrupt_payloads: int = 0
    keyframes: int = 0
    highest_seq: int | None = None
    out_of_order: int = 0
    sender_reports: int = 0
    last_timestamp: int | None = None
    # SR RTP timestamp minus the newest packet's timestamp when the SR arrived (signed)
    sender_report_offsets: list[int] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)


class SyntheticParticipant:
    """Joins a room through `/rtc`, publishes audio and VP8-shaped video, counts what it gets."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        host_address: str = "127.0.0.1",
        publish_audio: bool = True,
        publish_video: bool = True,
        video_packet_size: int = 1100,
        video_packets_per_frame: int = 3,
        offer_delay_s: float = 0.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.publish_audio = publish_audio
        self.publish_video = publish_video
        self.video_packet_size = video_packet_size
        self.video_packets_per_frame = video_packets_per_frame
        self.offer_delay_s = offer_delay_s
        self.transport = MediaTransport(
            (host_address,), self._on_rtp, self._on_rtcp, self._on_state, controlling=True
        )
        self.audio_ssrc = int.from_bytes(os.urandom(4), "big") or 1
        self.video_ssrc = int.from_bytes(os.urandom(4), "big") or 2
        self.cname = os.urandom(6).hex()
        self.participant_id: str | None = None
        self.joined = asyncio.Event()
        self.connected = asyncio.Event()
        self.messages: list[dict[str, Any]] = []
        self.errors: list[dict[str, Any]] = []
        self.streams: dict[str, ReceivedStream] = {}  # by mid
        self._streams_by_ssrc: dict[int, ReceivedStream] = {}
        self.plis_received = 0
        self.nacks_received = 0
        self._keyframe_wanted = True
        self._sent: dict[int, dict[int, bytes]] = {self.audio_ssrc: {}, self.video_ssrc: {}}
        self._seq = {self.audio_ssrc: 1000, self.video_ssrc: 5000}
        self._ts_base = {self.audio_ssrc: 12345, self.video_ssrc: 67890}
        self._ts = dict(self._ts_base)
        self._media_clock_start = 0.0
        self._packets_sent = Counter[int]()
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._lines: list[LocalMediaLine] = []
        self._closed = False

    # -- signalling --------------------------------------------------------------------------

    async def join(self, join_timeout_s: float = 10.0) -> None:
        self._session = aiohttp.ClientSession()
        ws_url = self.base_url.replace("http://", "ws://").replace("https://", "wss://") + "/rtc"
        self._ws = await self._session.ws_connect(ws_url, timeout=aiohttp.ClientWSTimeout(10))
        await self._ws.send_json({"type": "join", "token": self.token})
        self._tasks.append(asyncio.create_task(self._read_loop()))
        await asyncio.wait_for(self.joined.wait(), join_timeout_s)

    async def _read_loop(self) -> None:
        assert self._ws is not None
        async for frame in self._ws:
            if frame.type != aiohttp.WSMsgType.TEXT:
                break
            message = json.loads(frame.data)
            self.messages.append(message)
            await self._handle(message)

    async def _send(self, message: dict[str, Any]) -> None:
        if self._ws is not None and not self._ws.closed:
            await self._ws.send_json(message)

    async def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "joined":
            self.participant_id = message["participant"]["id"]
            self.joined.set()
            if self.offer_delay_s:
                await asyncio.sleep(self.offer_delay_s)
            await self._send_offer()
        elif kind == "answer":
            await self._accept_answer(message["sdp"])
        elif kind == "offer":
            await self._answer_offer(message["sdp"], message.get("tracks", {}))
        elif kind == "error":
            self.errors.append(message)

    async def _send_offer(self) -> None:
        candidates = await self.transport.gather()
        if self.publish_audio:
            self._lines.append(
                LocalMediaLine(
                    mid="0",
                    kind="audio",
                    direction="sendonly",
                    codec=DEFAULT_OPUS,
                    extensions=[(4, MID_URI)],
                    ssrc=self.audio_ssrc,
                    cname=self.cname,
                    stream_id="synthetic",
                    track_id="audio",
                )
            )
        if self.publish_video:
            self._lines.append(
                LocalMediaLine(
                    mid=str(len(self._lines)),
                    kind="video",
                    direction="sendonly",
                    codec=DEFAULT_VP8,
                    extensions=[(4, MID_URI)],
                    ssrc=self.video_ssrc,
                    cname=self.cname,
                    stream_id="synthetic",
                    track_id="video",
                )
            )
        self._candidates = candidates
        await self._send({"type": "offer", "sdp": self._describe("actpass")})

    def _describe(self, setup: str) -> str:
        algorithm, fingerprint = self.transport.fingerprint
        return build_sdp(
            session_id=1,
            version=len(self.messages),
            setup=setup,
            transport=LocalTransport(
                self.transport.ice_ufrag,
                self.transport.ice_pwd,
                algorithm,
                fingerprint,
                self._candidates,
            ),
            lines=self._lines,
        )

    def _check(self, description: SessionDescription) -> bool:
        """Reject what a browser would reject: duplicate or missing mids."""
        mids = [section.mid for section in description.media]
        if None in mids or len(set(mids)) != len(mids):
            self.errors.append({"code": "bad_remote_sdp", "message": f"mids {mids}"})
            return False
        return True

    async def _accept_answer(self, sdp: str) -> None:
        description = parse_sdp(sdp)
        if not self._check(description):
            return
        first = description.media[0]
        fingerprint = description.media_value(first, "fingerprint") or ""
        algorithm, _, value = fingerprint.partition(" ")
        self.transport.start(
            description.media_value(first, "ice-ufrag") or "",
            description.media_value(first, "ice-pwd") or "",
            algorithm,
            value,
        )
        for candidate in first.values("candidate"):
            await self.transport.add_remote_candidate(candidate)
        await self.transport.end_of_candidates()

    async def _answer_offer(self, sdp: str, tracks: dict[str, dict[str, str]]) -> None:
        description = parse_sdp(sdp)
        if not self._check(description):
            return
        lines: list[LocalMediaLine] = []
        reverse = {"sendonly": "recvonly", "recvonly": "sendonly"}
        for section in description.media:
            mid = section.mid or ""
            existing = next((line for line in self._lines if line.mid == mid), None)
            if existing is not None:
                lines.append(existing)
                continue
            rtpmap = section.rtpmap()
            codec: Codec | None = None
            if section.port and section.formats and section.formats[0].isdigit():
                pt = int(section.formats[0])
                name, rate, channels = rtpmap.get(pt, ("opus", 48000, 2))
                codec = Codec(pt, name, rate, channels)
            lines.append(
                LocalMediaLine(
                    mid=mid,
                    kind=section.kind,
                    direction=reverse.get(section.direction, "inactive"),
                    codec=codec,
                    proto=section.proto,
                    formats=section.formats,
                )
            )
            info = tracks.get(mid)
            ssrcs = section.ssrcs()
            if info is not None and section.direction == "sendonly":
                stream = self.streams.get(mid)
                if stream is None:
                    stream = ReceivedStream(mid, section.kind, info["participant_id"])
                    self.streams[mid] = stream
                if ssrcs:
                    stream.ssrc = ssrcs[0]
                    self._streams_by_ssrc[ssrcs[0]] = stream
        # keep the publish lines' state but adopt the SFU's order
        self._lines = lines
        await self._send({"type": "answer", "sdp": self._describe("passive")})

    # -- media -------------------------------------------------------------------------------

    def _on_state(self, state: str) -> None:
        if state == "connected":
            self.connected.set()
            self._tasks.append(asyncio.create_task(self._publish_loop()))

    def _on_rtp(self, data: bytes, arrival_time_ms: int) -> None:
        packet = parse_rtp(data)
        if packet is None:
            return
        stream = self._streams_by_ssrc.get(packet.ssrc)
        if stream is None:
            return
        stream.packets += 1
        stream.bytes += len(packet.payload)
        if not payload_intact(packet.payload):
            stream.corrupt_payloads += 1
        if stream.kind == "video" and vp8_is_keyframe(packet.payload):
            stream.keyframes += 1
        if stream.highest_seq is not None and ((packet.seq - stream.highest_seq) & 0xFFFF) > 0x8000:
            stream.out_of_order += 1
        else:
            stream.highest_seq = packet.seq
        stream.last_timestamp = packet.timestamp
        if len(stream.seqs) < 20000:
            stream.seqs.append(packet.seq)

    def _on_rtcp(self, data: bytes) -> None:
        try:
            for message in parse_rtcp(data):
                if isinstance(message, PictureLossIndication | FullIntraRequest):
                    self.plis_received += 1
                    self._keyframe_wanted = True
                elif isinstance(message, Nack):
                    self.nacks_received += 1
                    sent = self._sent.get(message.media_ssrc, {})
                    for seq in message.lost:
                        packet = sent.get(seq)
                        if packet is not None:
                            self.transport.send_rtp(packet)
                elif isinstance(message, SenderReport):
                    stream = self._streams_by_ssrc.get(message.ssrc)
                    if stream is not None:
                        stream.sender_reports += 1
                        if stream.last_timestamp is not None:
                            offset = (message.rtp_timestamp - stream.last_timestamp) & 0xFFFFFFFF
                            if offset >= 1 << 31:
                                offset -= 1 << 32
                            stream.sender_report_offsets.append(offset)
        except RtcpError:
            pass

    def _send_packet(self, ssrc: int, payload_type: int, payload: bytes, marker: bool) -> None:
        seq = self._seq[ssrc] & 0xFFFF
        self._seq[ssrc] += 1
        packet = build_rtp(
            payload_type=payload_type,
            seq=seq,
            timestamp=self._ts[ssrc],
            ssrc=ssrc,
            payload=payload,
            marker=marker,
        )
        sent = self._sent[ssrc]
        sent[seq] = packet
        sent.pop((seq - 512) & 0xFFFF, None)
        self._packets_sent[ssrc] += 1
        self.transport.send_rtp(packet)

    async def _publish_loop(self) -> None:
        """Audio every 20 ms, a video frame every 40 ms; timestamps follow the send schedule."""
        start = time.monotonic()
        self._media_clock_start = start
        tick = 0
        next_report = start
        while not self._closed:
            if self.publish_audio:
                self._ts[self.audio_ssrc] = self._ts_base[self.audio_ssrc] + tick * 960
                self._send_packet(
                    self.audio_ssrc, DEFAULT_OPUS.payload_type, sealed_payload(b"\xfc", 80), False
                )
            if self.publish_video and tick % (VIDEO_FRAME_MS // AUDIO_PACKET_MS) == 0:
                self._ts[self.video_ssrc] = self._ts_base[self.video_ssrc] + tick * 90 * 20
                self._send_frame()
            now = time.monotonic()
            if now >= next_report:
                next_report = now + 1.0
                self._send_sender_reports(now)
            tick += 1
            await asyncio.sleep(max(0.0, start + tick * AUDIO_PACKET_MS / 1000 - time.monotonic()))

    def _send_frame(self) -> None:
        keyframe = self._keyframe_wanted
        self._keyframe_wanted = False
        for index in range(self.video_packets_per_frame):
            descriptor = bytes([0x10 if index == 0 else 0x00])
            header = bytes([0x00 if keyframe else 0x01]) if index == 0 else b""
            self._send_packet(
                self.video_ssrc,
                DEFAULT_VP8.payload_type,
                sealed_payload(descriptor + header, self.video_packet_size),
                index == self.video_packets_per_frame - 1,
            )

    def _send_sender_reports(self, now: float) -> None:
        """Sender reports that map the media clock (send schedule) to wall-clock time."""
        elapsed = now - self._media_clock_start
        report = b""
        for ssrc, rate in ((self.audio_ssrc, 48000), (self.video_ssrc, 90000)):
            if self._packets_sent[ssrc]:
                rtp_timestamp = self._ts_base[ssrc] + int(elapsed * rate)
                report += build_sender_report(
                    ssrc, ntp_from_unix(time.time()), rtp_timestamp, self._packets_sent[ssrc], 0
                )
        if report:
            self.transport.send_rtcp(report + build_sdes_cname(self.audio_ssrc, self.cname))

    def request_keyframe(self, mid: str) -> None:
        stream = self.streams.get(mid)
        if stream is not None and stream.ssrc is not None:
            self.transport.send_rtcp(build_pli(self.video_ssrc, stream.ssrc))

    async def send_raw(self, message: dict[str, Any]) -> None:
        await self._send(message)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._ws is not None and not self._ws.closed:
            try:
                await self._ws.send_json({"type": "leave"})
            except ConnectionError:
                pass
            await self._ws.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        await self.transport.close()
        if self._session is not None:
            await self._session.close()
