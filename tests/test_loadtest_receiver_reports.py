"""A synthetic participant that only receives behaves like a browser: it sends receiver reports."""

from __future__ import annotations

import asyncio

import pytest

from loadtest.participant import SyntheticParticipant
from tests.servers import running_server

pytestmark = pytest.mark.media


def _received(participant: SyntheticParticipant) -> int:
    return sum(stream.packets for stream in participant.streams.values())


async def test_a_participant_that_only_receives_stays_connected_past_the_media_timeout(tmp_path):
    async with running_server(tmp_path / "server", media_timeout_ms=2500) as server:
        publisher = SyntheticParticipant(server.base_url, server.token("rr", "publisher"))
        viewer = SyntheticParticipant(
            server.base_url,
            server.token("rr", "viewer"),
            publish_audio=False,
            publish_video=False,
        )
        try:
            for participant in (publisher, viewer):
                await participant.join()
                await asyncio.wait_for(participant.connected.wait(), 15)
            await asyncio.sleep(4.0)  # well past the 2.5 s the server waits for a packet
            before = _received(viewer)
            await asyncio.sleep(1.0)
            assert viewer.transport.state == "connected"
            assert _received(viewer) > before + 20
        finally:
            await asyncio.gather(publisher.close(), viewer.close())
