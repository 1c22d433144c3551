"""Writes BENCHMARKS.md and its chart from what `make bench` measured, with the commands used.

Every figure and every ratio comes from the JSON of one `loadtest.bench` run; nothing is typed in.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FANOUT_TARGET_SUBSCRIBERS = 100
FANOUT_TARGET_RATIO = 1.0  # Balie's CPU per forwarded packet at most this times Janus's
CALLS_PER_CORE_TARGET = 60
RELAY_TARGET_RATIO = 30.0  # MediaRelay's CPU per subscriber at least this times Balie's
GENERATOR_BUSY = 0.9  # the synthetic participants' process above this share of a core: the limit
MAX_P99_DELAY_MS = 10.0
SERVER_NAMES = {"balie": "Balie", "janus": "Janus", "mediarelay": "aiortc MediaRelay"}


def _fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _runs(data: dict[str, Any], server: str, scenario: str) -> list[dict[str, Any]]:
    return [r for r in data["runs"] if r["server"] == server and r["scenario"] == scenario]


def _fanout(data: dict[str, Any], server: str) -> dict[int, dict[str, Any]]:
    return {r["settings"]["subscribers"]: r for r in _runs(data, server, "fanout")}


def _two_person_calls(data: dict[str, Any], server: str) -> list[dict[str, Any]]:
    return [r for r in _runs(data, server, "calls") if r["settings"]["participants"] == 2]


def _slope(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of y over x."""
    if len(points) < 2:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


def _us_per_packet(run: dict[str, Any] | None) -> float | None:
    window = (run or {}).get("window") or {}
    value = window.get("cpu_us_per_received_packet")
    return float(value) if value is not None else None


# -- the figures ---------------------------------------------------------------------------------


def fanout_ratio(data: dict[str, Any], subscribers: int) -> float | None:
    balie = _us_per_packet(_fanout(data, "balie").get(subscribers))
    janus = _us_per_packet(_fanout(data, "janus").get(subscribers))
    return balie / janus if balie is not None and janus else None


def calls_capacity(data: dict[str, Any], server: str) -> dict[str, Any]:
    """The largest passing number of two-person calls, and what it means per core."""
    search = data["calls_search"][server]
    passed = search["passed"]
    best = max(passed) if passed else None
    runs = [r for r in _two_person_calls(data, server) if r["settings"]["rooms"] == best]
    share = None
    if runs:
        share = max((r["window"] or {}).get("cpu_share") or 0.0 for r in runs)
    per_core = None
    if best is not None and share is not None:
        per_core = best / max(1.0, share)
    # CPU per call from every passing run: what one core would hold if CPU were the only limit
    slopes = [
        (r["window"]["cpu_share"] / r["settings"]["rooms"])
        for r in _two_person_calls(data, server)
        if not r["window_failures"] and (r.get("window") or {}).get("cpu_share")
    ]
    projected = 1.0 / (sum(slopes) / len(slopes)) if slopes else None
    failing = [
        r for r in _two_person_calls(data, server) if r["settings"]["rooms"] == search["failed"]
    ]
    windows = [r.get("window") or {} for r in failing]
    cpu = [w.get("client_cpu_share") or 0.0 for w in windows]
    lag = [(w.get("client_loop_lag_ms") or {}).get("max") or 0.0 for w in windows]
    generator_busy = bool(failing) and min(cpu) >= GENERATOR_BUSY
    generator_stalled = bool(failing) and min(lag) >= MAX_P99_DELAY_MS
    return {
        "best": best,
        "cpu_share": share,
        "per_core": per_core,
        "projected_per_core": projected,
        "stopped": search["stopped"],
        "generator_busy": generator_busy,
        "generator_stalled": generator_stalled,
    }


def relay_ratio(data: dict[str, Any]) -> dict[str, float | None]:
    """CPU (share of a core) per added subscriber: MediaRelay and Balie's fan-out, and the ratio."""
    relay = [
        (p["subscribers"], p["window"]["cpu_share"])
        for p in data["relay"]
        if p.get("window") and p["window"].get("cpu_share") is not None
    ]
    balie = [
        (n, r["window"]["cpu_share"])
        for n, r in _fanout(data, "balie").items()
        if r.get("window") and r["window"].get("cpu_share") is not None
    ]
    relay_slope = _slope(relay)
    balie_slope = _slope(balie)
    ratio = relay_slope / balie_slope if relay_slope and balie_slope and balie_slope > 0 else None
    return {"relay": relay_slope, "balie": balie_slope, "ratio": ratio}


# -- the document --------------------------------------------------------------------------------


