"""As a user would: `balie serve`, links from `balie token`, two browsers; keyboard; restart."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from common.ports import free_port
from tests.browser import INBOUND_STATS, chromium, eventually

pytestmark = [pytest.mark.browser, pytest.mark.media]

BALIE = [sys.executable, "-m", "control.cli"]
ROOT = Path(__file__).resolve().parent.parent


def start_server(port: int, data_dir: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [
            *BALIE,
            "serve",
            "--port",
            str(port),
            "--rtc-ip",
            "127.0.0.1",
            "--data-dir",
            str(data_dir),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                if response.status == 200:
                    return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError("balie serve did not start: " + process.stdout.read().decode())  # type: ignore[union-attr]


def token_link(port: int, data_dir: Path, room: str, identity: str, name: str) -> str:
    result = subprocess.run(
        [
            *BALIE,
            *("token", "--room", room, "--identity", identity, "--name", name),
            *("--base-url", f"http://127.0.0.1:{port}", "--data-dir", str(data_dir)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return result.stdout.strip().splitlines()[-1]


async def decoding_video_from_others(page, others: int = 1) -> bool:
    first = {(s["kind"], s["mid"]): s for s in await page.evaluate(INBOUND_STATS)}
    await asyncio.sleep(1.0)
    rising = 0
    for stat in await page.evaluate(INBOUND_STATS):
        old = first.get((stat["kind"], stat["mid"]))
        if stat["kind"] == "video" and old and stat["framesDecoded"] > old["framesDecoded"] > 0:
            rising += 1
    return rising >= others


async def call_state_is(page, state: str) -> bool:
    return bool(await page.evaluate("document.body.dataset.callState") == state)


async def test_two_browsers_on_links_from_balie_token_see_each_other_and_recover_from_a_restart(
    tmp_path,
):
    port = free_port()
    data_dir = tmp_path / "data"
    server = start_server(port, data_dir)
    try:
        link_a = token_link(port, data_dir, "spreekuur", "emp-1", "Medewerker Jansen")
        link_b = token_link(port, data_dir, "spreekuur", "res-1", "Fatima")
        assert link_a.startswith(f"http://127.0.0.1:{port}/call#token=")
        async with chromium() as browser:
            page_a = await (await browser.new_context()).new_page()
            page_b = await (await browser.new_context()).new_page()
            await page_a.goto(link_a)
            await page_b.goto(link_b)
            for page in (page_a, page_b):
                await eventually(lambda page=page: decoding_video_from_others(page), 20, "video")

            # Keyboard only: Tab to the microphone button and press Space.
            for _ in range(15):
                await page_b.keyboard.press("Tab")
                if await page_b.evaluate("document.activeElement.id") == "btn-mic":
                    break
            else:
                raise AssertionError("the microphone button cannot be reached with Tab")
            await page_b.keyboard.press("Space")
            b_id = await page_b.evaluate("window.balie.selfId()")
            await page_a.locator(
                f'[data-participant-id="{b_id}"] .mic-muted:not([hidden])'
            ).wait_for(timeout=5000)
            assert "aan" in (await page_b.locator("#btn-mic").inner_text()).lower()

            # The server goes away and comes back: both pages reconnect by themselves.
            server.send_signal(signal.SIGKILL)
            server.wait(timeout=10)
            await eventually(lambda: call_state_is(page_a, "reconnecting"), 15, "reconnecting")
            server = start_server(port, data_dir)
            for page in (page_a, page_b):
                await eventually(lambda page=page: call_state_is(page, "joined"), 30, "joined")
                await eventually(lambda page=page: decoding_video_from_others(page), 30, "video")
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
        if server.stdout is not None:
            output = server.stdout.read().decode(errors="replace")
            assert "Traceback" not in output, output
    assert (data_dir / "secrets" / "token_secret").exists()
