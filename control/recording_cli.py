"""`balie recording export|verify`: work with stored recordings (a `Command`, common/commands.py).

`export` decrypts a recording into one playable Matroska file with the data directory's
recording key; `verify` checks its files against the SHA-256 hashes in its manifest.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common.commands import CommandError, Subparsers
from control.config import default_data_dir, load_recording_key
from control.recordings import RecordingStore


def add_parser(commands: Subparsers[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    recording = commands.add_parser("recording", help="work with stored recordings")
    recording_commands = recording.add_subparsers(
        dest="recording_command", required=True, metavar="ACTION"
    )
    export = recording_commands.add_parser(
        "export", help="decrypt a recording into one playable Matroska file"
    )
    export.add_argument("recording_id", metavar="ID", help="recording id (rec_...)")
    export.add_argument("--out", type=Path, required=True, help="file to write (.mkv)")
    export.add_argument(
        "--data-dir", type=Path, default=None, help="data directory (BALIE_DATA_DIR or ./data)"
    )
    verify = recording_commands.add_parser(
        "verify", help="check a recording's files against the SHA-256 hashes in its manifest"
    )
    verify.add_argument("recording_id", metavar="ID", help="recording id (rec_...)")
    verify.add_argument(
        "--data-dir", type=Path, default=None, help="data directory (BALIE_DATA_DIR or ./data)"
    )
    return recording


def run(args: argparse.Namespace) -> int:
    data_dir: Path = (args.data_dir if args.data_dir is not None else default_data_dir()).resolve()
    store = RecordingStore(data_dir)
    try:
        directory = store.directory(args.recording_id)
    except ValueError:
        raise CommandError(f"not a recording id: {args.recording_id!r}") from None
    if not (directory / "recording.json").is_file():
        raise CommandError(f"no recording {args.recording_id} in {data_dir}")
    if args.recording_command == "verify":
        from recorder.manifest import verify_hashes

        manifest = store.manifest(args.recording_id)
        if manifest is None:
            raise CommandError("the recording has no manifest yet")
        problems = verify_hashes(manifest, directory)
        for problem in problems:
            print(f"MISMATCH {problem}")
        if problems:
            return 1
        print(f"{args.recording_id}: every file matches its SHA-256 in the manifest")
        return 0
    from recorder.export import export_recording

    try:
        key = bytes.fromhex(load_recording_key(data_dir))
        summary = export_recording(directory, key, args.out)
    except (ValueError, OSError) as exc:
        raise CommandError(str(exc)) from None
    print(f"Wrote {args.out}: {summary}")
    return 0
