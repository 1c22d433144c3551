"""`make bench`: load scenarios against a fresh `balie serve`, written to BENCHMARKS.md.

Runs inside a loopback-only network namespace (the Makefile takes care of that). The server runs
in its own process, so its CPU time (from /metrics) is the SFU's alone; the synthetic participants
run in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from control.workers import free_port
from loadtest.media import load_media
from loadtest.runner import LoadtestOptions, Progress, default_media_cache, run_scenario

SCENARIOS: list[tuple[str, dict[str, Any]]] = [
    ("fanout", {"subscribers": 20}),
    ("fanout", {"subscribers": 50}),
    ("calls", {"rooms": 10, "participants": 2}),
    ("calls", {"rooms": 5, "participants": 3}),
]


def _start_server(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "control.cli", "serve", "--port", str(port)]
    command += ["--rtc-ip", "127.0.0.1", "--data-dir", str(data_dir), "--max-participants", "128"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("balie serve did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()
    media = load_media(default_media_cache())
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for scenario, settings in SCENARIOS:
            port = free_port()
            data_dir = Path(tmp) / f"data-{port}"
            server = _start_server(data_dir, port)
            try:
                api_key = (data_dir / "secrets" / "api_key").read_text().strip()
                options = LoadtestOptions(
                    scenario=scenario,
                    target=f"http://127.0.0.1:{port}",
                    api_key=api_key,
                    duration_s=args.duration,
                    **settings,
                )
                result = asyncio.run(run_scenario(options, media, Progress()))
                result["settings"] = settings
                results.append(result)
                print(json.dumps({"scenario": scenario, **settings, "sfu": result["sfu"]}))
            finally:
                server.send_signal(signal.SIGTERM)
                try:
                    server.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    server.kill()
    args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
