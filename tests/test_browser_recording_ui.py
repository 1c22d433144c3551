"""The recording on the call page: everyone sees the banner, the employee starts and stops it.

Real headless Chromium against a real server (control plane + SFU) on loopback.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from axe_playwright_python.async_playwright import Axe

from common.ports import free_udp_port
from recorder.manifest import verify_hashes
from tests.browser import chromium, eventually
from tests.media_files import decode_errors, ffprobe
from tests.servers import running_server

pytestmark = [pytest.mark.browser, pytest.mark.media]

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
ROOM = "balie7"
RECORDING_ID = "rec_0123456789abcdef"
BANNER_NL = "Dit gesprek wordt opgenomen"
BANNER_EN = "This call is being recorded"
STOPPED_NL = "De opname is gestopt."
WCAG_21_AA = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
RECORD_S = 10.0


async def videos_playing(page, count: int) -> bool:
    return await page.evaluate(
        """(count) => [...document.querySelectorAll('.tile:not([data-self]) video')]
            .filter((v) => v.videoWidth > 0 && !v.paused).length >= count""",
        count,
    )


PEOPLE = {
    "employee": ("Medewerker Jansen", "employee"),
    "resident": ("Fatima de Vries", "resident"),
    "guest": ("Tolk Ahmed", "guest"),
}


async def join(browser, server, identity: str, lang: str | None = None):
    name, role = PEOPLE[identity]
    context = await browser.new_context(viewport={"width": 1000, "height": 800})
    page = await context.new_page()
    url = server.join_url(ROOM, identity, name, role)
    await page.goto(url if lang is None else f"{url}&lang={lang}")
    await eventually(
        lambda: page.evaluate("document.body.dataset.callState === 'joined'"),
        15,
        f"{identity} joined",
    )
    return page


async def banner_shown(page, text: str = BANNER_NL) -> None:
    """The banner is visible, with its words, inside a role=status live region."""
    status = page.get_by_role("status").filter(has_text=text)
    await status.wait_for(state="visible", timeout=10000)
    assert await status.count() == 1
    banner = page.locator("#recording-banner")
    assert await banner.is_visible()
    assert (await banner.inner_text()).strip() == text
    # Not colour alone: the words and a (decorative) icon.
    assert await banner.locator("svg.recording-dot[aria-hidden='true']").count() == 1


async def banner_gone(page) -> None:
    await page.locator("#recording-banner").wait_for(state="hidden", timeout=10000)
    assert await page.get_by_text(BANNER_NL).count() == 0
    assert await page.evaluate("window.balie.recording()") is None


async def focused_id(page) -> str:
    return await page.evaluate("document.activeElement ? document.activeElement.id : ''")


async def tab_to(page, element_id: str, presses: int = 30) -> None:
    """Press Tab until the element with this id has focus."""
    for _ in range(presses):
        await page.keyboard.press("Tab")
        if await focused_id(page) == element_id:
            return
    raise AssertionError(f"Tab never reached #{element_id} (at #{await focused_id(page)})")


async def dialog_open(page, dialog_id: str) -> bool:
    return await page.evaluate(f"document.getElementById('{dialog_id}').open")


async def axe_clean(page, what: str) -> None:
    results = await Axe().run(page, options=WCAG_21_AA)
    assert results.violations_count == 0, f"{what}:\n{results.generate_report()}"


async def test_everyone_sees_the_recording_banner_also_who_joins_later(tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    async with running_server(tmp_path) as server, chromium() as browser:
        pages = {
            identity: await join(browser, server, identity) for identity in ("employee", "resident")
        }
        for page in pages.values():
            assert await page.locator("#recording-banner").is_hidden()

        await server.sfu.set_recording(ROOM, RECORDING_ID, free_udp_port())
        for page in pages.values():
            await banner_shown(page)
            assert await page.evaluate("window.balie.recording()") == RECORDING_ID
        await pages["resident"].screenshot(path=str(ARTIFACTS / "recording-banner.png"))

        # Someone joining later is told too (here in English).
        pages["guest"] = await join(browser, server, "guest", lang="en")
        await banner_shown(pages["guest"], BANNER_EN)
        assert await pages["guest"].evaluate("window.balie.recording()") == RECORDING_ID

        # The employee's button now stops the recording.
        record = pages["employee"].locator("#btn-record")
        assert (await record.inner_text()).strip() == "Opname stoppen"

        await server.sfu.set_recording(ROOM, None)
        for page in pages.values():
            await banner_gone(page)
        # Screen readers hear that it stopped (the region itself stays in the page).
        stopped = pages["resident"].locator("[role='status'] #recording-stopped")
        assert (await stopped.text_content()).strip() == STOPPED_NL
        stopped_en = pages["guest"].locator("[role='status'] #recording-stopped")
        assert (await stopped_en.text_content()).strip() == "The recording has stopped."
        assert (await record.inner_text()).strip() == "Opname starten"


async def test_only_the_employee_gets_the_button_and_its_dialog_works_by_keyboard(tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    async with running_server(tmp_path) as server, chromium() as browser:
        employee = await join(browser, server, "employee")
        resident = await join(browser, server, "resident")
        await employee.get_by_text(PEOPLE["resident"][0]).first.wait_for(timeout=5000)

        # The resident sees no button to start (or stop) a recording.
        assert await resident.locator("#btn-record").is_hidden()
        assert await resident.get_by_role("button", name="Opname starten").count() == 0
        assert await resident.get_by_role("button", name="Opname stoppen").count() == 0
        assert await employee.get_by_role("button", name="Opname starten").is_visible()

        # Keyboard only: Tab to the button, Enter opens the dialog with focus inside it.
        await tab_to(employee, "btn-record")
        await employee.keyboard.press("Enter")
        await eventually(lambda: dialog_open(employee, "record-dialog"), 5, "the dialog opened")
        dialog = employee.get_by_role("dialog", name="Opname starten")
        assert await dialog.is_visible()
        assert await focused_id(employee) == "consent-given-by"
        given_by = employee.get_by_label("Wie geeft toestemming?")
        assert await given_by.input_value() == PEOPLE["resident"][0]  # the only resident
        statement = employee.get_by_label("Waar is toestemming voor gegeven?")
        assert "opgenomen" in await statement.input_value()
        agreed = employee.get_by_label("De inwoner heeft hiermee ingestemd")
        assert not await agreed.is_checked()
        assert await given_by.get_attribute("required") is not None
        assert await agreed.get_attribute("required") is not None

        # Escape closes it and focus goes back to the button.
        await employee.keyboard.press("Escape")
        await eventually(
            lambda: employee.evaluate("!document.getElementById('record-dialog').open"),
            5,
            "the dialog closed",
        )
        await eventually(lambda: _is_focused(employee, "btn-record"), 5, "focus on the button")

        # Space opens it too. Sending without the tick: plain errors, focus on what is missing.
        await employee.keyboard.press("Space")
        await eventually(lambda: dialog_open(employee, "record-dialog"), 5, "the dialog opened")
        assert await focused_id(employee) == "consent-given-by"
        await employee.keyboard.press("Enter")  # submits the form
        await employee.get_by_text("Zet een vinkje als de inwoner heeft ingestemd.").wait_for(
            timeout=5000
        )
        assert await focused_id(employee) == "consent-agreed"
        assert await agreed.get_attribute("aria-invalid") == "true"
        assert await given_by.get_attribute("aria-invalid") is None
        assert await dialog_open(employee, "record-dialog")
        await employee.screenshot(path=str(ARTIFACTS / "recording-dialog-error.png"))
        await axe_clean(employee, "start dialog with an error")

        # Tick the box with Space; Enter on the submit button sends it. This server runs no
        # recorder: the answer (503 recording_unavailable) is shown in the dialog, in words.
        await employee.keyboard.press("Space")
        assert await agreed.is_checked()
        await tab_to(employee, "record-submit", presses=5)
        await employee.keyboard.press("Enter")
        alert = employee.locator("#record-dialog [role='alert']")
        await alert.filter(has_text="Opnemen kan niet op deze server").wait_for(timeout=10000)
        assert await agreed.get_attribute("aria-invalid") is None
        assert await dialog_open(employee, "record-dialog")
        await axe_clean(employee, "start dialog with an answer from the server")
        await employee.keyboard.press("Escape")
        await eventually(lambda: _is_focused(employee, "btn-record"), 5, "focus on the button")

        # With the banner: the page passes, and the button (now "Opname stoppen") opens the
        # stop dialog by keyboard, with focus on its button.
        await server.sfu.set_recording(ROOM, RECORDING_ID, free_udp_port())
        await banner_shown(employee)
        await banner_shown(resident)
        await employee.screenshot(path=str(ARTIFACTS / "recording-banner-employee.png"))
        await axe_clean(employee, "employee page with the recording banner")
        await axe_clean(resident, "resident page with the recording banner")
        assert await _is_focused(employee, "btn-record")
        assert (await employee.locator("#btn-record").inner_text()).strip() == "Opname stoppen"
        await employee.keyboard.press("Enter")
        await eventually(lambda: dialog_open(employee, "stop-dialog"), 5, "the stop dialog")
        assert await employee.get_by_role("dialog", name="Opname stoppen?").is_visible()
        assert await focused_id(employee) == "stop-submit"
        await employee.screenshot(path=str(ARTIFACTS / "recording-stop-dialog.png"))
        await axe_clean(employee, "stop dialog")

        # The recording ends elsewhere: the stop dialog closes, focus goes back to the button.
        await server.sfu.set_recording(ROOM, None)
        await banner_gone(employee)
        await eventually(
            lambda: employee.evaluate("!document.getElementById('stop-dialog').open"),
            5,
            "the stop dialog closed",
        )
        await eventually(lambda: _is_focused(employee, "btn-record"), 5, "focus on the button")


async def _is_focused(page, element_id: str) -> bool:
    return await focused_id(page) == element_id


async def test_the_employee_records_a_three_person_call_which_exports_to_a_playable_file(
    tmp_path,
):
    """The done-when of the recording issue: about 10 s of a real three-person call."""
    ARTIFACTS.mkdir(exist_ok=True)
    async with running_server(tmp_path, recording=True) as server, chromium() as browser:
        employee = await join(browser, server, "employee")
        resident = await join(browser, server, "resident")
        guest = await join(browser, server, "guest")
        await employee.get_by_text(PEOPLE["resident"][0]).first.wait_for(timeout=5000)
        for page in (employee, resident, guest):
            await eventually(lambda p=page: videos_playing(p, 2), 20, "everyone sees two videos")

        await employee.get_by_role("button", name="Opname starten").click()
        dialog = employee.get_by_role("dialog", name="Opname starten")
        await dialog.wait_for(timeout=5000)
        assert (
            await dialog.get_by_label("Wie geeft toestemming?").input_value()
            == (PEOPLE["resident"][0])
        )
        await dialog.get_by_label("De inwoner heeft hiermee ingestemd").check()
        await dialog.get_by_role("button", name="Opname starten").click()

        for page in (employee, resident, guest):
            await banner_shown(page)
        started = time.monotonic()
        await dialog.wait_for(state="hidden", timeout=5000)
        recording_id = await employee.evaluate("window.balie.recording()")
        assert recording_id and recording_id.startswith("rec_")
        assert await resident.evaluate("window.balie.recording()") == recording_id

        # The consent the employee confirmed is what the server recorded.
        headers = {"Authorization": f"Bearer {server.settings.api_key}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            async with http.get(f"{server.base_url}/api/v1/recordings/{recording_id}") as resp:
                assert resp.status == 200
                described = await resp.json()
        assert described["state"] == "recording"
        assert described["consent"]["given_by"] == PEOPLE["resident"][0]
        assert "opgenomen" in described["consent"]["statement"]

        await asyncio.sleep(max(0.0, RECORD_S - (time.monotonic() - started)))
        await employee.get_by_role("button", name="Opname stoppen").click()
        stop = employee.get_by_role("dialog", name="Opname stoppen?")
        await stop.wait_for(timeout=5000)
        await stop.get_by_role("button", name="Opname stoppen").click()
        for page in (employee, resident, guest):
            await banner_gone(page)
        await stop.wait_for(state="hidden", timeout=5000)
        assert await employee.get_by_role("button", name="Opname starten").is_visible()

        async with aiohttp.ClientSession(headers=headers) as http:
            async with http.get(f"{server.base_url}/api/v1/recordings/{recording_id}") as resp:
                described = await resp.json()
        assert described["state"] == "stopped"
        manifest = described["manifest"]
        recorded_s = manifest["ended_unix_s"] - manifest["started_unix_s"]
        assert RECORD_S - 1 <= recorded_s <= RECORD_S + 3
        assert {p["role"] for p in manifest["participants"]} == {"employee", "resident", "guest"}
        directory = server.settings.data_dir / "recordings" / recording_id
        assert verify_hashes(manifest, directory) == []

        exported = tmp_path / "gesprek.mkv"
        result = await asyncio.to_thread(
            subprocess.run,
            [
                *(sys.executable, "-m", "control.cli", "recording", "export", recording_id),
                *("--out", str(exported), "--data-dir", str(server.settings.data_dir)),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        shutil.copy(exported, ARTIFACTS / "recording-export.mkv")  # to look at after a failure
        probe = await asyncio.to_thread(ffprobe, exported)
        codecs = sorted(stream["codec_name"] for stream in probe["streams"])
        assert codecs == ["opus", "opus", "opus", "vp8", "vp8", "vp8"], codecs
        duration = float(probe["format"]["duration"])
        print(f"recorded {recorded_s:.2f} s, exported duration {duration:.2f} s")
        assert abs(duration - recorded_s) <= 0.5, (duration, recorded_s)
        assert await asyncio.to_thread(decode_errors, exported) == ""
