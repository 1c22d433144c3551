"""One Matroska segment of a recording, muxed with PyAV into an `EncryptedWriter`.

Frames are muxed as packets: no decoding, no encoding. VP8 streams are created with
`add_mux_stream` and the size read from the first keyframe's header; Opus streams get their
`OpusHead` as Matroska CodecPrivate from a template stream (recorder/matroska.py): no Opus
encoder or decoder is ever opened.

Crash safety. The output is non-seekable (live style: unknown segment size, no cues), so the
Matroska muxer builds each cluster in memory and writes it whole when the next one starts;
clusters are short (`cluster_time_limit_ms`, `cluster_size_limit`) and `flush_packets` hands
every cluster to the `EncryptedWriter` at once, where it becomes one record (the I/O buffer is
larger than a cluster). The header is held back and written together with the first cluster.
So every record boundary in the file is a cluster boundary, and a file cut at any record
boundary — what `kill -9` leaves — is a playable Matroska file up to its last cluster (about
`cluster_time_limit_ms` + `max_interleave_delta_ms` before the kill).

Tracks. Matroska declares its tracks in the header, which is written once: tracks can be added
until the header is written (`accepts_new_tracks`); after that a new track needs a new segment
(`needs_new_segment`). The header is written when every video track has shown its size (first
keyframe), or once `header_wait_ms` of media is waiting, or at `close()`; a video track
without a keyframe by then is declared with `placeholder_size` (players take the real size from
the bitstream).

Timestamps are the shared timeline's microseconds, written in Matroska's milliseconds; per
stream they strictly increase (a frame that would not is moved to just after the previous one).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import av
from av.container import OutputContainer

from recorder.depacketizer import vp8_frame_size
from recorder.encrypted_writer import EncryptedWriter
from recorder.matroska import MS, add_opus_stream, opus_head, opus_packet_samples

__all__ = [
    "SegmentStartedError",
    "SegmentSummary",
    "SegmentWriter",
    "TrackWriteStats",
    "WriterTrack",
]

IO_BUFFER_SIZE = 4 * 1024 * 1024


class SegmentStartedError(RuntimeError):
    """The segment's header is written: no more tracks can be added (start a new segment)."""


@dataclass(frozen=True)
class WriterTrack:
    """One stream of a segment."""

    track_id: str  # stable name of the stream, e.g. "participant/video/camera"
    kind: Literal["audio", "video"]
    codec: str  # "vp8" or "opus"
    sample_rate: int = 48_000  # audio
    channels: int = 2  # audio (Opus in WebRTC is always negotiated as 2 channels)
    width: int = 0  # video, 0 = from the first keyframe
    height: int = 0
    metadata: Mapping[str, str] = field(default_factory=dict)  # stored as Matroska tags


@dataclass(slots=True)
class TrackWriteStats:
    frames: int = 0
    bytes: int = 0
    keyframes: int = 0
    moved: int = 0  # frames moved to keep the stream's milliseconds from going back
    first_us: int | None = None
    last_us: int | None = None
    sizes: list[tuple[int, int]] = field(default_factory=list)  # VP8 sizes seen, in order


@dataclass(frozen=True)
class SegmentSummary:
    path: Path
    segment_index: int
    recording_id: str
    tracks: tuple[WriterTrack, ...]
    stats: Mapping[str, TrackWriteStats]
    records: int
    bytes_written: int
    closed_cleanly: bool

    @property
    def first_us(self) -> int | None:
        firsts = [s.first_us for s in self.stats.values() if s.first_us is not None]
        return min(firsts) if firsts else None

    @property
    def last_us(self) -> int | None:
        lasts = [s.last_us for s in self.stats.values() if s.last_us is not None]
        return max(lasts) if lasts else None


# --- the segment --------------------------------------------------------------------------------