def _verdict(met: bool | None) -> str:
    return "not measured" if met is None else ("**met**" if met else "**not met**")


def targets_table(data: dict[str, Any]) -> str:
    ratio = fanout_ratio(data, FANOUT_TARGET_SUBSCRIBERS)
    balie_fanout = _fanout(data, "balie").get(FANOUT_TARGET_SUBSCRIBERS)
    janus_fanout = _fanout(data, "janus").get(FANOUT_TARGET_SUBSCRIBERS)
    balie_calls = calls_capacity(data, "balie")
    janus_calls = calls_capacity(data, "janus")
    relay = relay_ratio(data)
    per_core = balie_calls["per_core"]
    calls_met = None
    if _two_person_calls(data, "balie"):
        calls_met = per_core is not None and per_core >= CALLS_PER_CORE_TARGET
    rows = [
        "| target | measured | |",
        "|---|---|---|",
        f"| fan-out to {FANOUT_TARGET_SUBSCRIBERS}: Balie's CPU per forwarded packet at most "
        f"{FANOUT_TARGET_RATIO:.1f}× Janus's | Balie {_fmt(_us_per_packet(balie_fanout))} µs, "
        f"Janus {_fmt(_us_per_packet(janus_fanout))} µs: {_fmt(ratio)}× "
        f"| {_verdict(None if ratio is None else ratio <= FANOUT_TARGET_RATIO)} |",
        f"| at least {CALLS_PER_CORE_TARGET} two-person calls per core, loss < 0.5 %, "
        f"p99 delay < 10 ms | Balie {_calls_text(balie_calls)}; Janus "
        f"{_calls_text(janus_calls)} "
        f"| {_verdict(calls_met)} |",
        f"| at least {RELAY_TARGET_RATIO:.0f}× less CPU per subscriber than aiortc MediaRelay "
        f"| MediaRelay {_fmt(_percent(relay['relay']), 1)} % of a core per subscriber, Balie "
        f"{_fmt(_percent(relay['balie']), 3)} %: {_fmt(relay['ratio'], 0)}× "
        f"| {_verdict(None if relay['ratio'] is None else relay['ratio'] >= RELAY_TARGET_RATIO)} |",
    ]
    return "\n".join(rows) + "\n"


def _percent(share: float | None) -> float | None:
    return None if share is None else 100 * share


def _calls_text(capacity: dict[str, Any]) -> str:
    if capacity["best"] is None:
        return "no step passed"
    return (
        f"{capacity['best']} calls passed ({_fmt(_percent(capacity['cpu_share']), 0)} % of a "
        f"core) = {_fmt(capacity['per_core'], 0)} per core"
    )


