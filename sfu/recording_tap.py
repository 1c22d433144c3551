"""Sends one room's media to the recorder process as plain RTP over loopback.

The recorder (recorder/) is a subscriber like any other, but on the same machine and trusted: it
gets plain RTP and RTCP on a UDP socket on 127.0.0.1 instead of a WebRTC transport, so no ICE,
DTLS or SRTP is spent on a copy that never leaves the machine (docs/recording.md). Each published
track gets one `DownTrack` locked to the highest layer that is flowing, so layer switches reach
the recorder as one continuous stream (sequence numbers, timestamps and VP8 picture ids
rewritten, exactly as for a browser). Every second the tap sends sender reports (the publisher's
NTP clock, so the recorder can put all tracks on one timeline) and a JSON datagram naming its
tracks, so a recorder that restarted learns them again without asking. The recorder asks for
keyframes with RTCP PLI sent back to the tap's socket.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from typing import TYPE_CHECKING, Any

from sfu.clock import now_ms
from sfu.downtrack import DownTrack
from sfu.rtcp import FullIntraRequest, PictureLossIndication, RtcpError, build_bye, parse_rtcp

if TYPE_CHECKING:
    from sfu.participant import Participant
    from sfu.publication import Publication

logger = logging.getLogger(__name__)

TAP_INTERVAL_MS = 1000
FIRST_REPORT_INTERVAL_MS = 100
ANNOUNCE_TYPE = "balie-recording-tracks"


def recorded_layer(flowing: list[bool]) -> int:
    """The layer to record: the highest one that is flowing, else the top one (pure)."""
    for layer in range(len(flowing) - 1, -1, -1):
        if flowing[layer]:
            return layer
    return max(0, len(flowing) - 1)


class RecordingTap(asyncio.DatagramProtocol):
    """One recording of one room: a down track per published track, sent to the recorder."""

    def __init__(self, room_id: str, recording_id: str, port: int) -> None:
        self.room_id = room_id
        self.recording_id = recording_id
        self.address = ("127.0.0.1", port)
        self.downtracks: dict[int, DownTrack] = {}  # by the tap's SSRC
        self._participants: dict[int, Participant] = {}
        self._reported: set[int] = set()  # tracks that had their first sender report
        self._transport: asyncio.DatagramTransport | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.packets_sent = 0
        self.send_errors = 0
        self.keyframe_requests = 0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, remote_addr=self.address)
        self._task = asyncio.create_task(self._run())

    # -- asyncio.DatagramProtocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        try:
            messages = list(parse_rtcp(data))
        except RtcpError:
            return
        for message in messages:
            if isinstance(message, PictureLossIndication):
                ssrcs: tuple[int, ...] = (message.media_ssrc,)
            elif isinstance(message, FullIntraRequest):
                ssrcs = message.media_ssrcs
            else:
                continue
            for ssrc in ssrcs:
                downtrack = self.downtracks.get(ssrc)
                if downtrack is not None:
                    self.keyframe_requests += 1
                    downtrack.publication.request_keyframe(now_ms(), downtrack.target_layer)

    def error_received(self, exc: Exception) -> None:
        # Nobody listens (the recorder is restarting): packets are lost, the call goes on.
        self.send_errors += 1

    # -- what the room tells it --------------------------------------------------------------

    def add_publication(self, publication: Publication, participant: Participant) -> None:
        if self._closed:
            return
        for existing in self.downtracks.values():
            if existing.publication is publication:
                return
        ssrc = secrets.randbits(32) or 1
        while ssrc in self.downtracks:
            ssrc = secrets.randbits(32) or 1
        downtrack = DownTrack(
            publication,
            mid=f"rec-{len(self.downtracks)}",
            ssrc=ssrc,
            payload_type=publication.payload_type,
            sink=self,
            initial_seq=secrets.randbits(16),
            initial_timestamp=secrets.randbits(32),
        )
        downtrack.active = True
        self.downtracks[ssrc] = downtrack
        self._participants[ssrc] = participant
        publication.add_downtrack(downtrack)
        publication.request_keyframe(now_ms(), downtrack.target_layer)
        self._announce()

    def remove_participant(self, participant: Participant) -> None:
        gone = [ssrc for ssrc, p in self._participants.items() if p is participant]
        for ssrc in gone:
            self._remove(ssrc)
        if gone:
            self._send(build_bye(gone))
            self._announce()

    def _remove(self, ssrc: int) -> None:
        downtrack = self.downtracks.pop(ssrc)
        self._participants.pop(ssrc, None)
        downtrack.active = False
        downtrack.publication.remove_downtrack(downtrack)

    # -- sending -----------------------------------------------------------------------------

    def send_rtp(self, data: bytes) -> bool:
        transport = self._transport
        if transport is None:
            return False
        transport.sendto(data)
        self.packets_sent += 1
        return True

    def _send(self, data: bytes) -> None:
        if self._transport is not None:
            self._transport.sendto(data)

    def describe_tracks(self) -> list[dict[str, object]]:
        tracks: list[dict[str, object]] = []
        for ssrc, downtrack in self.downtracks.items():
            participant = self._participants[ssrc]
            publication = downtrack.publication
            tracks.append(
                {
                    "ssrc": ssrc,
                    "kind": publication.kind,
                    "codec": "VP8" if publication.kind == "video" else "opus",
                    "clock_rate": publication.clock_rate,
                    "payload_type": publication.payload_type,
                    "participant_id": participant.id,
                    "name": participant.name,
                    "role": participant.role,
                    "track_id": publication.track_id,
                }
            )
        return tracks

    def _announce(self) -> None:
        message = {
            "type": ANNOUNCE_TYPE,
            "recording_id": self.recording_id,
            "room": self.room_id,
            "tracks": self.describe_tracks(),
        }
        self._send(json.dumps(message, separators=(",", ":")).encode())

    def tick(self, now_ms: int) -> None:
        """Follow the highest flowing layer, send sender reports and the track list."""
        for downtrack in self.downtracks.values():
            publication = downtrack.publication
            if publication.kind == "video":
                layer = recorded_layer(publication.flowing_layers(now_ms))
                downtrack.wanted_layer = layer
                if downtrack.selector.target_layer != layer:
                    downtrack.selector.set_target(layer)
                    publication.request_keyframe(now_ms, layer)
            report = downtrack.sender_report(now_ms)
            if report is not None:
                self._reported.add(downtrack.ssrc)
                self._send(report)
        self._announce()

    def report_new_tracks(self, now_ms: int) -> None:
        """A first sender report as soon as a track flows, so the recorder maps it early."""
        for ssrc, downtrack in self.downtracks.items():
            if ssrc not in self._reported:
                report = downtrack.sender_report(now_ms)
                if report is not None:
                    self._reported.add(ssrc)
                    self._send(report)

    async def _run(self) -> None:
        steps = TAP_INTERVAL_MS // FIRST_REPORT_INTERVAL_MS
        step = 0
        while True:
            try:
                if step % steps == 0:
                    self.tick(now_ms())
                else:
                    self.report_new_tracks(now_ms())
            except Exception:  # the recording must never stop the call
                logger.exception("recording tap failed")
            step += 1
            await asyncio.sleep(FIRST_REPORT_INTERVAL_MS / 1000)

    async def close(self) -> None:
        """Stop sending; the publications stop feeding it. Idempotent."""
        if self._closed:
            return
        self._closed = True
        ssrcs = list(self.downtracks)
        for ssrc in ssrcs:
            self._remove(ssrc)
        if ssrcs:
            self._send(build_bye(ssrcs))
        task = self._task
        self._task = None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        if self._transport is not None:
            self._transport.close()
            self._transport = None
