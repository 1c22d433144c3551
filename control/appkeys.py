"""Typed keys for the objects stored on the aiohttp application."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from control.config import Settings
from control.recordings import Recordings
from control.rooms import RoomStore
from control.sfu_types import SfuLike

SETTINGS_KEY = web.AppKey("settings", Settings)
SFU_KEY = web.AppKey[SfuLike]("sfu")
STORE_KEY = web.AppKey[RoomStore]("room_store")
WEB_DIR_KEY = web.AppKey("web_dir", Path)
RECORDINGS_KEY = web.AppKey("recordings", Recordings)