def load_table(data: dict[str, Any]) -> str:
    lines = [
        "| server | scenario | server CPU, % of a core | packets forwarded | µs CPU per "
        "forwarded packet | loss | delay p50 / p99 ms | freezes | load generator CPU, % / "
        "loop lag p99 ms | |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for run in data["runs"]:
        window = run.get("window") or {}
        delay = window.get("delay_ms") or {}
        settings = ", ".join(f"{key} {value}" for key, value in run["settings"].items())
        lag = (window.get("client_loop_lag_ms") or {}).get("p99")
        verdict = "ok" if not run["window_failures"] else "; ".join(run["window_failures"])
        lines.append(
            f"| {SERVER_NAMES[run['server']]} | {run['scenario']} ({settings}) "
            f"| {_fmt(_percent(window.get('cpu_share')), 1)} "
            f"| {window.get('packets_received', '–')} "
            f"| {_fmt(window.get('cpu_us_per_received_packet'))} "
            f"| {_fmt(_percent(window.get('loss')), 3)} % "
            f"| {_fmt(delay.get('p50'))} / {_fmt(delay.get('p99'))} "
            f"| {window.get('freezes', '–')} "
            f"| {_fmt(_percent(window.get('client_cpu_share')), 0)} / {_fmt(lag, 1)} "
            f"| {verdict} |"
        )
    return "\n".join(lines) + "\n"


def ratio_table(data: dict[str, Any]) -> str:
    lines = [
        "| subscribers | Balie µs per packet | Janus µs per packet | Balie / Janus |",
        "|---:|---:|---:|---:|",
    ]
    balie = _fanout(data, "balie")
    janus = _fanout(data, "janus")
    for subscribers in sorted(set(balie) | set(janus)):
        lines.append(
            f"| {subscribers} | {_fmt(_us_per_packet(balie.get(subscribers)))} "
            f"| {_fmt(_us_per_packet(janus.get(subscribers)))} "
            f"| {_fmt(fanout_ratio(data, subscribers))} |"
        )
    return "\n".join(lines) + "\n"


def calls_table(data: dict[str, Any]) -> str:
    lines = [
        "| server | largest passing step | server CPU there | calls per core | projected from "
        "CPU per call | why the search stopped |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for server in ("balie", "janus"):
        capacity = calls_capacity(data, server)
        stopped = capacity["stopped"]
        if capacity["generator_busy"]:
            stopped += " (the load generator was busy: its limit, perhaps not the server's)"
        elif capacity["generator_stalled"]:
            stopped += (
                " (the load generator's own event loop stalled for over "
                f"{MAX_P99_DELAY_MS:.0f} ms in each failing run, so part of the delay is its own)"
            )
        lines.append(
            f"| {SERVER_NAMES[server]} | {capacity['best'] if capacity['best'] else '–'} "
            f"| {_fmt(_percent(capacity['cpu_share']), 0)} % "
            f"| {_fmt(capacity['per_core'], 0)} "
            f"| {_fmt(capacity['projected_per_core'], 0)} | {stopped} |"
        )
    return "\n".join(lines) + "\n"


def relay_table(data: dict[str, Any]) -> str:
    lines = [
        "| subscribers | server CPU, % of a core | per subscriber | packets received "
        "| frames received |",
        "|---:|---:|---:|---:|---:|",
    ]
    for point in data["relay"]:
        window = point.get("window") or {}
        share = window.get("cpu_share")
        per = share / point["subscribers"] if share is not None else None
        lines.append(
            f"| {point['subscribers']} | {_fmt(_percent(share), 1)} | {_fmt(_percent(per), 1)} "
            f"| {window.get('packets_received', '–')} | {point['frames_received']} |"
        )
    return "\n".join(lines) + "\n"


def write_chart(data: dict[str, Any], path: Path) -> None:
    """Server CPU against load, fan-out and calls side by side, for every server measured."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (fanout_axes, calls_axes) = plt.subplots(1, 2, figsize=(11, 4.5))
    styles = {"balie": ("tab:blue", "o"), "janus": ("tab:orange", "s")}
    for server, (colour, marker) in styles.items():
        points = sorted(
            (n, 100 * r["window"]["cpu_share"])
            for n, r in _fanout(data, server).items()
            if (r.get("window") or {}).get("cpu_share") is not None
        )
        if points:
            fanout_axes.plot(
                *zip(*points, strict=True), marker=marker, color=colour, label=SERVER_NAMES[server]
            )
        calls = sorted(
            (r["settings"]["rooms"], 100 * r["window"]["cpu_share"], not r["window_failures"])
            for r in _two_person_calls(data, server)
            if (r.get("window") or {}).get("cpu_share") is not None
        )
        if calls:
            steps = sorted({rooms for rooms, _, _ in calls})
            means = [
                sum(share for k, share, _ in calls if k == rooms)
                / sum(1 for k, _, _ in calls if k == rooms)
                for rooms in steps
            ]
            calls_axes.plot(steps, means, color=colour, label=SERVER_NAMES[server])
            for rooms, share, passed in calls:
                calls_axes.plot(
                    rooms,
                    share,
                    marker=marker,
                    color=colour,
                    markerfacecolor=colour if passed else "white",
                )
    relay = sorted(
        (p["subscribers"], 100 * p["window"]["cpu_share"])
        for p in data["relay"]
        if (p.get("window") or {}).get("cpu_share") is not None
    )
    if relay:
        fanout_axes.plot(
            *zip(*relay, strict=True), marker="^", color="tab:red", label=SERVER_NAMES["mediarelay"]
        )
    fanout_axes.set_title("Fan-out: 1 publisher (VP8 1280x720 ~1.5 Mbit/s + Opus)")
    fanout_axes.set_xlabel("subscribers")
    fanout_axes.set_ylabel("server CPU, % of one core")
    calls_axes.set_title("Two-person calls (simulcast, both ways)")
    calls_axes.set_xlabel("concurrent calls (hollow: loss ≥ 0.5 % or p99 ≥ 10 ms)")
    calls_axes.set_ylabel("server CPU, % of one core")
    for axes in (fanout_axes, calls_axes):
        axes.set_ylim(bottom=0)
        axes.set_xlim(left=0)
        axes.grid(alpha=0.3)
        axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def document(data: dict[str, Any], micro: str, chart: str, now: str, recorder: str = "") -> str:
    machine = data["machine"]
    relay = relay_ratio(data)
    duration = data["duration_s"]
    return f"""# Benchmarks

Made by `make bench` on {now} ({machine["arch"]}, {machine["cores"]} cores, Python
{machine["python"]}, {machine["janus"]}); the run took {data["elapsed_s"]:.0f} s. Every figure
and ratio below comes from that one run.

## Targets

{targets_table(data)}
![Server CPU against load]({chart})

## Forwarding path (micro-benchmark)

Command: `python -m loadtest.microbench --markdown FILE`. CPU time of the benchmark process
(`time.process_time`), best of five runs, so other load on the machine matters less.

One publisher's VP8 video (1200-byte packets) forwarded to N down tracks through the real
`Ingress.on_rtp` → `PublishedStream.deliver` → `DownTrack.forward` → sink, without sockets or SRTP
(those cost the same for every design and are measured by the load tests).

{micro}
## Load: Balie against Janus VideoRoom

Command: `make bench`, which runs `python -m loadtest.bench --duration {duration:g} --json FILE`
as root in a loopback-only network namespace, then `python -m loadtest.benchreport`.

- **Servers.** Balie is `balie serve --workers 1` (the SFU inside one process, so one core).
  Janus is Debian's `janus` ({machine["janus"]}) with `general.event_loops = 2`, only the
  VideoRoom plugin and the HTTP transport (on 127.0.0.1), ICE only on 10.77.0.1 (a veth pair
  inside the namespace, since Janus skips loopback), no STUN. Each measurement gets a fresh server
  process.
- **Load.** The same synthetic participants for both (`loadtest/participant.py`,
  `loadtest/janus.py`): pre-encoded VP8 simulcast (320x180 ~150 kbit/s, 640x360 ~500 kbit/s,
  1280x720 ~1.5 Mbit/s) and Opus, sent with rids, RTX and transport-wide sequence numbers;
  subscribers receive without decoding. With Janus each participant has a publisher connection
  and one subscriber connection per feed (its API); with Balie one connection carries both.
- **Measured.** After everyone joined and {data["settle_s"]:g} s of settling, a window of
  {duration:g} s. Server CPU is the server process's CPU time in the window (`/proc/PID/stat`,
  all threads). Packets forwarded are the packets the subscribers received in the window, for
  both servers alike, and µs per forwarded packet is the one divided by the other. Loss, one-way
  delay (from the publisher's send schedule to arrival, on one clock) and freezes (gaps over
  200 ms between frames) are those of the window. The second-to-last column is the synthetic
  participants' own process (CPU share and event-loop lag): when it is busy, part of the delay
  is its own.

{load_table(data)}
Balie's CPU per forwarded packet relative to Janus's, fan-out:

{ratio_table(data)}
### Concurrent two-person calls

Steps of K calls (each person publishes simulcast and receives the other), the servers in turns,
until a step misses loss < 0.5 % or p99 delay < 10 ms twice in a row (a single miss is measured
again) or the time budget is spent, then one step halfway between the largest pass and the
failure. Calls per core: the largest passing K divided by the cores
the server used there (at least one). The projection divides one core by the average CPU per
call of the passing steps: what CPU alone would allow, not a measured pass.

{calls_table(data)}
## Baseline: aiortc MediaRelay

`python -m loadtest.relay_baseline serve`: an aiortc server (one `RTCPeerConnection` per client,
`MediaRelay`, offer/answer over HTTP on 127.0.0.1) that receives one publisher's VP8 (the
1280x720 layer, ~1.5 Mbit/s) and sends it to N subscribers, decoding once and encoding for each
subscriber (the subscribers ask for 1.5 Mbit/s by REMB, aiortc's highest rate). Server process
CPU over {duration:g} s after {data["relay_warm_up_s"]:g} s of warm-up.

{relay_table(data)}
CPU per added subscriber (least-squares slope of server CPU over subscribers): MediaRelay
{_fmt(_percent(relay["relay"]), 2)} % of a core, Balie's fan-out
{_fmt(_percent(relay["balie"]), 3)} % of a core: MediaRelay needs {_fmt(relay["ratio"], 0)}× more.

{recorder}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--micro", type=Path, required=True)
    parser.add_argument("--load", type=Path, required=True, help="JSON from loadtest.bench")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--chart", type=Path, required=True, help="PNG, next to --out in bench/")
    parser.add_argument("--recorder", type=Path, default=None, help="from loadtest.recorder_bench")
    args = parser.parse_args()
    data = json.loads(args.load.read_text(encoding="utf-8"))
    write_chart(data, args.chart)
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    chart = os.path.relpath(args.chart, args.out.parent)
    recorder = args.recorder.read_text(encoding="utf-8") if args.recorder else ""
    text = document(data, args.micro.read_text(encoding="utf-8"), chart, now, recorder)
    args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
