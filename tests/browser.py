"""Headless Debian Chromium driven by Playwright, with fake camera and microphone."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from playwright.async_api import Browser, async_playwright

CHROMIUM = "/usr/lib/chromium/chromium"
CHROMIUM_ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--autoplay-policy=no-user-gesture-required",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]


@asynccontextmanager
async def chromium(executable_path: str = CHROMIUM) -> AsyncIterator[Browser]:
    """Launch Chromium; `executable_path` may be a wrapper (e.g. tests.netns's netns launcher)."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable_path, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


INBOUND_STATS = """
async () => {
  const pc = window.balie && window.balie.pc();
  if (!pc) return [];
  const report = await pc.getStats();
  const result = [];
  report.forEach((r) => {
    if (r.type === 'inbound-rtp') {
      result.push({kind: r.kind, mid: r.mid, framesDecoded: r.framesDecoded || 0,
                   packetsReceived: r.packetsReceived || 0,
                   totalSamplesReceived: r.totalSamplesReceived || 0,
                   frameWidth: r.frameWidth || 0});
    }
  });
  return result;
}
"""


async def eventually(check: Callable[[], Awaitable[Any]], seconds: float, what: str) -> Any:
    """Poll `check` until it returns something true; fail after `seconds` saying what it was."""
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.25)
    raise AssertionError(f"timed out after {seconds} s waiting for {what} (last: {last!r})")
