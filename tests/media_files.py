"""ffprobe and ffmpeg as judges of recorded files."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path


def ffprobe(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", "-show_streams", "-show_format", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def decode_errors(path: Path, *, all_streams: bool = False) -> str:
    """What `ffmpeg -v error -i FILE -f null -` says (empty when all is well).

    ffmpeg decodes one video and one audio stream by default; `all_streams` decodes every one
    and also reports a failing exit status.
    """
    command = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path)]
    command += ["-map", "0"] if all_streams else []
    out = subprocess.run([*command, "-f", "null", "-"], capture_output=True, text=True)
    if all_streams:
        return out.stderr + ("" if out.returncode == 0 else f"exit {out.returncode}")
    return out.stderr.strip()
