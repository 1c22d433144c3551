"""Writes BENCHMARKS.md from the results `make bench` produced, with the commands that made them."""

from __future__ import annotations

import argparse
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path


def _machine() -> str:
    cores = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    return f"{platform.machine()}, {cores} cores, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--micro", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    micro = args.micro.read_text(encoding="utf-8")
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    args.out.write_text(
        f"""# Benchmarks

Made by `make bench` on {now} ({_machine()}). Numbers are CPU time of this process
(`time.process_time`), best of five runs, so other load on the machine matters less.

## Forwarding path (micro-benchmark)

Command: `python -m loadtest.microbench --markdown FILE`

One publisher's VP8 video (1200-byte packets) forwarded to N down tracks through the real
`Participant._on_rtp` → `PublishedStream.receive` → `DownTrack.forward`, without sockets or SRTP
(those cost the same for every design and are measured by the load tests).

{micro}""",
        encoding="utf-8",
    )


if __name__ == "__main__":
    main()
