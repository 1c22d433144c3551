"""`balie loadtest` against a real server, as an operator runs it."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from tests.servers import running_server

pytestmark = pytest.mark.media

ROOT = Path(__file__).resolve().parent.parent


async def run_cli(*args: str, timeout_s: float = 120) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "control.cli",
        "loadtest",
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout_s)
    return process.returncode or 0, output.decode(errors="replace")


@pytest.mark.parametrize(
    ("scenario", "extra"),
    [
        ("fanout", ["--subscribers", "4"]),
        ("calls", ["--rooms", "2", "--participants", "2"]),
        ("churn", ["--rooms", "1", "--participants", "2", "--interval", "1.5"]),
    ],
)
async def test_a_scenario_runs_to_its_end_and_writes_every_figure(tmp_path, scenario, extra):
    async with running_server(tmp_path / "server") as server:
        out = tmp_path / "out.json"
        code, output = await run_cli(
            scenario,
            *extra,
            "--duration",
            "6",
            "--target",
            server.base_url,
            "--api-key",
            server.settings.api_key,
            "--json",
            str(out),
            "--media-cache",
            str(tmp_path / "media"),
            "--max-loss",
            "0.01",
        )
        assert code == 0, output
        result = json.loads(out.read_text())
        for key in (
            "packets_received",
            "packets_lost",
            "loss",
            "jitter_ms_p50",
            "delay_ms",
            "freezes",
            "keyframes",
            "sfu",
            "streams",
        ):
            assert key in result
        assert result["packets_received"] > 100
        assert result["loss"] <= 0.01
        assert result["keyframes"] >= 1
        assert result["delay_ms"]["p50"] is not None and 0 <= result["delay_ms"]["p50"] < 100
        assert result["sfu"] is not None and result["sfu"]["cpu_seconds"] > 0
        if scenario == "churn":
            assert result["left"] >= 3
        assert server.sfu.stats()["participants"] == 0


async def test_a_threshold_that_is_not_met_makes_the_command_fail(tmp_path):
    async with running_server(tmp_path / "server") as server:
        code, output = await run_cli(
            "fanout",
            "--subscribers",
            "1",
            "--duration",
            "3",
            "--target",
            server.base_url,
            "--api-key",
            server.settings.api_key,
            "--media-cache",
            str(tmp_path / "media"),
            "--max-p99-delay-ms",
            "0.0001",
        )
        assert code == 1, output
        assert "FAILED" in output


async def test_without_an_api_key_the_command_says_so(tmp_path):
    code, output = await run_cli(
        "fanout", "--data-dir", str(tmp_path / "nowhere"), "--target", "http://127.0.0.1:9"
    )
    assert code != 0 and "API key" in output
