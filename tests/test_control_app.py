"""Pages, static files, health check and security headers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from control.app import WEB_DIR
from tests.control_fakes import Harness, running_app


@pytest.fixture
def web_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "web"
    folder.mkdir()
    (folder / "call.html").write_text("<!doctype html><title>Gesprek</title>", encoding="utf-8")
    (folder / "call.js").write_text("console.log('hallo');", encoding="utf-8")
    return folder


@pytest.fixture
async def harness(tmp_path: Path, web_dir: Path) -> AsyncIterator[Harness]:
    async with running_app(tmp_path / "data", web_dir=web_dir) as h:
        yield h


def test_web_folder_is_found_next_to_the_control_package() -> None:
    assert WEB_DIR == Path(__file__).resolve().parent.parent / "web"


async def test_home_page_is_dutch_and_points_to_the_invitation_link(harness: Harness) -> None:
    response = await harness.client.get("/")
    assert response.status == 200
    assert response.content_type == "text/html"
    html = await response.text()
    assert '<html lang="nl">' in html
    assert "link" in html and "uitnodiging" in html


async def test_call_page_serves_call_html(harness: Harness) -> None:
    response = await harness.client.get("/call")
    assert response.status == 200
    assert response.content_type == "text/html"
    assert "Gesprek" in await response.text()


async def test_static_files_are_served_from_the_web_folder(harness: Harness) -> None:
    response = await harness.client.get("/static/call.js")
    assert response.status == 200
    assert "hallo" in await response.text()


async def test_static_files_cannot_escape_the_web_folder(harness: Harness, web_dir: Path) -> None:
    (web_dir.parent / "geheim.txt").write_text("nee")
    for path in ("/static/../geheim.txt", "/static/%2e%2e/geheim.txt", "/static/..%2fgeheim.txt"):
        response = await harness.client.get(path)
        assert response.status in (403, 404), path
        assert "nee" not in await response.text()


async def test_missing_call_page_is_a_json_404(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    async with running_app(tmp_path / "data", web_dir=empty) as harness:
        response = await harness.client.get("/call")
        assert response.status == 404
        assert (await response.json())["error"]["code"] == "not_found"


async def test_health_check_says_ok(harness: Harness) -> None:
    response = await harness.client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


@pytest.mark.parametrize("path", ["/", "/call", "/static/call.js", "/healthz", "/nope"])
async def test_every_response_has_the_security_headers(harness: Harness, path: str) -> None:
    response = await harness.client.get(path)
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "ws:" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Permissions-Policy"] == "camera=(self), microphone=(self)"


async def test_unknown_page_is_a_json_404(harness: Harness) -> None:
    response = await harness.client.get("/bestaat-niet")
    assert response.status == 404
    assert await response.json() == {"error": {"code": "not_found", "message": "not found"}}


async def test_unexpected_error_is_a_500_without_details(harness: Harness) -> None:
    def explode(room_id: str) -> None:
        raise RuntimeError("secret internals")

    harness.sfu.room_snapshot = explode  # type: ignore[method-assign]
    response = await harness.client.get("/api/v1/rooms/x", headers=harness.auth)
    assert response.status == 500
    body = await response.json()
    assert body["error"]["code"] == "internal_error"
    assert "secret" not in str(body)
