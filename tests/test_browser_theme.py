"""The NL Design System theme on the call page: Voorbeeld by default, a municipality's own with
`--theme-css`, both without WCAG 2.1 A/AA violations that axe-core can find.

Real headless Chromium against a real server (control plane + SFU) on loopback.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from axe_playwright_python.async_playwright import Axe

from common.ports import free_port
from control.config import load_token_secret
from control.tokens import issue_join_token
from tests.browser import chromium, eventually
from tests.servers import running_server

pytestmark = [pytest.mark.browser, pytest.mark.media]

WCAG_21_AA = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
VOORBEELD_ACTION = "rgb(81, 21, 239)"  # #5115ef, the Voorbeeld theme's action colour
TEST_ACTION = "rgb(138, 21, 56)"  # #8a1538
TEST_THEME = """/* A test municipality's huisstijl: its own class, another action colour. */
.testgemeente-theme {
  --basis-color-action-1-color-default: #8a1538;
  --basis-color-action-1-color-hover: #6b102b;
  --basis-color-action-1-border-default: #8a1538;
  --basis-color-action-1-inverse-bg-default: #8a1538;
  --basis-color-action-1-inverse-bg-hover: #6b102b;
  --basis-color-action-1-bg-default: #f9e8ee;
  --basis-color-action-1-color-document: #3d0918;
  --basis-color-default-bg-subtle: #fbf7f8;
}
"""

STYLE = """() => {
  const html = document.documentElement;
  const mic = getComputedStyle(document.getElementById('btn-mic'));
  const status = getComputedStyle(document.getElementById('status'));
  return {
    classes: [...html.classList],
    token: getComputedStyle(html).getPropertyValue('--basis-color-action-1-color-default').trim(),
    micColor: mic.color,
    micBorder: mic.borderTopColor,
    statusBorder: status.borderInlineStartColor,
    sheets: [...document.styleSheets].map((s) => new URL(s.href).pathname),
  };
}"""


ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def balie_serve(data_dir: Path, *options: str) -> Iterator[str]:
    """`balie serve OPTIONS` on 127.0.0.1 as an operator runs it; yields its base URL."""
    port = free_port()
    command = [sys.executable, "-m", "control.cli", "serve", "--port", str(port)]
    command += ["--rtc-ip", "127.0.0.1", "--workers", "1", "--data-dir", str(data_dir), *options]
    log = data_dir.parent / "balie-serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    output = log.read_text(errors="replace")
                    raise AssertionError(f"balie serve did not start:\n{output}") from None
                time.sleep(0.1)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        assert "Traceback" not in log.read_text(errors="replace")


async def join(browser, base_url: str, secret: str, identity: str, role: str, problems: list[str]):
    context = await browser.new_context(viewport={"width": 1100, "height": 800})
    page = await context.new_page()
    page.on(
        "console",
        lambda message: (
            problems.append(message.text)
            if message.type == "error" or "Content Security Policy" in message.text
            else None
        ),
    )
    token = issue_join_token(secret, "thema", identity, identity.title(), role, 600)
    await page.goto(f"{base_url}/call#token={token}")
    await eventually(
        lambda: page.evaluate("document.body.dataset.callState === 'joined'"), 15, "joined"
    )
    return page


async def call_of_two(browser, base_url: str, secret: str, problems: list[str]):
    employee = await join(browser, base_url, secret, "medewerker", "employee", problems)
    resident = await join(browser, base_url, secret, "inwoner", "resident", problems)
    for page in (employee, resident):
        await page.locator(".tile:not([data-self])").first.wait_for(timeout=10000)
    return employee, resident


async def axe_clean(page, what: str) -> None:
    results = await Axe().run(page, options=WCAG_21_AA)
    assert results.violations_count == 0, f"{what}:\n{results.generate_report()}"


async def test_the_call_page_wears_the_voorbeeld_theme_by_default(tmp_path: Path):
    problems: list[str] = []
    async with running_server(tmp_path / "data") as server, chromium() as browser:
        secret = server.settings.token_secret
        employee, resident = await call_of_two(browser, server.base_url, secret, problems)
        style = await employee.evaluate(STYLE)
        assert "voorbeeld-theme" in style["classes"]
        assert "testgemeente-theme" not in style["classes"]
        assert "/theme/theme.css" not in style["sheets"]
        assert style["micColor"] == VOORBEELD_ACTION
        assert style["micBorder"] != TEST_ACTION
        for page, who in ((employee, "employee"), (resident, "resident")):
            await axe_clean(page, f"default theme, {who}")
    assert problems == [], problems


async def test_balie_serve_theme_css_puts_the_municipalitys_theme_on_the_call_page(tmp_path: Path):
    theme_file = tmp_path / "huisstijl.css"
    theme_file.write_text(TEST_THEME, encoding="utf-8")
    data_dir = tmp_path / "data"
    problems: list[str] = []
    with balie_serve(data_dir, "--theme-css", str(theme_file)) as base_url:
        secret = load_token_secret(data_dir)
        async with chromium() as browser:
            employee, resident = await call_of_two(browser, base_url, secret, problems)
            style = await employee.evaluate(STYLE)
            # Its class on <html> after the default theme's, its stylesheet after the default one.
            assert style["classes"][-2:] == ["voorbeeld-theme", "testgemeente-theme"]
            sheets = style["sheets"]
            default_at = sheets.index("/static/vendor/voorbeeld/theme.min.css")
            assert default_at < sheets.index("/theme/theme.css") < sheets.index("/static/call.css")
            # Its tokens win: the components and the page's own CSS take its colour.
            assert style["token"] == "#8a1538"
            assert style["micColor"] == TEST_ACTION
            assert style["micBorder"] == TEST_ACTION
            assert style["statusBorder"] == TEST_ACTION
            for page, who in ((employee, "employee"), (resident, "resident")):
                await axe_clean(page, f"test theme, {who}")
    assert problems == [], problems
