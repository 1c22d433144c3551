"""The synchronous core of one recording: RTP/RTCP in, encrypted Matroska segments out.

The process shell feeds it every datagram from the SFU (`on_rtp`, `on_rtcp`), calls `poll`
about every 100 ms, and sends back the RTCP packets these return (PLI keyframe requests). Track
descriptions come from the control side (`add_track`, `remove_track`).

Tracks and streams. Every track is one RTP stream (one SSRC). Its frames go to the segment
stream named by `TrackInfo.stream_key` (participant, kind, label), so a publisher that restarts
with a new SSRC continues the same stream: its clock re-anchors (`TrackClock.restart`) and its
video waits for a keyframe. Video starts with a keyframe (the depacketizer drops what comes
before and asks for one); audio starts at once.

Segments. Files are `{directory}/segment-{index:04d}.mkv.enc`. A track whose stream is not in
the current segment, once that segment's header is written, starts a new segment
(`SegmentWriter.needs_new_segment`): the current one is closed, the next one is opened at the
next frame with every active track, and every video track waits for (and asks for) a keyframe,
so each segment plays on its own. A recorder restarted after a crash makes a new session with the
same `start_unix_s` (so the timeline continues) and continues after the highest existing index.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from recorder.depacketizer import DepacketizerStats, Frame, OpusDepacketizer, Vp8Depacketizer
from recorder.timeline import Timeline, TrackClock
from recorder.writer import SegmentSummary, SegmentWriter, WriterTrack
from sfu.rtcp import Bye, RtcpError, SenderReport, build_pli, parse_rtcp
from sfu.rtp import parse_rtp

__all__ = [
    "SEGMENT_PATTERN",
    "RecordingSession",
    "TrackInfo",
    "TrackStats",
    "next_segment_index",
    "segment_path",
]

SEGMENT_PATTERN = re.compile(r"^segment-(\d{4,})\.mkv\.enc$")
DEFAULT_LOCAL_SSRC = 0x5245_4330  # "REC0": the recorder's own SSRC in its RTCP


def segment_path(directory: str | os.PathLike[str], index: int) -> Path:
    return Path(directory) / f"segment-{index:04d}.mkv.enc"


def next_segment_index(directory: str | os.PathLike[str]) -> int:
    """One more than the highest segment index in `directory` (0 when there is none)."""
    highest = -1
    path = Path(directory)
    if path.is_dir():
        for entry in path.iterdir():
            match = SEGMENT_PATTERN.match(entry.name)
            if match:
                highest = max(highest, int(match.group(1)))
    return highest + 1


@dataclass(frozen=True)
class TrackInfo:
    ssrc: int
    kind: Literal["audio", "video"]
    codec: str  # "vp8" or "opus"
    clock_rate: int  # 90000 for VP8, 48000 for Opus
    payload_type: int
    participant_id: str
    role: str
    label: str  # e.g. "camera", "microphone"
    channels: int = 2  # Opus in WebRTC is negotiated as 2 channels

    @property
    def stream_key(self) -> str:
        return f"{self.participant_id}/{self.kind}/{self.label}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "ssrc": self.ssrc,
            "kind": self.kind,
            "codec": self.codec,
            "clock_rate": self.clock_rate,
            "payload_type": self.payload_type,
            "participant_id": self.participant_id,
            "role": self.role,
            "label": self.label,
            "channels": self.channels,
            "stream_key": self.stream_key,
        }


@dataclass(frozen=True)
class TrackStats:
    ssrc: int
    stream_key: str
    kind: str
    active: bool
    packets: int
    lost: int
    duplicates: int
    late: int
    frames_written: int
    frames_dropped: int
    keyframes: int
    keyframe_requests: int
    sender_reports: int
    clock_restarts: int
    nudged: int
    first_us: int | None
    last_us: int | None


class _Track:
    __slots__ = (
        "active",
        "clock",
        "depacketizer",
        "first_us",
        "frames_written",
        "info",
        "last_us",
        "sender_reports",
    )

    def __init__(
        self, info: TrackInfo, depacketizer: Vp8Depacketizer | OpusDepacketizer, clock: TrackClock
    ) -> None:
        self.info = info
        self.depacketizer = depacketizer
        self.clock = clock
        self.active = True
        self.frames_written = 0
        self.sender_reports = 0
        self.first_us: int | None = None
        self.last_us: int | None = None

    @property
    def depacketizer_stats(self) -> DepacketizerStats:
        return self.depacketizer.stats


class RecordingSession:
    """One recording (see the module docstring)."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        key: bytes,
        *,
        recording_id: str,
        start_unix_s: float,
        first_segment_index: int | None = None,
        fsync: bool = False,
        local_ssrc: int = DEFAULT_LOCAL_SSRC,
        keyframe_interval_ms: int = 500,
        reorder_delay_ms: int = 100,
        writer_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.key = key
        self.recording_id = recording_id
        self.start_unix_s = start_unix_s
        self.timeline = Timeline(start_unix_s)
        self.fsync = fsync
        self.local_ssrc = local_ssrc
        self.keyframe_interval_ms = keyframe_interval_ms
        self.reorder_delay_ms = reorder_delay_ms
        self._writer_options = dict(writer_options or {})
        self._next_index = (
            next_segment_index(self.directory)
            if first_segment_index is None
            else first_segment_index
        )
        self._tracks: dict[int, _Track] = {}  # by SSRC, including ended tracks
        self._by_stream: dict[str, int] = {}  # stream key → SSRC of its active track
        self._history: list[TrackInfo] = []
        self._writer: SegmentWriter | None = None
        self._segments: list[SegmentSummary] = []
        self._closed = False
        self.unknown_packets = 0  # not RTP, or an SSRC without a track
        self.foreign_payload_packets = 0  # another payload type: only advances the sequence

    # --- tracks ---

    def add_track(self, info: TrackInfo) -> None:
        if self._closed:
            raise ValueError("the recording is closed")
        if info.kind not in ("audio", "video") or info.codec not in ("vp8", "opus"):
            raise ValueError(f"cannot record {info.kind} {info.codec}")
        existing = self._tracks.get(info.ssrc)
        if existing is not None and existing.active:
            if existing.info == info:
                return
            self.remove_track(info.ssrc)
        previous = self._by_stream.get(info.stream_key)
        if previous is not None:
            self.remove_track(previous)  # the same stream under a new SSRC: a restart
        depacketizer: Vp8Depacketizer | OpusDepacketizer
        if info.codec == "vp8":
            depacketizer = Vp8Depacketizer(
                max_delay_ms=self.reorder_delay_ms, keyframe_interval_ms=self.keyframe_interval_ms
            )
        else:
            depacketizer = OpusDepacketizer(max_delay_ms=self.reorder_delay_ms)
        clock_existed = info.stream_key in self.timeline.tracks
        clock = self.timeline.track(
            info.stream_key, info.clock_rate, info.participant_id, video=info.kind == "video"
        )
        if clock_existed:
            clock.restart()
        self._tracks[info.ssrc] = _Track(info, depacketizer, clock)
        self._by_stream[info.stream_key] = info.ssrc
        self._history.append(info)
        writer = self._writer
        if writer is not None:
            spec = self._writer_track(info)
            if writer.needs_new_segment([spec]):
                self._rotate()
            elif not writer.has_track(spec.track_id):
                writer.add_track(spec)

    def remove_track(self, ssrc: int) -> None:
        """The track ended (participant left, unpublished): write what is complete."""
        track = self._tracks.get(ssrc)
        if track is None or not track.active:
            return
        self._write_frames(track, track.depacketizer.finish())
        track.active = False
        if self._by_stream.get(track.info.stream_key) == ssrc:
            del self._by_stream[track.info.stream_key]

    @property
    def tracks(self) -> list[TrackInfo]:
        """Every track ever added, in order."""
        return list(self._history)

    @property
    def active_tracks(self) -> list[TrackInfo]:
        return [t.info for t in self._tracks.values() if t.active]

    # --- packets ---

    def on_rtp(self, data: bytes, arrival_unix_s: float) -> list[bytes]:
        """One RTP packet from the SFU; returns RTCP packets to send back (PLI)."""
        packet = parse_rtp(data)
        track = self._tracks.get(packet.ssrc) if packet is not None else None
        if packet is None or track is None or not track.active:
            self.unknown_packets += 1
            return []
        payload = packet.payload
        if packet.padding_size:
            payload = payload[: len(payload) - packet.padding_size]
        if packet.payload_type != track.info.payload_type:
            self.foreign_payload_packets += 1
            payload = b""
        frames = track.depacketizer.push(
            packet.seq, packet.timestamp, packet.marker, payload, arrival_unix_s
        )
        if frames:
            self._write_frames(track, frames)
        if track.depacketizer.keyframe_wanted and track.depacketizer.keyframe_request_due(
            arrival_unix_s
        ):
            return [build_pli(self.local_ssrc, track.info.ssrc)]
        return []

    def on_rtcp(self, data: bytes, arrival_unix_s: float) -> list[bytes]:
        """An RTCP packet from the SFU: sender reports map the tracks' clocks; BYE ends one."""
        try:
            for message in parse_rtcp(data):
                if isinstance(message, SenderReport):
                    track = self._tracks.get(message.ssrc)
                    if track is not None and track.active:
                        if track.clock.on_sender_report(
                            message.ntp_timestamp, message.rtp_timestamp, arrival_unix_s
                        ):
                            track.sender_reports += 1
                elif isinstance(message, Bye):
                    for ssrc in message.ssrcs:
                        self.remove_track(ssrc)
        except RtcpError:
            self.unknown_packets += 1
        return []

    def poll(self, now_unix_s: float) -> list[bytes]:
        """Call regularly (~100 ms): gives up on late packets, repeats keyframe requests."""
        out: list[bytes] = []
        for track in self._tracks.values():
            if not track.active:
                continue
            frames = track.depacketizer.poll(now_unix_s)
            if frames:
                self._write_frames(track, frames)
            if track.depacketizer.keyframe_request_due(now_unix_s):
                out.append(build_pli(self.local_ssrc, track.info.ssrc))
        return out

    # --- segments ---

    def _writer_track(self, info: TrackInfo) -> WriterTrack:
        return WriterTrack(
            track_id=info.stream_key,
            kind=info.kind,
            codec=info.codec,
            sample_rate=info.clock_rate if info.kind == "audio" else 48_000,
            channels=info.channels,
            metadata={
                "participant_id": info.participant_id,
                "role": info.role,
                "kind": info.kind,
                "label": info.label,
                "ssrc": str(info.ssrc),
                "title": f"{info.participant_id} ({info.role}) {info.label}".strip(),
            },
        )

    def _open_writer(self) -> SegmentWriter:
        index = self._next_index
        self._next_index += 1
        writer = SegmentWriter(
            segment_path(self.directory, index),
            self.key,
            [self._writer_track(t.info) for t in self._tracks.values() if t.active],
            recording_id=self.recording_id,
            segment_index=index,
            fsync=self.fsync,
            title=self.recording_id,
            **self._writer_options,
        )
        self._writer = writer
        return writer

    def _rotate(self) -> None:
        """Close the current segment; the next frame opens a new one with every active track."""
        writer = self._writer
        if writer is None:
            return
        self._writer = None
        self._segments.append(writer.close())
        for track in self._tracks.values():
            if track.active and track.info.kind == "video":
                track.depacketizer.request_keyframe()

    def start_new_segment(self) -> None:
        """Close the current segment now (e.g. to keep files small); recording continues."""
        self._rotate()

    def _write_frames(self, track: _Track, frames: list[Frame]) -> None:
        if self._closed or not frames:
            return
        writer = self._writer or self._open_writer()
        key = track.info.stream_key
        if not writer.has_track(key):
            writer.add_track(self._writer_track(track.info))
        for frame in frames:
            time_us = track.clock.map(frame.timestamp, frame.arrival_unix_s)
            writer.write(key, frame.data, time_us, keyframe=frame.keyframe)
            track.frames_written += 1
            if track.first_us is None:
                track.first_us = time_us
            track.last_us = time_us

    @property
    def segments(self) -> list[SegmentSummary]:
        """The closed segments, in order."""
        return list(self._segments)

    @property
    def current_segment(self) -> Path | None:
        return self._writer.path if self._writer is not None else None

    def close(self) -> list[SegmentSummary]:
        """End the recording: write what is complete and close the segment."""
        if self._closed:
            return self.segments
        for ssrc, track in list(self._tracks.items()):
            if track.active:
                self.remove_track(ssrc)
        self._closed = True
        if self._writer is not None:
            self._segments.append(self._writer.close())
            self._writer = None
        return self.segments

    @property
    def closed(self) -> bool:
        return self._closed

    # --- statistics ---

    def stats(self) -> dict[int, TrackStats]:
        out: dict[int, TrackStats] = {}
        for ssrc, track in self._tracks.items():
            dep = track.depacketizer.stats
            clock = track.clock.stats
            out[ssrc] = TrackStats(
                ssrc=ssrc,
                stream_key=track.info.stream_key,
                kind=track.info.kind,
                active=track.active,
                packets=dep.packets,
                lost=dep.lost,
                duplicates=dep.duplicates,
                late=dep.late,
                frames_written=track.frames_written,
                frames_dropped=dep.frames_dropped,
                keyframes=dep.keyframes,
                keyframe_requests=dep.keyframe_requests,
                sender_reports=track.sender_reports,
                clock_restarts=clock.restarts,
                nudged=clock.nudged,
                first_us=track.first_us,
                last_us=track.last_us,
            )
        return out