class _HeaderJoiningSink(io.RawIOBase):
    """What PyAV writes into: holds the Matroska header back until the first cluster follows,
    so the encrypted file never holds a header without a cluster (which players reject)."""

    def __init__(self, target: EncryptedWriter) -> None:
        super().__init__()
        self.target = target
        self._held: bytes | None = None
        self._first = True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        size = len(data)
        if not size:
            return 0
        if self._first:
            self._first = False
            self._held = bytes(data)
            return size
        if self._held is not None:
            self.target.write(self._held + bytes(data))
            self._held = None
        else:
            self.target.write(data)
        return size

    def discard(self) -> None:
        self._held = None
        super().close()

    def close(self) -> None:
        if not self.closed:
            if self._held is not None:
                self.target.write(self._held)
                self._held = None
            super().close()


class SegmentWriter:
    """Writes frames of several tracks into one encrypted Matroska segment (see module doc)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        key: bytes,
        tracks: Iterable[WriterTrack] = (),
        *,
        recording_id: str = "",
        segment_index: int = 0,
        fsync: bool = False,
        cluster_time_limit_ms: int = 500,
        cluster_size_limit: int = 512 * 1024,
        max_interleave_delta_ms: int = 500,
        header_wait_ms: int = 1000,
        placeholder_size: tuple[int, int] = (640, 360),
        title: str = "",
    ) -> None:
        self.path = Path(path)
        self.segment_index = segment_index
        self.recording_id = recording_id
        self._encrypted = EncryptedWriter(
            self.path, key, recording_id=recording_id, segment_index=segment_index, fsync=fsync
        )
        self._sink = _HeaderJoiningSink(self._encrypted)
        self._options = {
            "flush_packets": "1",
            "cluster_time_limit": str(cluster_time_limit_ms),
            "cluster_size_limit": str(cluster_size_limit),
            "max_interleave_delta": str(max_interleave_delta_ms * 1000),
        }
        self._header_wait_us = header_wait_ms * 1000
        self._placeholder_size = placeholder_size
        self._title = title
        self._tracks: dict[str, WriterTrack] = {}
        self._sizes: dict[str, tuple[int, int]] = {}
        self.stats: dict[str, TrackWriteStats] = {}
        self._pending: list[tuple[str, bytes, int, bool, int]] = []
        self._container: OutputContainer | None = None
        self._streams: dict[str, Any] = {}
        self._last_ms: dict[str, int] = {}
        self._closed = False
        self._summary: SegmentSummary | None = None
        for track in tracks:
            self.add_track(track)

    # --- tracks ---

    @property
    def header_written(self) -> bool:
        return self._container is not None

    @property
    def accepts_new_tracks(self) -> bool:
        return not self.header_written and not self._closed

    @property
    def tracks(self) -> tuple[WriterTrack, ...]:
        return tuple(self._tracks.values())

    def has_track(self, track_id: str) -> bool:
        return track_id in self._tracks

    def needs_new_segment(self, tracks: Iterable[WriterTrack]) -> bool:
        """Whether writing these tracks needs a new segment (one is new and the header is out)."""
        return self.header_written and any(t.track_id not in self._tracks for t in tracks)

    def add_track(self, track: WriterTrack) -> None:
        if track.track_id in self._tracks:
            return
        if not self.accepts_new_tracks:
            raise SegmentStartedError(f"{self.path.name}: header written, start a new segment")
        if track.codec not in ("vp8", "opus"):
            raise ValueError(f"codec {track.codec!r} is not recorded (vp8 and opus are)")
        self._tracks[track.track_id] = track
        self.stats[track.track_id] = TrackWriteStats()
        if track.kind == "video" and track.width and track.height:
            self._sizes[track.track_id] = (track.width, track.height)

    # --- frames ---

    def write(
        self,
        track_id: str,
        data: bytes,
        time_us: int,
        *,
        keyframe: bool,
        duration_us: int = 0,
    ) -> None:
        """One frame of `track_id` at timeline time `time_us` (µs)."""
        if self._closed:
            raise ValueError("write to a closed segment")
        track = self._tracks[track_id]
        stats = self.stats[track_id]
        if track.kind == "video" and keyframe:
            size = vp8_frame_size(data)
            if size is not None:
                self._sizes.setdefault(track_id, size)
                if not stats.sizes or stats.sizes[-1] != size:
                    stats.sizes.append(size)
        if track.codec == "opus" and not duration_us:
            duration_us = opus_packet_samples(data) * 1_000_000 // 48_000
        stats.frames += 1
        stats.bytes += len(data)
        stats.keyframes += keyframe and track.kind == "video"
        if stats.first_us is None:
            stats.first_us = time_us
        stats.last_us = time_us
        if self._container is None:
            self._pending.append((track_id, data, time_us, keyframe, duration_us))
            if self._header_due():
                self._start()
            return
        self._mux(track_id, data, time_us, keyframe, duration_us)

    def _header_due(self) -> bool:
        if all(
            track.kind != "video" or track_id in self._sizes
            for track_id, track in self._tracks.items()
        ):
            return True
        times = [item[2] for item in self._pending]
        return max(times) - min(times) >= self._header_wait_us

    def _start(self) -> None:
        container = av.open(
            self._sink,
            "w",
            format="matroska",
            options=self._options,
            buffer_size=IO_BUFFER_SIZE,
        )
        if self._title:
            container.metadata["title"] = self._title
        for track_id, track in self._tracks.items():
            stream: Any
            if track.codec == "vp8":
                size = self._sizes.get(track_id)
                width, height = size or self._placeholder_size
                stream = container.add_mux_stream("vp8", width=width, height=height)
                stream.time_base = MS
                if size is None:
                    stream.metadata["size_placeholder"] = "1"  # export reads the keyframe
            else:
                stream = add_opus_stream(
                    container, opus_head(track.channels, track.sample_rate), track.channels
                )
            stream.metadata.update(track.metadata)
            stream.metadata["track_id"] = track_id
            self._streams[track_id] = stream
        self._container = container
        pending, self._pending = self._pending, []
        for track_id, data, time_us, keyframe, duration_us in pending:
            self._mux(track_id, data, time_us, keyframe, duration_us)

    def _mux(
        self, track_id: str, data: bytes, time_us: int, keyframe: bool, duration_us: int
    ) -> None:
        assert self._container is not None
        pts_ms = time_us // 1000
        last = self._last_ms.get(track_id)
        if last is not None and pts_ms <= last:
            # Two frames in one millisecond, or a step back: decoders want increasing times.
            self.stats[track_id].moved += 1
            pts_ms = last + 1
        self._last_ms[track_id] = pts_ms
        packet = av.Packet(data)
        packet.stream = self._streams[track_id]
        packet.time_base = MS
        packet.pts = packet.dts = pts_ms
        if duration_us:
            packet.duration = max(1, duration_us // 1000)
        packet.is_keyframe = keyframe
        self._container.mux(packet)

    # --- end ---

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> SegmentSummary:
        """Write what is left, the trailer and the final record."""
        if self._summary is not None:
            return self._summary
        self._closed = True
        try:
            if self._container is None and self._pending:
                self._start()
            if self._container is not None:
                self._container.close()
            self._sink.close()
        finally:
            self._encrypted.close()
        self._summary = self._summarise(closed_cleanly=True)
        return self._summary

    def abandon(self) -> SegmentSummary:
        """Stop without the trailer or the final record, as a crash would (for tests and for
        giving up on a broken segment)."""
        if self._summary is not None:
            return self._summary
        self._closed = True
        self._encrypted.abandon()
        self._sink.discard()  # PyAV sees a closed file and writes no trailer
        self._container = None
        self._summary = self._summarise(closed_cleanly=False)
        return self._summary

    def _summarise(self, *, closed_cleanly: bool) -> SegmentSummary:
        return SegmentSummary(
            path=self.path,
            segment_index=self.segment_index,
            recording_id=self.recording_id,
            tracks=self.tracks,
            stats=dict(self.stats),
            records=self._encrypted.records,
            bytes_written=self._encrypted.bytes_written,
            closed_cleanly=closed_cleanly,
        )
