"""Screenshots of the call page for docs/design-system.md, in the default and a second theme.

Run inside a loopback-only network namespace (the server and Chromium talk over 127.0.0.1 only):

    unshare -n sh -c 'ip link set lo up; .venv/bin/python -m tests.design_screenshots'

Two people join a call (headless Debian Chromium with its fake camera); the employee's page is
photographed at 1280 and 390 pixels wide, with the Voorbeeld theme and with
docs/example-theme.css (as `balie serve --theme-css docs/example-theme.css` would serve it).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

from control.theme import Theme, load_theme
from tests.browser import chromium, eventually
from tests.servers import RunningServer, running_server

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
EXAMPLE_THEME = ROOT / "docs" / "example-theme.css"
SIZES = {"desktop": (1280, 800), "mobile": (390, 844)}
PEOPLE = {
    "employee": ("Medewerker Jansen", "employee"),
    "resident": ("Fatima de Vries", "resident"),
}

VIDEOS_PLAYING = """(count) => [...document.querySelectorAll('.tile video')]
    .filter((v) => v.videoWidth > 0 && !v.paused && !v.hidden).length >= count"""


async def open_call(browser: Any, server: RunningServer, identity: str, size: tuple[int, int]):
    name, role = PEOPLE[identity]
    context = await browser.new_context(viewport={"width": size[0], "height": size[1]})
    page = await context.new_page()
    await page.goto(server.join_url("spreekuur", identity, name, role))
    await eventually(
        lambda: page.evaluate("document.body.dataset.callState === 'joined'"), 20, "joined"
    )
    return page


async def photograph(server: RunningServer, theme: Theme | None, label: str) -> list[Path]:
    server.settings.theme = theme
    written = []
    async with chromium() as browser:
        resident = await open_call(browser, server, "resident", SIZES["desktop"])
        for size_name, size in SIZES.items():
            page = await open_call(browser, server, "employee", size)
            await eventually(lambda page=page: page.evaluate(VIDEOS_PLAYING, 2), 20, "videos")
            await page.wait_for_timeout(500)  # let the layout settle after the videos start
            path = OUT / f"call-{label}-{size_name}.png"
            await page.screenshot(path=str(path))
            written.append(path)
            await page.context.close()
        await resident.context.close()
    return written


async def make_screenshots() -> list[Path]:
    OUT.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as data:
        async with running_server(Path(data)) as server:
            written += await photograph(server, None, "voorbeeld")
            written += await photograph(server, load_theme(EXAMPLE_THEME), "example-theme")
    return written


if __name__ == "__main__":
    for path in asyncio.run(make_screenshots()):
        print(path.relative_to(ROOT), file=sys.stdout)
