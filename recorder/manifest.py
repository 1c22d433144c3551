"""The archive record next to a recording: `manifest.json`.

It says what the recording is (room, participants and their roles, start and end, consent),
what it holds (tracks and codecs, segments) and lets anyone check that the files are the ones
written (SHA-256 of every segment). It is written atomically: a temporary file in the same
directory, fsync, rename, fsync of the directory, so a reader sees the old or the new manifest,
never half of one.

Layout (version 1)::

    {
      "format": "digitale-balie-recording", "version": 1,
      "recording_id": "...", "room": {"id": "...", ...},
      "started_at": "2024-05-01T09:30:00.000000Z", "started_unix_s": 1714555800.0,
      "ended_at": ... or null, "ended_unix_s": ... or null,
      "consent": {"given_by": "...", "statement": "...", "given_at": "..."} or null,
      "mandatory": null or {"reason": "..."},
      "participants": [{"id": "...", "role": "...", ...}],
      "tracks": [{"stream_key", "participant_id", "role", "kind", "label", "codec",
                  "clock_rate", "ssrc", ...}],
      "encryption": {"scheme": "aes-256-gcm-stream-v1", "key_id": "hex"},
      "segments": [{"file": "segment-0000.mkv.enc", "index": 0, "size": 123,
                    "sha256": "hex", "closed_cleanly": true, "first_us": 0, "last_us": 9000,
                    "tracks": ["participant/video/camera", ...]}],
      ...extra
    }
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common.files import write_json_atomic
from recorder.segment_crypto import key_id as _key_id
from recorder.session import TrackInfo
from recorder.writer import SegmentSummary

__all__ = [
    "FORMAT",
    "MANIFEST_NAME",
    "VERSION",
    "build_manifest",
    "iso_time",
    "read_manifest",
    "sha256_file",
    "verify_hashes",
    "write_manifest",
]

FORMAT = "digitale-balie-recording"
VERSION = 1
MANIFEST_NAME = "manifest.json"
ENCRYPTION_SCHEME = "aes-256-gcm-stream-v1"


def iso_time(unix_s: float) -> str:
    return datetime.fromtimestamp(unix_s, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _participants(tracks: Iterable[TrackInfo]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for track in tracks:
        seen.setdefault(track.participant_id, {"id": track.participant_id, "role": track.role})
    return list(seen.values())


def _segment_entry(directory: Path, segment: SegmentSummary | Path) -> dict[str, Any]:
    if isinstance(segment, SegmentSummary):
        path = segment.path
        entry: dict[str, Any] = {
            "file": path.name,
            "index": segment.segment_index,
            "closed_cleanly": segment.closed_cleanly,
            "records": segment.records,
            "first_us": segment.first_us,
            "last_us": segment.last_us,
            "tracks": [track.track_id for track in segment.tracks],
        }
    else:
        path = segment
        entry = {"file": path.name, "index": None, "closed_cleanly": None}
    full = path if path.is_absolute() else directory / path
    entry["size"] = full.stat().st_size
    entry["sha256"] = sha256_file(full)
    return entry


def build_manifest(
    *,
    recording_id: str,
    room: Mapping[str, Any] | str,
    directory: str | os.PathLike[str],
    started_unix_s: float,
    ended_unix_s: float | None,
    tracks: Sequence[TrackInfo],
    segments: Sequence[SegmentSummary | Path],
    consent: Mapping[str, Any] | None,
    key: bytes | None = None,
    participants: Sequence[Mapping[str, Any]] | None = None,
    mandatory_reason: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest dict; hashes every segment file (they must be closed, or at least not being
    written, for the hash to stay true)."""
    if consent is None and mandatory_reason is None:
        raise ValueError("a recording needs a consent record or a reason it is mandatory")
    folder = Path(directory)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "recording_id": recording_id,
        "room": {"id": room} if isinstance(room, str) else dict(room),
        "started_at": iso_time(started_unix_s),
        "started_unix_s": started_unix_s,
        "ended_at": iso_time(ended_unix_s) if ended_unix_s is not None else None,
        "ended_unix_s": ended_unix_s,
        "consent": dict(consent) if consent is not None else None,
        "mandatory": {"reason": mandatory_reason} if mandatory_reason is not None else None,
        "participants": (
            [dict(p) for p in participants] if participants is not None else _participants(tracks)
        ),
        "tracks": [track.as_dict() for track in tracks],
        "encryption": {
            "scheme": ENCRYPTION_SCHEME,
            "key_id": _key_id(key).hex() if key is not None else None,
        },
        "segments": [_segment_entry(folder, segment) for segment in segments],
    }
    if extra:
        for name, value in extra.items():
            manifest.setdefault(name, value)
    return manifest


def write_manifest(manifest: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Write atomically: temporary file, fsync, rename over `path`, fsync the directory."""
    write_json_atomic(path, manifest)


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    with open(path, encoding="utf-8") as file:
        manifest = json.load(file)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{path} is not a recording manifest")
    return manifest


def verify_hashes(manifest: Mapping[str, Any], directory: str | os.PathLike[str]) -> list[str]:
    """Problems found (a missing file, a size or SHA-256 that differs); empty when all match."""
    problems: list[str] = []
    folder = Path(directory)
    for entry in manifest.get("segments", []):
        name = entry.get("file")
        if not isinstance(name, str) or "/" in name or name in ("", ".", ".."):
            problems.append(f"bad file name {name!r}")
            continue
        path = folder / name
        if not path.is_file():
            problems.append(f"{name}: missing")
            continue
        size = path.stat().st_size
        if entry.get("size") is not None and size != entry["size"]:
            problems.append(f"{name}: size {size}, manifest says {entry['size']}")
        digest = sha256_file(path)
        if digest != entry.get("sha256"):
            problems.append(f"{name}: SHA-256 {digest} does not match the manifest")
    return problems
