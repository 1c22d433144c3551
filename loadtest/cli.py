"""`balie loadtest fanout|calls|churn`: load a running server and report what participants saw.

A `balie` subcommand through the `balie.commands` entry point (common/commands.py): this module
is the command (`add_parser`, `run`), so the control plane never imports the load generator.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from common.commands import Subparsers
from loadtest.runner import LoadtestOptions, Progress, default_media_cache, run_scenario
from loadtest.stats import percentile


def add_parser(commands: Subparsers[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    loadtest = commands.add_parser("loadtest", help="load a running server with synthetic calls")
    scenarios = loadtest.add_subparsers(dest="scenario", required=True, metavar="SCENARIO")
    fanout = scenarios.add_parser("fanout", help="one publisher, N subscribers")
    fanout.add_argument("--subscribers", type=int, default=20)
    calls = scenarios.add_parser("calls", help="K concurrent counter calls")
    calls.add_argument("--rooms", type=int, default=4)
    calls.add_argument("--participants", type=int, choices=(2, 3), default=2)
    churn = scenarios.add_parser("churn", help="participants join and leave continuously")
    churn.add_argument("--rooms", type=int, default=2)
    churn.add_argument("--participants", type=int, choices=(2, 3), default=2)
    churn.add_argument("--interval", type=float, default=2.0, help="seconds between changes")
    for scenario in (fanout, calls, churn):
        scenario.add_argument("--duration", type=float, default=20.0, help="seconds (%(default)s)")
        scenario.add_argument("--target", default="http://127.0.0.1:8080", help="server URL")
        scenario.add_argument("--json", type=Path, default=None, help="write the result here")
        scenario.add_argument("--api-key", default=None, help="admin API key (or BALIE_API_KEY)")
        scenario.add_argument(
            "--data-dir", type=Path, default=None, help="read the API key from this data dir"
        )
        scenario.add_argument("--max-loss", type=float, default=None, help="e.g. 0.005")
        scenario.add_argument("--max-p99-delay-ms", type=float, default=None)
        scenario.add_argument(
            "--host-address", default="127.0.0.1", help="address the participants send from"
        )
        scenario.add_argument("--media-cache", type=Path, default=None)
    return loadtest


def _api_key(args: argparse.Namespace) -> str:
    if args.api_key:
        return str(args.api_key)
    if os.environ.get("BALIE_API_KEY"):
        return os.environ["BALIE_API_KEY"].strip()
    data_dir = args.data_dir or Path(os.environ.get("BALIE_DATA_DIR", "data"))
    path = data_dir / "secrets" / "api_key"
    try:
        return path.read_text(encoding="ascii").strip()
    except OSError as exc:
        raise SystemExit(
            f"balie loadtest: no API key (--api-key, BALIE_API_KEY or {path})"
        ) from exc


def _table(progress: Progress, title: str) -> Table:
    streams = progress.streams()
    received = sum(s.packets for s in streams)
    lost = sum(s.lost for s in streams)
    delays = [d for s in streams for d in s.delays_ms[-2000:]]
    p50 = percentile(delays, 0.5)
    p99 = percentile(delays, 0.99)
    table = Table(title=title)
    for column in (
        "participants",
        "streams",
        "packets",
        "loss",
        "p50 delay",
        "p99 delay",
        "freezes",
    ):
        table.add_column(column, justify="right")
    table.add_row(
        f"{len(progress.participants)} (+{progress.joined}/-{progress.left}, "
        f"{progress.join_errors} errors)",
        str(len(streams)),
        str(received),
        f"{100 * lost / max(1, received + lost):.2f} %",
        "-" if p50 is None else f"{p50:.1f} ms",
        "-" if p99 is None else f"{p99:.1f} ms",
        str(sum(s.freezes for s in streams)),
    )
    return table


def run(args: argparse.Namespace) -> int:
    from loadtest.media import load_media

    console = Console(stderr=True)
    options = LoadtestOptions(
        scenario=args.scenario,
        target=args.target,
        api_key=_api_key(args),
        duration_s=args.duration,
        subscribers=getattr(args, "subscribers", 0),
        rooms=getattr(args, "rooms", 1),
        participants=getattr(args, "participants", 2),
        churn_interval_s=getattr(args, "interval", 2.0),
        host_address=args.host_address,
        max_loss=args.max_loss,
        max_p99_delay_ms=args.max_p99_delay_ms,
    )
    with console.status("Preparing pre-encoded media (once; then cached)…"):
        media = load_media(args.media_cache or default_media_cache())
    progress = Progress()
    title = f"balie loadtest {options.scenario} → {options.target}"
    with Live(_table(progress, title), console=console, refresh_per_second=2) as live:
        result = asyncio.run(
            run_scenario(options, media, progress, lambda: live.update(_table(progress, title)))
        )
        live.update(_table(progress, title))
    console.print(_summary(result))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if not result["passed"]:
        for failure in result["failures"]:
            console.print(f"[bold red]FAILED[/]: {failure}")
        return 1
    return 0


def _summary(result: dict[str, Any]) -> Table:
    table = Table(title="Result", show_header=False)
    table.add_column("figure")
    table.add_column("value", justify="right")
    delay = result["delay_ms"]
    rows = [
        (
            "participants joined / left / errors",
            f"{result['joined']} / {result['left']} / {result['join_errors']}",
        ),
        ("streams received", str(result["streams"])),
        ("packets received / lost", f"{result['packets_received']} / {result['packets_lost']}"),
        ("loss", f"{100 * result['loss']:.3f} %"),
        ("delay p50 / p99 / max", f"{delay['p50']} / {delay['p99']} / {delay['max']} ms"),
        ("jitter p50", f"{result['jitter_ms_p50']} ms"),
        ("freezes (total ms)", f"{result['freezes']} ({result['freeze_ms']})"),
        ("keyframes", str(result["keyframes"])),
    ]
    if result["sfu"] is not None:
        rows.append(("SFU CPU seconds", str(result["sfu"]["cpu_seconds"])))
        rows.append(("SFU peak memory", f"{result['sfu']['peak_memory_bytes'] / 2**20:.1f} MiB"))
    for name, value in rows:
        table.add_row(name, value)
    return table
