"""`make bench`: Balie, Janus VideoRoom and aiortc's MediaRelay under the same load, one run.

Runs as root inside a loopback-only network namespace (the Makefile takes care of that; Janus gets
its address on a veth pair inside it, see `loadtest.janus.add_janus_address`). Every server runs
in its own process, fresh for each measurement, and its CPU is that process's CPU time over the
measured window (/proc/PID/stat); the synthetic participants run in this process. Packets
forwarded are the packets the subscribers received in the window, for every server alike.

What it measures, in this order:

1. fan-out (1 publisher, N subscribers) against Balie (`balie serve --workers 1`) and Janus;
2. aiortc's MediaRelay with 1, 2 and 4 subscribers;
3. the largest number of two-person calls with loss under 0.5 % and p99 delay under 10 ms, for
   both servers: K = 10, 20, ... in turns (Balie, Janus, Balie, ...), each server until a step
   fails twice or the time budget is spent, then one step halfway between the largest pass and
   the failure;
4. three-person calls against Balie.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.ports import free_port
from loadtest.janus import JANUS_ADDRESS, add_janus_address, run_janus_scenario, running_janus
from loadtest.media import MediaLibrary, load_media
from loadtest.processes import stop_process, wait_until_answering
from loadtest.relay_baseline import WARM_UP_S, run_relay
from loadtest.runner import (
    LoadtestOptions,
    Progress,
    default_media_cache,
    process_cpu_seconds,
    run_scenario,
)

FANOUT_SUBSCRIBERS = (20, 50, 100)
RELAY_SUBSCRIBERS = (1, 2, 4)
CALL_STEPS = (10, 20, 30, 40, 50, 60, 70, 80, 100, 120)
THREE_PERSON_ROOMS = 5
SERVERS = ("balie", "janus")
MAX_LOSS = 0.005
MAX_P99_DELAY_MS = 10.0
STEP_OVERHEAD_S = 25.0  # joining and leaving around the measured window, for the budget
SETTLE_S = 2.0  # after the last join, before the window opens


def _start_balie(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "control.cli", "serve", "--port", str(port), "--workers", "1"]
    command += ["--rtc-ip", "127.0.0.1", "--data-dir", str(data_dir), "--max-participants", "128"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until_answering(process, f"http://127.0.0.1:{port}/healthz", 30, "balie serve")
    return process


def run_balie(
    scenario: str, settings: dict[str, Any], media: MediaLibrary, duration_s: float, tmp: Path
) -> dict[str, Any]:
    port = free_port()
    data_dir = tmp / f"data-{port}"
    server = _start_balie(data_dir, port)
    try:
        api_key = (data_dir / "secrets" / "api_key").read_text().strip()
        options = LoadtestOptions(
            scenario=scenario,
            target=f"http://127.0.0.1:{port}",
            api_key=api_key,
            duration_s=duration_s,
            max_loss=MAX_LOSS,
            max_p99_delay_ms=MAX_P99_DELAY_MS,
            watch_metrics=False,
            **settings,
        )
        result = asyncio.run(
            run_scenario(
                options,
                media,
                Progress(),
                server_cpu=lambda: process_cpu_seconds(server.pid),
                settle_s=SETTLE_S,
            )
        )
    finally:
        stop_process(server, 15)
    result["server"] = "balie"
    return result


def run_janus(
    scenario: str, settings: dict[str, Any], media: MediaLibrary, duration_s: float
) -> dict[str, Any]:
    with running_janus() as janus:
        options = LoadtestOptions(
            scenario=scenario,
            target=janus.url,
            api_key="",
            duration_s=duration_s,
            host_address=JANUS_ADDRESS,
            max_loss=MAX_LOSS,
            max_p99_delay_ms=MAX_P99_DELAY_MS,
            **settings,
        )
        result = asyncio.run(run_janus_scenario(janus, options, media, settle_s=SETTLE_S))
        if not result["passed"]:
            result["janus_log"] = janus.log_tail(10)
    return result


@dataclass
class CallSearch:
    """Steps up the number of calls until one fails (twice) or the time runs out."""

    passed: list[int] = field(default_factory=list)
    failed: int | None = None
    stopped: str | None = None

    def add(self, rooms: int, failures: list[str]) -> None:
        if failures:
            self.failed = rooms
            self.stopped = f"{rooms} calls failed: " + "; ".join(failures)
        else:
            self.passed.append(rooms)

    def middle(self) -> int | None:
        """A step between the largest pass and the failure, if there is room for one."""
        if self.failed is None or not self.passed:
            return None
        low = max(self.passed)
        middle = (low + self.failed) // 2
        return middle if low < middle < self.failed else None


def window_failures(result: dict[str, Any]) -> list[str]:
    """Why a run misses the thresholds in its measured window (empty: it meets them)."""
    failures = []
    if result.get("join_errors"):
        failures.append(f"{result['join_errors']} participants could not join")
    window = result.get("window")
    if not window or not window.get("packets_received"):
        return [*failures, "nothing was received in the window"]
    if window["loss"] >= MAX_LOSS:
        failures.append(f"loss {100 * window['loss']:.3f} % >= {100 * MAX_LOSS} %")
    p99 = window["delay_ms"]["p99"]
    if p99 is None or p99 >= MAX_P99_DELAY_MS:
        failures.append(f"p99 delay {p99} ms >= {MAX_P99_DELAY_MS} ms")
    return failures


def _brief(server: str, scenario: str, settings: dict[str, Any], result: dict[str, Any]) -> str:
    window = result.get("window") or {}
    return json.dumps(
        {
            "server": server,
            "scenario": scenario,
            **settings,
            "cpu_share": window.get("cpu_share"),
            "client_cpu_share": window.get("client_cpu_share"),
            "us_per_packet": window.get("cpu_us_per_received_packet"),
            "loss": window.get("loss"),
            "p99_ms": (window.get("delay_ms") or {}).get("p99"),
            "failures": result.get("window_failures"),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=15.0, help="measured seconds per run")
    parser.add_argument(
        "--budget", type=float, default=660.0, help="seconds for the whole run (%(default)s)"
    )
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--fanout", type=_counts, default=FANOUT_SUBSCRIBERS, help="20,50,100")
    parser.add_argument("--relay", type=_counts, default=RELAY_SUBSCRIBERS, help="1,2,4")
    parser.add_argument("--calls", type=_counts, default=CALL_STEPS, help="10,20,...")
    args = parser.parse_args()
    started = time.monotonic()
    deadline = started + args.budget
    add_janus_address()
    media = load_media(default_media_cache())
    runs: list[dict[str, Any]] = []

    def record(server: str, scenario: str, settings: dict[str, Any]) -> dict[str, Any]:
        if server == "balie":
            result = run_balie(scenario, settings, media, args.duration, tmp)
        else:
            result = run_janus(scenario, settings, media, args.duration)
        result["settings"] = settings
        result["window_failures"] = window_failures(result)
        runs.append({"server": server, "scenario": scenario, **result})
        print(_brief(server, scenario, settings, result), flush=True)
        return result

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for subscribers in args.fanout:
            for server in SERVERS:
                record(server, "fanout", {"subscribers": subscribers})
        relay = asyncio.run(run_relay(media, args.relay, args.duration, free_port()))
        for point in relay:
            print(json.dumps({"server": "mediarelay", **point}), flush=True)
        # The calls search, in turns so that both servers share the time budget; one
        # three-person run against Balie is kept for the end.
        step_cost = args.duration + STEP_OVERHEAD_S
        search = {server: CallSearch() for server in SERVERS}

        def step(server: str, rooms: int) -> list[str]:
            settings = {"rooms": rooms, "participants": 2}
            failures: list[str] = record(server, "calls", settings)["window_failures"]
            if failures and time.monotonic() + 2 * step_cost <= deadline:
                # A step fails only when it fails twice: one stall of this shared machine must
                # not end the search.
                failures = record(server, "calls", settings)["window_failures"]
            return failures

        for rooms in args.calls:
            for server in SERVERS:
                state = search[server]
                if state.stopped is not None:
                    continue
                if time.monotonic() + 2 * step_cost > deadline:
                    state.stopped = f"the time budget was spent before {rooms} calls"
                    continue
                state.add(rooms, step(server, rooms))
        # One step halfway between the largest pass and the failure, when time allows.
        for server in SERVERS:
            state = search[server]
            middle = state.middle()
            if middle is not None and time.monotonic() + 2 * step_cost <= deadline:
                state.add(middle, step(server, middle))
        for state in search.values():
            if state.stopped is None:
                state.stopped = f"the largest step ({args.calls[-1]} calls) passed"
        record("balie", "calls", {"rooms": THREE_PERSON_ROOMS, "participants": 3})

    output = {
        "command": "make bench",
        "duration_s": args.duration,
        "settle_s": SETTLE_S,
        "relay_warm_up_s": WARM_UP_S,
        "elapsed_s": round(time.monotonic() - started, 1),
        "machine": _machine(),
        "thresholds": {"max_loss": MAX_LOSS, "max_p99_delay_ms": MAX_P99_DELAY_MS},
        "runs": runs,
        "relay": relay,
        "calls_search": {server: vars(state) for server, state in search.items()},
    }
    args.json.write_text(json.dumps(output, indent=2) + "\n", encoding="utf-8")


def _counts(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part.strip())


def _machine() -> dict[str, Any]:
    cores = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    janus = subprocess.run(["janus", "--version"], capture_output=True, text=True, check=False)
    return {
        "arch": platform.machine(),
        "cores": int(cores) if cores.isdigit() else None,
        "python": platform.python_version(),
        "janus": (janus.stdout.splitlines() or ["?"])[0],
    }


if __name__ == "__main__":
    main()
