"""Simulcast, layer selection, bandwidth and active speaker with real Chromium publishers."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.browser import chromium, eventually
from tests.netns import limited_host
from tests.servers import running_server

pytestmark = [pytest.mark.browser, pytest.mark.media]

OUTBOUND_VIDEO = """
async () => {
  const pc = window.balie && window.balie.pc();
  if (!pc) return [];
  const report = await pc.getStats();
  const result = [];
  report.forEach((r) => {
    if (r.type === 'outbound-rtp' && r.kind === 'video') {
      result.push({rid: r.rid, active: r.active, packetsSent: r.packetsSent || 0,
                   frameWidth: r.frameWidth || 0});
    }
  });
  return result;
}
"""

REMOTE_VIDEO = """
async () => {
  const pc = window.balie && window.balie.pc();
  if (!pc) return null;
  const report = await pc.getStats();
  let found = null;
  report.forEach((r) => {
    if (r.type !== 'inbound-rtp' || r.kind !== 'video') return;
    if (!found || r.packetsReceived > found.packetsReceived) {
      found = {packetsReceived: r.packetsReceived || 0, framesDecoded: r.framesDecoded || 0,
               frameWidth: r.frameWidth || 0, freezeCount: r.freezeCount || 0};
    }
  });
  return found;
}
"""

SET_REMOTE_TILE = """
([id, width, display]) => {
  const tile = document.querySelector(`[data-participant-id="${id}"]`);
  tile.style.width = width;
  tile.style.maxWidth = width;
  tile.style.display = display;
  return true;
}
"""


def forwarded_layer(server, page_identity_name: str) -> int | None:
    """The simulcast layer the SFU forwards now to the participant called `name` (its video)."""
    for room in server.sfu.rooms.values():
        for participant in room.participants.values():
            if participant.name == page_identity_name:
                layers = [
                    d.current_layer for d in participant.downtracks.values() if d.kind == "video"
                ]
                return max(layers) if layers else None
    return None


def state(server) -> str:
    """What the SFU does for every subscriber's video, for assertion messages."""
    lines = []
    for room in server.sfu.rooms.values():
        for participant in room.participants.values():
            for downtrack in participant.downtracks.values():
                if downtrack.kind == "video":
                    lines.append(
                        f"{participant.name} <- {downtrack.publication.publisher.name}: layer "
                        f"{downtrack.current_layer} target {downtrack.target_layer} wanted "
                        f"{downtrack.wanted_layer} loss {downtrack.fraction_lost:.2f} "
                        f"drops {dict(downtrack.drops)}"
                    )
    return "\n".join(lines)


async def on_layer(server, name: str, predicate, seconds: float, what: str) -> None:
    async def check() -> bool:
        layer = forwarded_layer(server, name)
        return layer is not None and bool(predicate(layer))

    await eventually(check, seconds, what)


async def join(browser, url: str, *, scale: float = 2.0, width: int = 1400):
    context = await browser.new_context(
        viewport={"width": width, "height": 900}, device_scale_factor=scale
    )
    page = await context.new_page()
    await page.goto(url)
    await eventually(
        lambda: page.evaluate("document.body.dataset.callState === 'joined'"), 15, "joined"
    )
    return page


async def all_layers_sending(page) -> bool:
    first = {s["rid"]: s for s in await page.evaluate(OUTBOUND_VIDEO)}
    await asyncio.sleep(1.0)
    second = await page.evaluate(OUTBOUND_VIDEO)
    rising = [
        s["rid"]
        for s in second
        if s["active"] and s["rid"] in first and s["packetsSent"] > first[s["rid"]]["packetsSent"]
    ]
    return sorted(rising) == ["f", "h", "q"]


async def video_with(page, predicate, seconds: float, what: str):
    async def check():
        stats = await page.evaluate(REMOTE_VIDEO)
        return stats if stats and predicate(stats) else None

    return await eventually(check, seconds, what)


