"""A municipality's own theme (`balie serve --theme-css`): found, served, linked and switched on."""

from __future__ import annotations

from pathlib import Path

import pytest

from control.app import WEB_DIR
from control.cli import main
from control.theme import (
    THEME_CSS_MARKER,
    THEME_CSS_URL,
    Theme,
    apply_theme,
    check_class_name,
    first_class_selector,
    load_theme,
)
from tests.control_fakes import running_app

PAGE = (
    '<!doctype html><html lang="nl" class="utrecht-root voorbeeld-theme"><head>'
    '<link rel="stylesheet" href="/static/vendor/voorbeeld/theme.min.css">'
    f"{THEME_CSS_MARKER}"
    '<link rel="stylesheet" href="/static/call.css"></head><body>Gesprek</body></html>'
)
TOKENS = (
    "/* Huisstijl */\n.gemeente-test-theme {\n"
    "  --basis-color-action-1-inverse-bg-default: #006b3f;\n}\n"
)


def test_the_theme_class_is_the_first_class_selector_of_the_stylesheet() -> None:
    assert first_class_selector(TOKENS) == "gemeente-test-theme"
    assert first_class_selector("/* .not-this */ :root, .b-theme { --x: 1 }") == "b-theme"
    assert first_class_selector(":root { --x: url(a.b) }") is None


def test_a_theme_class_must_be_a_plain_class_name() -> None:
    assert check_class_name("rotterdam-theme") == "rotterdam-theme"
    for bad in (".rotterdam", "a b", 'x"><script>', ""):
        with pytest.raises(ValueError):
            check_class_name(bad)


def test_loading_a_theme_reads_its_class_unless_one_is_given(tmp_path: Path) -> None:
    css = tmp_path / "huisstijl.css"
    css.write_text(TOKENS, encoding="utf-8")
    assert load_theme(css) == Theme(css.resolve(), "gemeente-test-theme")
    assert load_theme(css, "andere-theme").class_name == "andere-theme"
    with pytest.raises(ValueError, match="not found"):
        load_theme(tmp_path / "nope.css")


def test_a_themed_page_links_the_stylesheet_after_the_default_theme_and_carries_both_classes(
    tmp_path: Path,
) -> None:
    html = apply_theme(PAGE, Theme(tmp_path / "t.css", "gemeente-test-theme"))
    assert 'class="utrecht-root voorbeeld-theme gemeente-test-theme"' in html
    default_at = html.index("voorbeeld/theme.min.css")
    theme_at = html.index(f'<link rel="stylesheet" href="{THEME_CSS_URL}">')
    assert default_at < theme_at < html.index("call.css")
    unthemed = apply_theme(PAGE, None)
    assert THEME_CSS_MARKER not in unthemed and THEME_CSS_URL not in unthemed
    assert 'class="utrecht-root voorbeeld-theme"' in unthemed


def test_the_real_call_page_has_the_places_a_theme_goes() -> None:
    html = (WEB_DIR / "call.html").read_text(encoding="utf-8")
    themed = apply_theme(html, Theme(Path("t.css"), "x-theme"))
    assert 'class="utrecht-root voorbeeld-theme x-theme"' in themed
    assert f'href="{THEME_CSS_URL}"' in themed


async def test_the_server_serves_the_theme_and_the_themed_call_page(tmp_path: Path) -> None:
    web = tmp_path / "web"
    web.mkdir()
    (web / "call.html").write_text(PAGE, encoding="utf-8")
    css = tmp_path / "huisstijl.css"
    css.write_text(TOKENS, encoding="utf-8")
    async with running_app(tmp_path / "data", web_dir=web) as harness:
        missing = await harness.client.get(THEME_CSS_URL)
        assert missing.status == 404
        harness.settings.theme = load_theme(css)
        response = await harness.client.get(THEME_CSS_URL)
        assert response.status == 200
        assert response.content_type == "text/css"
        assert "#006b3f" in await response.text()
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        page = await harness.client.get("/call")
        assert page.content_type == "text/html"
        assert "voorbeeld-theme gemeente-test-theme" in await page.text()


def test_serve_refuses_a_theme_class_without_a_stylesheet_and_a_missing_stylesheet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(tmp_path / "data")
    assert main(["serve", "--data-dir", data, "--theme-class", "x-theme"]) != 0
    assert "--theme-class needs --theme-css" in capsys.readouterr().err
    missing = str(tmp_path / "nope.css")
    assert main(["serve", "--data-dir", data, "--theme-css", missing]) != 0
    assert "theme stylesheet not found" in capsys.readouterr().err
