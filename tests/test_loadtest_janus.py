"""Janus VideoRoom as the benchmark's reference server, loaded by the synthetic participants."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from loadtest.janus import janus_rid_order, write_janus_config
from loadtest.media import load_media

ROOT = Path(__file__).resolve().parent.parent
MEDIA_SECONDS = 2.0

needs_janus = pytest.mark.skipif(
    shutil.which("janus") is None, reason="Debian's janus is missing (make system-deps installs it)"
)


@pytest.fixture(scope="module")
def media_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = tmp_path_factory.mktemp("media")
    load_media(cache, seconds=MEDIA_SECONDS)
    return cache


def test_simulcast_rids_are_offered_to_janus_from_the_highest_layer_down():
    offer = "\r\n".join(
        [
            "m=video 9 UDP/TLS/RTP/SAVPF 96",
            "a=rid:q send",
            "a=rid:h send",
            "a=rid:f send",
            "a=simulcast:send q;h;f",
            "a=end-of-candidates",
            "",
        ]
    )
    lines = janus_rid_order(offer).split("\r\n")
    assert [line for line in lines if line.startswith("a=rid:")] == [
        "a=rid:f send",
        "a=rid:h send",
        "a=rid:q send",
    ]
    assert "a=simulcast:send f;h;q" in lines
    assert lines[0] == "m=video 9 UDP/TLS/RTP/SAVPF 96" and lines[-2] == "a=end-of-candidates"


@needs_janus
def test_the_janus_configuration_keeps_janus_to_videoroom_over_http_on_loopback(tmp_path):
    config = write_janus_config(tmp_path, 18088, "10.77.0.1").read_text()
    http = (tmp_path / "janus.transport.http.jcfg").read_text()
    assert "event_loops = 2" in config
    assert 'ice_enforce_list = "10.77.0.1"' in config
    assert "stun_server" not in config and "nat_1_1_mapping" not in config
    disabled_plugins = config.split("plugins: {")[1].split("}")[0]
    assert "libjanus_videoroom.so" not in disabled_plugins
    assert "libjanus_echotest.so" in disabled_plugins
    disabled_transports = config.split("transports: {")[1].split("}")[0]
    assert "libjanus_http.so" not in disabled_transports
    assert "libjanus_websockets.so" in disabled_transports
    assert 'ip = "127.0.0.1"' in http and "port = 18088" in http
    assert "admin_http = false" in http and "https = false" in http


@pytest.mark.media
@needs_janus
async def test_janus_forwards_one_publisher_to_two_subscribers_without_loss(tmp_path, media_cache):
    """In a namespace of its own (loopback and the veth pair Janus needs), a few seconds."""
    out = tmp_path / "janus.json"
    unshare = ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-rn"]
    process = await asyncio.create_subprocess_exec(
        *unshare,
        sys.executable,
        "-m",
        "loadtest.janus",
        "fanout",
        "--subscribers",
        "2",
        "--duration",
        "3",
        "--json",
        str(out),
        "--media-cache",
        str(media_cache),
        "--media-seconds",
        str(MEDIA_SECONDS),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, output.decode(errors="replace")[-3000:]
    result = json.loads(out.read_text())
    assert result["joined"] == 3 and result["join_errors"] == 0, result["failures"]
    assert result["streams"] == 4  # audio and video for each subscriber
    window = result["window"]
    assert window["packets_received"] > 2 * 3 * 100  # two subscribers, 3 s, ~200 packets/s each
    assert window["packets_lost"] == 0 and result["packets_lost"] == 0
    assert window["delay_ms"]["p50"] is not None and 0 <= window["delay_ms"]["p50"] < 100
    assert result["keyframes"] >= 2
    assert window["cpu_seconds"] is not None and window["cpu_seconds"] > 0
