"""Three real browsers (employee, resident, guest) in one call through the SFU."""

from __future__ import annotations

import asyncio
import gc
import threading
from pathlib import Path

import pytest
from axe_playwright_python.async_playwright import Axe

from tests.browser import INBOUND_STATS, chromium, eventually
from tests.servers import running_server

pytestmark = [pytest.mark.browser, pytest.mark.media]

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


async def inbound(page) -> list[dict]:
    return await page.evaluate(INBOUND_STATS)


async def receiving_from_everyone(page, others: int) -> bool:
    """Video frames decoded and audio samples received from each of `others` remote tracks."""
    first = await inbound(page)
    await asyncio.sleep(1.0)
    second = await inbound(page)
    before = {(s["kind"], s["mid"]): s for s in first}
    video_rising = 0
    audio_rising = 0
    for stat in second:
        old = before.get((stat["kind"], stat["mid"]))
        if old is None:
            continue
        if stat["kind"] == "video" and stat["framesDecoded"] > old["framesDecoded"] > 0:
            video_rising += 1
        if (
            stat["kind"] == "audio"
            and stat["totalSamplesReceived"] > old["totalSamplesReceived"] > 0
        ):
            audio_rising += 1
    return video_rising >= others and audio_rising >= others


def media_objects() -> list[str]:
    """aiortc objects that would decode or encode, alive in this (the server's) process."""
    from aiortc.codecs.opus import OpusDecoder, OpusEncoder
    from aiortc.codecs.vpx import Vp8Decoder, Vp8Encoder
    from aiortc.contrib.media import MediaRelay
    from aiortc.rtcrtpreceiver import RTCRtpReceiver
    from aiortc.rtcrtpsender import RTCRtpSender

    kinds = (
        OpusDecoder,
        OpusEncoder,
        Vp8Decoder,
        Vp8Encoder,
        MediaRelay,
        RTCRtpReceiver,
        RTCRtpSender,
    )
    return [type(o).__name__ for o in gc.get_objects() if isinstance(o, kinds)]


async def test_three_browsers_see_and_hear_each_other_through_the_sfu(tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    threads_before = {t.name for t in threading.enumerate()}
    async with running_server(tmp_path) as server, chromium() as browser:
        people = {
            "employee": ("Medewerker Jansen", "employee"),
            "resident": ("Fatima de Vries", "resident"),
            "guest": ("Tolk Ahmed", "guest"),
        }
        pages = {}
        for identity, (name, role) in people.items():
            context = await browser.new_context(viewport={"width": 1000, "height": 700})
            page = await context.new_page()
            await page.goto(server.join_url("balie1", identity, name, role))
            pages[identity] = page
        for identity, page in pages.items():
            await eventually(
                lambda page=page: page.evaluate("document.body.dataset.callState === 'joined'"),
                15,
                f"{identity} joined",
            )
        for identity, page in pages.items():
            await eventually(
                lambda page=page: receiving_from_everyone(page, 2), 20, f"{identity} media"
            )
            for other, (name, _) in people.items():
                if other != identity:
                    await page.get_by_text(name).first.wait_for(timeout=5000)
        await pages["employee"].screenshot(path=str(ARTIFACTS / "call-three.png"))

        # WCAG 2.1 A/AA rules that axe-core can check, on a page in a running call.
        axe = Axe()
        results = await axe.run(
            pages["resident"],
            options={
                "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}
            },
        )
        assert results.violations_count == 0, results.generate_report()

        # Nothing was decoded or encoded in the server: no aiortc media objects, no codec threads.
        assert media_objects() == []
        new_threads = {t.name for t in threading.enumerate()} - threads_before
        assert not [n for n in new_threads if "decoder" in n.lower() or "encoder" in n.lower()]
        stats = server.sfu.stats()
        assert stats["packets_forwarded"] > 500

        # The resident turns the camera off: the others see it.
        resident_id = await pages["resident"].evaluate("window.balie.selfId()")
        await pages["resident"].get_by_role("button", name="Camera uit").click()
        for identity in ("employee", "guest"):
            await (
                pages[identity]
                .locator(f'[data-participant-id="{resident_id}"] .cam-muted:not([hidden])')
                .wait_for(timeout=5000)
            )

        # The guest leaves: the tile disappears for the other two.
        guest_id = await pages["guest"].evaluate("window.balie.selfId()")
        await pages["guest"].get_by_role("button", name="Verlaten").click()
        for identity in ("employee", "resident"):
            await (
                pages[identity]
                .locator(f'[data-participant-id="{guest_id}"]')
                .wait_for(state="detached", timeout=10000)
            )
        await eventually(
            lambda: asyncio.sleep(0, len(server.sfu.room_snapshot("balie1")["participants"]) == 2),
            10,
            "the SFU to drop the guest",
        )
        await pages["employee"].screenshot(path=str(ARTIFACTS / "call-after-leave.png"))
