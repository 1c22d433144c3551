"""The aiohttp application: admin API, /rtc signalling, the call page and static files."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from aiohttp import web

from control import api, recordings_api
from control.apispec import PUBLIC, ResponseModel, RouteTable
from control.appkeys import RECORDINGS_KEY, SETTINGS_KEY, SFU_KEY, STORE_KEY, WEB_DIR_KEY
from control.config import Settings
from control.errors import error_middleware
from control.metrics import DEFAULT_WORKER, setup_metrics
from control.recorder_process import RecorderProcess
from control.recordings import Recordings, RecordingStore
from control.rooms import RoomRegistry, RoomStore
from control.sfu_types import SfuLike
from control.signalling import SIGNALLING_OPTIONS_KEY, SignallingOptions, rtc_handler
from control.theme import THEME_CSS_URL, apply_theme

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parent.parent / "web"

# Request bodies of the admin API are small JSON objects.
CLIENT_MAX_SIZE = 64 * 1024

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
        "media-src 'self' blob: mediastream:; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(self), microphone=(self)",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}

INDEX_HTML = """<!doctype html>
<html lang="nl">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Digitale Balie</title>
</head>
<body>
<main>
<h1>Digitale Balie</h1>
<p>Gebruik de link uit uw uitnodiging om deel te nemen aan het videogesprek.</p>
<p>Heeft u geen link ontvangen? Neem dan contact op met uw gemeente.</p>
</main>
</body>
</html>
"""


async def _add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.path.startswith("/api/"):
        # Responses may contain tokens: never cache them.
        response.headers["Cache-Control"] = "no-store"


async def index(request: web.Request) -> web.StreamResponse:
    return web.Response(text=INDEX_HTML, content_type="text/html", charset="utf-8")


async def call_page(request: web.Request) -> web.StreamResponse:
    path = request.app[WEB_DIR_KEY] / "call.html"
    if not path.is_file():
        raise web.HTTPNotFound()
    # With `--theme-css` the page links the municipality's stylesheet and carries its class.
    html = apply_theme(path.read_text(encoding="utf-8"), request.app[SETTINGS_KEY].theme)
    return web.Response(
        text=html, content_type="text/html", charset="utf-8", headers={"Cache-Control": "no-cache"}
    )


async def theme_css(request: web.Request) -> web.StreamResponse:
    """The municipality's design tokens stylesheet (`balie serve --theme-css FILE`)."""
    theme = request.app[SETTINGS_KEY].theme
    if theme is None or not theme.css_file.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(
        theme.css_file, headers={"Cache-Control": "no-cache", "Content-Type": "text/css"}
    )


operations = RouteTable(tag="operations")


class Health(ResponseModel):
    """The server is up."""

    status: Literal["ok"]


@operations.get("/healthz", security=PUBLIC, summary="Health check for load balancers")
async def healthz(request: web.Request) -> Health:
    return Health(status="ok")


RECORDER_KEY = web.AppKey("recorder_process", RecorderProcess)


async def _start_recordings(app: web.Application) -> None:
    settings = app[SETTINGS_KEY]
    recorder = RecorderProcess(settings.recording_key)
    recordings = Recordings(
        RecordingStore(settings.data_dir),
        recorder,
        app[SFU_KEY],
        settings.mandatory_recording_case_types,
    )
    recorder.on_restart = recordings.resume_all
    await recorder.start()
    app[RECORDER_KEY] = recorder
    app[RECORDINGS_KEY] = recordings
    await recordings.recover()


async def _stop_recordings(app: web.Application) -> None:
    recordings = app.get(RECORDINGS_KEY)
    if recordings is not None:
        await recordings.close()


async def _close_recorder(app: web.Application) -> None:
    recorder = app.get(RECORDER_KEY)
    if recorder is not None:
        await recorder.close()


async def _close_sfu(app: web.Application) -> None:
    await app[SFU_KEY].close()


def create_app(
    settings: Settings,
    sfu: SfuLike,
    *,
    store: RoomStore | None = None,
    signalling: SignallingOptions | None = None,
    web_dir: Path | None = None,
    worker: str = DEFAULT_WORKER,
    recording: bool = False,
) -> web.Application:
    """Build the application. `sfu.close()` (idempotent) is awaited on shutdown and cleanup.

    `worker` labels this application's Prometheus metrics (one SFU worker per core later on).
    With `recording` the recorder process is started (and supervised) with the application.
    """
    app = web.Application(middlewares=[error_middleware], client_max_size=CLIENT_MAX_SIZE)
    app[SETTINGS_KEY] = settings
    app[SFU_KEY] = sfu
    app[STORE_KEY] = store if store is not None else RoomRegistry()
    app[SIGNALLING_OPTIONS_KEY] = signalling if signalling is not None else SignallingOptions()
    web_dir = web_dir if web_dir is not None else WEB_DIR
    app[WEB_DIR_KEY] = web_dir

    app.router.add_get("/", index)
    app.router.add_get("/call", call_page)
    app.router.add_get(THEME_CSS_URL, theme_css)
    operations.add_to(app)
    app.router.add_get("/rtc", rtc_handler)
    api.add_routes(app)
    recordings_api.add_routes(app)
    if recording:
        app.on_startup.append(_start_recordings)
        app.on_shutdown.append(_stop_recordings)  # before the calls end (below)
    setup_metrics(app, sfu, worker=worker)
    if web_dir.is_dir():
        app.router.add_static("/static", web_dir, follow_symlinks=False)
    else:
        log.warning("web directory %s not found; /static is not served", web_dir)

    app.on_response_prepare.append(_add_security_headers)
    # On shutdown already, so that open calls end (and their sockets close) before aiohttp waits
    # for running handlers; again on cleanup, which also runs when startup failed.
    app.on_shutdown.append(_close_sfu)
    app.on_cleanup.append(_close_sfu)
    if recording:
        app.on_cleanup.append(_close_recorder)
    return app
