"""A recording's manifest as the recorder process keeps it: live while recording, then final.

The control plane's record (`recording.json`: room, consent or the case type that makes recording
mandatory, start and stop) and what the recorder knows (tracks, participants and roles, segment
files) go into one `manifest.json` (recorder/manifest.py). After a crash, `finalise_recording`
rebuilds it from the files on disk and the tracks of the last live manifest.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, cast

from recorder.manifest import MANIFEST_NAME, build_manifest, read_manifest, write_manifest
from recorder.session import SEGMENT_PATTERN, TrackInfo
from recorder.writer import SegmentSummary


def iso_to_unix(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def track_from_dict(value: Mapping[str, Any]) -> TrackInfo:
    kind = str(value["kind"])
    if kind not in ("audio", "video"):
        raise ValueError("bad track kind")
    return TrackInfo(
        ssrc=int(value["ssrc"]),
        kind=cast(Literal["audio", "video"], kind),
        codec=str(value["codec"]).lower(),
        clock_rate=int(value["clock_rate"]),
        payload_type=int(value["payload_type"]),
        participant_id=str(value["participant_id"]),
        role=str(value["role"]),
        label=str(value.get("label") or ("camera" if kind == "video" else "microphone")),
        channels=int(value.get("channels", 2)),
    )


def segment_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if SEGMENT_PATTERN.match(p.name))


def recording_manifest(
    record: Mapping[str, Any],
    directory: Path,
    key: bytes | None,
    tracks: Sequence[TrackInfo],
    participants: Sequence[Mapping[str, Any]],
    segments: Sequence[SegmentSummary | Path],
    *,
    live: bool,
    recorder_restarts: int = 0,
) -> dict[str, Any]:
    started = float(record.get("started_unix_s") or iso_to_unix(str(record["started_at"])) or 0)
    ended = None
    if not live:
        ended = record.get("stopped_unix_s") or iso_to_unix(record.get("stopped_at"))
    mandatory = None
    if record.get("basis") == "mandatory":
        mandatory = f"case type {record.get('case_type')!r} is recorded by law"
    return build_manifest(
        recording_id=str(record["id"]),
        room={"id": record["room"], "case_type": record.get("case_type")},
        directory=directory,
        started_unix_s=started,
        ended_unix_s=ended,
        tracks=tracks,
        segments=segments,
        consent=record.get("consent"),
        key=key,
        participants=participants,
        mandatory_reason=mandatory,
        extra={
            "state": "recording" if live else "stopped",
            "stop_reason": None if live else record.get("stop_reason"),
            "started_by": record.get("started_by"),
            "recorder_restarts": recorder_restarts,
        },
    )


def previous_state(directory: Path) -> tuple[list[TrackInfo], list[dict[str, Any]]]:
    """The tracks and participants of the manifest already on disk (from before a restart)."""
    path = directory / MANIFEST_NAME
    try:
        previous = read_manifest(path) if path.exists() else {}
    except (OSError, ValueError):
        previous = {}
    tracks = []
    for value in previous.get("tracks") or []:
        try:
            tracks.append(track_from_dict(value))
        except (KeyError, TypeError, ValueError):
            continue
    participants = [
        dict(p)
        for p in previous.get("participants") or []
        if isinstance(p, dict) and isinstance(p.get("id"), str)
    ]
    return tracks, participants


def merge_tracks(earlier: Sequence[TrackInfo], current: Sequence[TrackInfo]) -> list[TrackInfo]:
    """Tracks of earlier runs (segments before a restart) and of this one, each once."""
    seen = set(current)
    return [*(t for t in earlier if t not in seen), *current]


def finalise_recording(
    directory: Path, record: Mapping[str, Any], key: bytes | None = None
) -> dict[str, Any]:
    """The final manifest from what is on disk (the recorder may have died while writing)."""
    directory.mkdir(parents=True, exist_ok=True)
    tracks, participants = previous_state(directory)
    if key is None:
        hex_key = os.environ.get("BALIE_RECORDING_KEY", "")
        key = bytes.fromhex(hex_key) if len(hex_key) == 64 else None
    manifest = recording_manifest(
        record,
        directory,
        key,
        tracks,
        participants,
        segment_files(directory),
        live=False,
        recorder_restarts=int(record.get("recorder_restarts") or 0),
    )
    write_manifest(manifest, directory / MANIFEST_NAME)
    return manifest
