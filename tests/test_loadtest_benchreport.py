"""BENCHMARKS.md and its chart are written from one `make bench` result, targets judged honestly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from loadtest.benchreport import calls_capacity, fanout_ratio, relay_ratio, targets_table

ROOT = Path(__file__).resolve().parent.parent


def _window(cpu_share: float, packets: int, loss: float = 0.0, p99: float = 3.0) -> dict[str, Any]:
    return {
        "seconds": 10.0,
        "packets_received": packets,
        "packets_lost": 0,
        "loss": loss,
        "delay_ms": {"p50": 1.0, "p99": p99, "max": p99},
        "freezes": 0,
        "cpu_seconds": cpu_share * 10,
        "cpu_share": cpu_share,
        "client_cpu_share": 0.3,
        "client_loop_lag_ms": {"p99": 1.0, "max": 2.0},
        "cpu_us_per_received_packet": cpu_share * 10 * 1e6 / packets,
    }


def _run(server: str, scenario: str, settings: dict[str, int], window: dict[str, Any]) -> Any:
    failures = [] if window["delay_ms"]["p99"] < 10 else ["p99 delay too high"]
    return {
        "server": server,
        "scenario": scenario,
        "settings": settings,
        "window": window,
        "window_failures": failures,
    }


@pytest.fixture
def bench() -> dict[str, Any]:
    runs = []
    for subscribers, balie, janus in ((20, 0.05, 0.04), (100, 0.20, 0.25)):
        packets = subscribers * 2300
        runs.append(_run("balie", "fanout", {"subscribers": subscribers}, _window(balie, packets)))
        runs.append(_run("janus", "fanout", {"subscribers": subscribers}, _window(janus, packets)))
    for rooms, balie_share, balie_p99 in ((10, 0.2, 3.0), (20, 0.4, 4.0), (30, 0.6, 30.0)):
        settings = {"rooms": rooms, "participants": 2}
        runs.append(
            _run("balie", "calls", settings, _window(balie_share, rooms * 9000, 0, balie_p99))
        )
    runs.append(_run("janus", "calls", {"rooms": 10, "participants": 2}, _window(0.1, 90000)))
    return {
        "duration_s": 10.0,
        "settle_s": 2.0,
        "relay_warm_up_s": 3.0,
        "elapsed_s": 500.0,
        "machine": {"arch": "x86_64", "cores": 2, "python": "3.11", "janus": "Janus 1.1.2"},
        "runs": runs,
        "relay": [
            {"subscribers": n, "window": _window(0.1 + 0.2 * n, 1500 * n), "frames_received": 250}
            for n in (1, 2, 4)
        ],
        "calls_search": {
            "balie": {"passed": [10, 20], "failed": 30, "stopped": "30 calls failed: p99"},
            "janus": {"passed": [10], "failed": None, "stopped": "time budget"},
        },
    }


def test_the_fanout_ratio_divides_balies_cpu_per_packet_by_janus_s(bench):
    assert fanout_ratio(bench, 100) == pytest.approx(0.20 / 0.25)
    assert fanout_ratio(bench, 50) is None


def test_calls_per_core_come_from_the_largest_passing_step(bench):
    capacity = calls_capacity(bench, "balie")
    assert capacity["best"] == 20 and capacity["per_core"] == pytest.approx(20)
    assert capacity["projected_per_core"] == pytest.approx(50)  # 2 % of a core per call


def test_the_relay_ratio_compares_cpu_per_added_subscriber(bench):
    ratios = relay_ratio(bench)
    balie_slope = (0.20 - 0.05) / 80  # from 20 to 100 subscribers
    assert ratios["relay"] == pytest.approx(0.2)
    assert ratios["balie"] == pytest.approx(balie_slope)
    assert ratios["ratio"] == pytest.approx(0.2 / balie_slope)


def test_each_target_is_judged_met_or_not_met_from_the_figures(bench):
    table = targets_table(bench)
    fanout, calls, relay = table.splitlines()[2:5]
    assert fanout.endswith("**met** |")  # 0.8 x Janus
    assert calls.endswith("**not met** |")  # 20 calls per core
    assert relay.endswith("**met** |")  # 107 x


def test_the_report_and_its_chart_are_written(tmp_path, bench):
    load = tmp_path / "load.json"
    load.write_text(json.dumps(bench))
    micro = tmp_path / "micro.md"
    micro.write_text("| subscribers | µs |\n|---:|---:|\n| 1 | 3.0 |\n")
    out = tmp_path / "BENCHMARKS.md"
    chart = tmp_path / "bench" / "cpu-vs-load.png"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "loadtest.benchreport"),
            *("--micro", str(micro), "--load", str(load), "--out", str(out), "--chart", str(chart)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert chart.read_bytes().startswith(b"\x89PNG")
    text = out.read_text()
    assert "![Server CPU against load](bench/cpu-vs-load.png)" in text
    assert "| 1 | 3.0 |" in text and "Janus 1.1.2" in text