async def test_a_publisher_sends_three_layers_and_each_subscriber_gets_what_its_screen_needs(
    tmp_path,
):
    async with running_server(tmp_path) as server, chromium() as browser:
        publisher = await join(browser, server.join_url("sim", "emp", "Medewerker", "employee"))
        viewer = await join(browser, server.join_url("sim", "res", "Inwoner", "resident"))
        started = time.monotonic()
        await eventually(lambda: all_layers_sending(publisher), 10, "three layers sending")
        assert time.monotonic() - started < 10

        publisher_id = await publisher.evaluate("window.balie.selfId()")
        # The top layer (f): a browser short of CPU may send it smaller than 1280 wide, so what
        # counts is which layer the SFU forwards; the picture must be decoded all the same.
        await on_layer(server, "Inwoner", lambda layer: layer == 2, 10, "the top layer")
        await video_with(viewer, lambda s: s["frameWidth"] > 320, 10, "a large picture")

        # Small video: the low layer within 5 s, without freezing.
        await viewer.evaluate(SET_REMOTE_TILE, [publisher_id, "80px", ""])
        before = await viewer.evaluate(REMOTE_VIDEO)
        started = time.monotonic()
        small = await video_with(viewer, lambda s: 0 < s["frameWidth"] <= 320, 5, "the low layer")
        assert time.monotonic() - started < 5
        assert small["freezeCount"] == before["freezeCount"]
        assert small["framesDecoded"] > before["framesDecoded"]

        # Full size again: the top layer within 5 s, without freezing.
        await viewer.evaluate(SET_REMOTE_TILE, [publisher_id, "", ""])
        before = await viewer.evaluate(REMOTE_VIDEO)
        started = time.monotonic()
        await on_layer(server, "Inwoner", lambda layer: layer == 2, 5, "the top layer again")
        large = await video_with(viewer, lambda s: s["frameWidth"] > 320, 5, "a large picture")
        assert time.monotonic() - started < 5
        assert large["freezeCount"] == before["freezeCount"]

        # Hidden tile: no video packets at all; shown again: video within 2 s.
        await viewer.evaluate(SET_REMOTE_TILE, [publisher_id, "", "none"])
        await asyncio.sleep(1.0)
        hidden = await viewer.evaluate(REMOTE_VIDEO)
        await asyncio.sleep(1.5)
        still_hidden = await viewer.evaluate(REMOTE_VIDEO)
        assert still_hidden["packetsReceived"] == hidden["packetsReceived"]
        await viewer.evaluate(SET_REMOTE_TILE, [publisher_id, "", ""])
        started = time.monotonic()
        await video_with(
            viewer, lambda s: s["framesDecoded"] > hidden["framesDecoded"], 2, "video again"
        )
        assert time.monotonic() - started < 2

        # Low-bandwidth mode: audio only, no video packets; switching back brings video back.
        await viewer.locator("#btn-audio-only").click()
        assert await viewer.evaluate("window.balie.audioOnly()")
        await asyncio.sleep(1.0)
        paused = await viewer.evaluate(REMOTE_VIDEO)
        await asyncio.sleep(1.5)
        assert (await viewer.evaluate(REMOTE_VIDEO))["packetsReceived"] == paused["packetsReceived"]
        await viewer.locator("#btn-audio-only").click()
        await video_with(
            viewer,
            lambda s: s["framesDecoded"] > paused["framesDecoded"],
            3,
            "video after audio-only",
        )

        # The viewer's microphone is off; the publisher speaks (the fake device beeps).
        await viewer.locator("#btn-mic").click()
        await viewer.locator(f'[data-participant-id="{publisher_id}"].speaking').wait_for(
            timeout=8000
        )


async def test_a_subscriber_on_a_slow_link_gets_a_lower_layer_while_another_keeps_the_top(
    tmp_path,
):
    async with limited_host("slow", rate_kbit=300) as slow_host:
        async with (
            running_server(
                tmp_path, extra_host=slow_host.host_address, extra_network=slow_host.network
            ) as server,
            chromium() as browser,
            chromium(executable_path=str(slow_host.chromium_wrapper)) as slow_browser,
        ):
            await join(browser, server.join_url("tc", "emp", "Medewerker", "employee"))
            fast = await join(browser, server.join_url("tc", "fast", "Snel", "resident"))
            slow = await join(
                slow_browser,
                server.join_url("tc", "slow", "Traag", "guest", host=slow_host.host_address),
            )
            await on_layer(server, "Snel", lambda layer: layer == 2, 15, "fast: top layer")

            async def decoding_lower_layer() -> bool:
                first = await slow.evaluate(REMOTE_VIDEO)
                await asyncio.sleep(1.0)
                second = await slow.evaluate(REMOTE_VIDEO)
                return bool(
                    first
                    and second
                    and second["frameWidth"] > 0
                    and (forwarded_layer(server, "Traag") or 0) < 2
                    and second["framesDecoded"] > first["framesDecoded"] + 5
                )

            await eventually(decoding_lower_layer, 20, "slow: decoding a lower layer")
            # Two videos do not fit 300 kbit/s: one is paused, and the page says so.
            await slow.locator(".tile-video-paused:not([hidden])").first.wait_for(timeout=10000)
            # The slow one keeps decoding; the fast one keeps the top layer.
            before_slow = await slow.evaluate(REMOTE_VIDEO)
            before_fast = await fast.evaluate(REMOTE_VIDEO)
            await asyncio.sleep(3)
            after_slow = await slow.evaluate(REMOTE_VIDEO)
            after_fast = await fast.evaluate(REMOTE_VIDEO)
            slow_frames = after_slow["framesDecoded"] - before_slow["framesDecoded"]
            fast_frames = after_fast["framesDecoded"] - before_fast["framesDecoded"]
            print(f"frames decoded in 3 s: slow {slow_frames}, fast {fast_frames}")
            # Both keep decoding about as many frames as the publisher sends (it may lower its
            # frame rate when this 2-core machine is busy with three browsers).
            assert slow_frames >= 10 and slow_frames >= fast_frames * 0.5, state(server)
            assert (forwarded_layer(server, "Traag") or 0) < 2, state(server)
            # The unlimited one is on the top layer (after a moment, should a CPU hiccup on this
            # 2-core machine have looked like loss to it).
            await on_layer(server, "Snel", lambda layer: layer == 2, 12, "fast: still the top")
