"""Writes BENCHMARKS.md from the results `make bench` produced, with the commands that made them."""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def _machine() -> str:
    cores = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    return f"{platform.machine()}, {cores} cores, Python {platform.python_version()}"


def _load_table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| scenario | participants | µs CPU per forwarded packet | SFU CPU s | packets forwarded "
        "| loss | delay p50 / p99 ms | freezes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        sfu = result.get("sfu") or {}
        settings = ", ".join(f"{key} {value}" for key, value in result.get("settings", {}).items())
        delay = result["delay_ms"]
        lines.append(
            f"| {result['scenario']} ({settings}) | {result['joined']} "
            f"| {sfu.get('cpu_us_per_forwarded_packet')} | {sfu.get('cpu_seconds')} "
            f"| {sfu.get('packets_forwarded')} | {100 * result['loss']:.3f} % "
            f"| {delay['p50']} / {delay['p99']} | {result['freezes']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--micro", type=Path, required=True)
    parser.add_argument("--load", type=Path, default=None, help="JSON from loadtest.bench")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    micro = args.micro.read_text(encoding="utf-8")
    load = _load_table(json.loads(args.load.read_text(encoding="utf-8"))) if args.load else ""
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

{micro}
## Load scenarios against `balie serve`

Command: `make bench` (runs `python -m loadtest.bench --duration 20 --json FILE` in a loopback-only
network namespace). Synthetic participants publish pre-encoded VP8 simulcast (three layers) and
Opus and receive without decoding; the SFU runs in its own process with one worker. CPU is the
server process's own CPU time over the measured 20 s (from its /metrics), divided by the packets it
forwarded in that time. Delay is one-way, publisher to subscriber, on the shared clock.

{load}
Not measured yet (see the open load-test issue): Janus VideoRoom in the same run, the aiortc
MediaRelay baseline, several workers, and the CPU-against-load chart.
""",
        encoding="utf-8",
    )


if __name__ == "__main__":
    main()
