"""The aiortc MediaRelay baseline of `make bench`: a real aiortc server that transcodes."""

from __future__ import annotations

import pytest

from common.ports import free_port
from loadtest.media import load_media
from loadtest.relay_baseline import run_relay

pytestmark = pytest.mark.media


async def test_a_subscriber_of_the_mediarelay_baseline_receives_video(tmp_path):
    media = load_media(tmp_path / "media", seconds=2.0)
    (point,) = await run_relay(media, (1,), 2.0, free_port())
    assert point["subscribers_receiving"] == 1
    assert point["frames_received"] > 10
    window = point["window"]
    assert window["packets_received"] > 50
    assert window["cpu_seconds"] is not None and window["cpu_seconds"] > 0
