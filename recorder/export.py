"""Turning a recording's encrypted segments back into one playable Matroska/WebM file.

No transcoding: packets are decrypted, demuxed and muxed again. Tracks are matched across
segments by participant and kind (and label, when a participant has several tracks of one
kind), so one participant's camera is one video track in the export however many segments and
restarts it went through. Timestamps stay on the recording's shared timeline (0 = the start of
the recording), so a late joiner starts later and whoever left early ends earlier.

A segment whose last record is partial (the recorder was killed) is exported up to its last
complete record; a segment that does not authenticate stops the export
(`SegmentTamperedError`). A packet that would go back in time within its track (it can only
happen around a crash) is left out and counted.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from av.container import InputContainer, OutputContainer

from recorder.depacketizer import vp8_frame_size
from recorder.encrypted_reader import EncryptedReader, PlaintextFile, open_encrypted
from recorder.manifest import MANIFEST_NAME, read_manifest
from recorder.matroska import MS, add_opus_stream, opus_head
from recorder.segment_crypto import read_header
from recorder.session import SEGMENT_PATTERN

__all__ = [
    "ExportError",
    "ExportReport",
    "ExportedSegment",
    "ExportedTrack",
    "export_recording",
    "list_segments",
]


MAX_NUDGE_MS = 100  # a packet at most this much too early is moved, an older one dropped


class ExportError(RuntimeError):
    """Nothing to export, or segments of different recordings."""


@dataclass
class ExportedTrack:
    participant_id: str
    role: str
    kind: str
    label: str
    codec: str
    packets: int = 0
    dropped: int = 0
    first_s: float | None = None
    end_s: float | None = None  # last packet's time + its duration
    width: int = 0
    height: int = 0


@dataclass
class ExportedSegment:
    file: str
    index: int
    closed_cleanly: bool = False
    records: int = 0
    packets: int = 0
    error: str | None = None  # why reading stopped early (a partial last cluster)


@dataclass
class ExportReport:
    out_path: Path
    recording_id: str
    tracks: list[ExportedTrack] = field(default_factory=list)
    segments: list[ExportedSegment] = field(default_factory=list)

    @property
    def start_s(self) -> float | None:
        firsts = [t.first_s for t in self.tracks if t.first_s is not None]
        return min(firsts) if firsts else None

    @property
    def duration_s(self) -> float:
        """Length of the exported file from the recording's start to its last packet's end."""
        ends = [t.end_s for t in self.tracks if t.end_s is not None]
        return max(ends) if ends else 0.0


def list_segments(directory: str | os.PathLike[str]) -> list[Path]:
    """The segment files of a recording directory, by index."""
    found: list[tuple[int, Path]] = []
    for entry in Path(directory).iterdir():
        match = SEGMENT_PATTERN.match(entry.name)
        if match and entry.is_file():
            found.append((int(match.group(1)), entry))
    return [path for _, path in sorted(found)]


@dataclass
class _InputTrack:
    participant_id: str
    role: str
    kind: str
    label: str
    codec: str
    width: int
    height: int
    extradata: bytes
    channels: int
    size_placeholder: bool = False


def _describe(stream: Any) -> _InputTrack | None:
    metadata = {k.lower(): v for k, v in stream.metadata.items()}
    codec = stream.codec_context.name if stream.codec_context is not None else ""
    if stream.type not in ("audio", "video") or codec not in ("vp8", "opus"):
        return None
    track_id = metadata.get("track_id", "")
    participant = metadata.get("participant_id") or track_id.split("/")[0] or f"#{stream.index}"
    ctx = stream.codec_context
    return _InputTrack(
        participant_id=participant,
        role=metadata.get("role", ""),
        kind=stream.type,
        label=metadata.get("label", ""),
        codec=codec,
        width=ctx.width if stream.type == "video" else 0,
        height=ctx.height if stream.type == "video" else 0,
        extradata=bytes(ctx.extradata or b"") if stream.type == "audio" else b"",
        channels=ctx.channels if stream.type == "audio" else 0,
        size_placeholder=metadata.get("size_placeholder") == "1",
    )


def _read_sizes(container: InputContainer, tracks: list[_InputTrack | None]) -> None:
    """Take the size of placeholder-sized video tracks from their first keyframe."""
    missing = {i for i, t in enumerate(tracks) if t is not None and t.size_placeholder}
    if not missing:
        return
    probe = ExportedSegment("", 0)
    for packet in _packets(container, probe):
        index = packet.stream.index
        if index in missing and packet.is_keyframe:
            size = vp8_frame_size(bytes(packet))
            track = tracks[index]
            if size is not None and track is not None:
                track.width, track.height = size
                track.size_placeholder = False
                missing.discard(index)
                if not missing:
                    return


def _open_input(
    path: Path, key: bytes, recording_id: str
) -> tuple[EncryptedReader, PlaintextFile, InputContainer | None]:
    reader = open_encrypted(path, key, expected_recording_id=recording_id)
    plaintext = reader.as_file()
    try:
        container = av.open(plaintext, "r", format="matroska")
    except (av.error.FFmpegError, EOFError):
        return reader, plaintext, None  # nothing but a header (or not even that) was written
    return reader, plaintext, container


def _packets(container: InputContainer, segment: ExportedSegment) -> Iterator[Any]:
    try:
        for packet in container.demux():
            if packet.dts is None and packet.pts is None:
                continue  # the demuxer's flush packet
            yield packet
    except av.error.FFmpegError as error:
        segment.error = str(error)


def export_recording(
    directory: str | os.PathLike[str],
    key: bytes,
    out_path: str | os.PathLike[str],
    *,
    container_format: str | None = None,
) -> ExportReport:
    """Decrypt and remux every segment of `directory` into `out_path` (see the module doc).

    The format follows the file name (`.webm` → WebM, otherwise Matroska) unless
    `container_format` is given.
    """
    folder = Path(directory)
    paths = list_segments(folder)
    if not paths:
        raise ExportError(f"{folder}: no segments")
    manifest_path = folder / MANIFEST_NAME
    recording_id = (
        read_manifest(manifest_path)["recording_id"]
        if manifest_path.exists()
        else read_header(paths[0]).recording_id
    )
    out = Path(out_path)
    report = ExportReport(out_path=out, recording_id=recording_id)

    # Pass 1: the tracks of every segment (only the headers are read).
    per_segment: list[list[_InputTrack | None]] = []
    for path in paths:
        _reader, _plaintext, container = _open_input(path, key, recording_id)
        if container is None:
            per_segment.append([])
            continue
        with container:
            described = [_describe(stream) for stream in container.streams]
            _read_sizes(container, described)
            per_segment.append(described)

    labels: dict[tuple[str, str], set[str]] = {}
    for tracks in per_segment:
        for track in tracks:
            if track is not None:
                labels.setdefault((track.participant_id, track.kind), set()).add(track.label)

    def output_key(track: _InputTrack) -> tuple[str, str, str]:
        several = len(labels[(track.participant_id, track.kind)]) > 1
        return (track.participant_id, track.kind, track.label if several else "")

    order: dict[tuple[str, str, str], _InputTrack] = {}
    for tracks in per_segment:
        for track in tracks:
            if track is not None:
                current = order.setdefault(output_key(track), track)
                if current.size_placeholder and not track.size_placeholder:
                    order[output_key(track)] = track
    if not order:
        raise ExportError(f"{folder}: the segments hold no recorded media")

    fmt = container_format or ("webm" if out.suffix.lower() == ".webm" else "matroska")
    output: OutputContainer = av.open(str(out), "w", format=fmt)
    streams: dict[tuple[str, str, str], Any] = {}
    exported: dict[tuple[str, str, str], ExportedTrack] = {}
    last_ms: dict[tuple[str, str, str], int] = {}
    try:
        output.metadata["title"] = recording_id
        for okey, track in order.items():
            if track.kind == "video":
                stream = output.add_mux_stream("vp8", width=track.width, height=track.height)
                stream.time_base = MS
            else:
                extradata = track.extradata or opus_head(track.channels or 2)
                stream = add_opus_stream(output, extradata, track.channels or 2)
            stream.metadata.update(
                {
                    "title": f"{track.participant_id} ({track.role}) {track.kind}".strip(),
                    "participant_id": track.participant_id,
                    "role": track.role,
                    "kind": track.kind,
                    "label": track.label,
                }
            )
            streams[okey] = stream
            exported[okey] = ExportedTrack(
                track.participant_id,
                track.role,
                track.kind,
                track.label,
                track.codec,
                width=track.width,
                height=track.height,
            )
            report.tracks.append(exported[okey])

        # Pass 2: the packets.
        for path, tracks in zip(paths, per_segment, strict=True):
            header = read_header(path)
            segment = ExportedSegment(path.name, header.segment_index)
            report.segments.append(segment)
            reader, plaintext, container = _open_input(path, key, recording_id)
            if container is not None:
                with container:
                    keys = [output_key(t) if t is not None else None for t in tracks]
                    for packet in _packets(container, segment):
                        index = packet.stream.index
                        found = keys[index] if index < len(keys) else None
                        if found is not None:
                            _remux(output, packet, found, streams, exported, last_ms, segment)
            plaintext.drain()  # to the end: the result, and the tamper check of every record
            if reader.result is not None:
                segment.closed_cleanly = reader.result.closed_cleanly
                segment.records = reader.result.records
    finally:
        output.close()
    return report


def _remux(
    output: OutputContainer,
    packet: Any,
    okey: tuple[str, str, str],
    streams: dict[tuple[str, str, str], Any],
    exported: dict[tuple[str, str, str], ExportedTrack],
    last_ms: dict[tuple[str, str, str], int],
    segment: ExportedSegment,
) -> None:
    base: Fraction = packet.time_base
    timestamp = packet.dts if packet.dts is not None else packet.pts
    time_ms = round(timestamp * base * 1000)
    duration_ms = round(packet.duration * base * 1000) if packet.duration else 0
    track = exported[okey]
    last = last_ms.get(okey)
    if last is not None and time_ms <= last:
        if last - time_ms > MAX_NUDGE_MS:
            track.dropped += 1
            return
        # Decoders and muxers want strictly increasing times: move it just after the last one.
        time_ms = last + 1
    last_ms[okey] = time_ms
    is_keyframe = packet.is_keyframe
    out = av.Packet(bytes(packet))
    out.stream = streams[okey]
    out.time_base = MS
    out.pts = out.dts = time_ms
    if duration_ms:
        out.duration = duration_ms
    out.is_keyframe = is_keyframe
    output.mux(out)
    track.packets += 1
    segment.packets += 1
    if track.first_s is None:
        track.first_s = time_ms / 1000
    track.end_s = max(track.end_s or 0.0, (time_ms + duration_ms) / 1000)
