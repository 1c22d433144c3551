"""Simulcast through a real server: synthetic publishers with three layers, like Chrome."""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager

import pytest

from loadtest.participant import SyntheticParticipant
from tests.packets import lose_one_packet, ssrc_of
from tests.servers import running_server
from tests.test_sfu_call import streams_from, wait_for

pytestmark = pytest.mark.media


@asynccontextmanager
async def simulcast_call(tmp_path, room: str):
    """A server, a simulcast publisher and a subscriber whose video has arrived."""
    async with running_server(tmp_path) as server:
        publisher = SyntheticParticipant(server.base_url, server.token(room, "pub"), simulcast=True)
        subscriber = SyntheticParticipant(server.base_url, server.token(room, "sub"))
        try:
            await publisher.join()
            await subscriber.join()
            await asyncio.wait_for(publisher.connected.wait(), 10)
            await asyncio.wait_for(subscriber.connected.wait(), 10)
            await wait_for(lambda: video_from(subscriber, publisher) is not None, 5, "video")
            yield server, publisher, subscriber, video_from(subscriber, publisher)
            for room in server.sfu.rooms.values():
                for participant in room.participants.values():
                    assert participant.tick_errors == 0, "the participant timer failed"
        finally:
            await subscriber.close()
            await publisher.close()


def video_from(subscriber, publisher):
    streams = streams_from(subscriber, publisher, "video")
    return streams[0] if streams else None


async def test_three_layers_are_told_apart_and_the_screen_size_picks_one(tmp_path):
    async with simulcast_call(tmp_path, "sim") as (server, publisher, subscriber, video):
        await wait_for(lambda: video.last_layer == 2, 5, "the top layer by default")
        sfu_publisher = server.sfu.rooms["sim"].participants[publisher.participant_id]
        camera = next(p for p in sfu_publisher.publications.values() if p.kind == "video")
        assert [s.rid for s in camera.layers] == ["q", "h", "f"]
        assert [s.frame_size for s in camera.layers] == [(320, 180), (640, 360), (1280, 720)]

        await subscriber.send_layout({video.mid: (160, 90, True)})
        started = time.monotonic()
        await wait_for(lambda: video.last_layer == 0, 3, "the low layer for a small video")
        assert time.monotonic() - started < 3
        await subscriber.send_layout({video.mid: (1280, 720, True)})
        await wait_for(lambda: video.last_layer == 2, 3, "the top layer again")
        assert video.corrupt_payloads == 0
        assert video.picture_id_jumps == 0  # picture ids continue across switches
        assert {0, 2} <= set(video.layers)


async def test_a_hidden_video_gets_no_packets_and_comes_back_quickly(tmp_path):
    async with simulcast_call(tmp_path, "hide") as (_server, _publisher, subscriber, video):
        await wait_for(lambda: video.packets > 20, 5, "video packets")
        await subscriber.send_layout({video.mid: (640, 360, False)})
        await asyncio.sleep(0.5)
        before = video.packets
        await asyncio.sleep(1.0)
        assert video.packets == before
        await subscriber.send_layout({video.mid: (640, 360, True)})
        started = time.monotonic()
        await wait_for(lambda: video.packets > before, 2, "video again")
        assert time.monotonic() - started < 2


async def test_layers_nobody_needs_are_paused_at_the_publisher_and_resumed(tmp_path):
    async with simulcast_call(tmp_path, "pause") as (server, publisher, subscriber, video):
        await subscriber.send_layout({video.mid: (160, 90, True)})

        def asked(active: dict[str, bool], since: int = 0) -> bool:
            return any(
                m.get("type") == "publisher_layers" and m["active"] == active
                for m in publisher.messages[since:]
            )

        try:
            await wait_for(lambda: asked({"q": True, "h": False, "f": False}), 20, "pause h and f")
        except AssertionError as exc:
            sfu_sub = server.sfu.rooms["pause"].participants[subscriber.participant_id]
            layers = [
                (d.current_layer, d.target_layer, d.wanted_layer)
                for d in sfu_sub.downtracks.values()
                if d.kind == "video"
            ]
            sent = [m for m in publisher.messages if m.get("type") == "publisher_layers"]
            raise AssertionError(f"{exc}; asked {sent}; subscriber layers {layers}") from exc
        assert not publisher.video_layers[2].active
        mark = len(publisher.messages)
        await subscriber.send_layout({video.mid: (1280, 720, True)})
        await wait_for(lambda: asked({"q": True, "h": False, "f": True}, mark), 3, "resume f")
        assert publisher.video_layers[2].active
        await wait_for(lambda: video.last_layer == 2, 3, "the top layer once it flows again")


async def test_the_publisher_gets_transport_wide_feedback_and_rtx_repairs_a_layer(tmp_path):
    async with simulcast_call(tmp_path, "twcc") as (server, publisher, _subscriber, video):
        await wait_for(lambda: publisher.twcc_feedbacks >= 5, 3, "TWCC feedback")
        # Lose one packet of the top layer on the way to the SFU: it must come back in RTX.
        top = publisher.video_layers[2]
        dropped = lose_one_packet(publisher.transport, lambda data: ssrc_of(data) == top.ssrc)
        await wait_for(lambda: bool(dropped), 2, "a lost packet")
        sfu_publisher = server.sfu.rooms["twcc"].participants[publisher.participant_id]
        camera = next(p for p in sfu_publisher.publications.values() if p.kind == "video")
        stream = camera.layers[2]
        await wait_for(lambda: stream.rtx_packets >= 1, 3, "the RTX retransmission")
        assert any(p.seq == dropped[0] for p in stream.buffer.packets())
        assert video.corrupt_payloads == 0


async def test_the_speaking_participant_is_reported_as_active_speaker(tmp_path):
    async with running_server(tmp_path) as server:
        speaker = SyntheticParticipant(server.base_url, server.token("talk", "speaker"))
        quiet = SyntheticParticipant(
            server.base_url, server.token("talk", "quiet"), audio_level_dbov=127
        )
        await speaker.join()
        await quiet.join()
        try:

            def announced(who: SyntheticParticipant) -> bool:
                return any(
                    m.get("type") == "active_speaker" and m["participant_id"] == who.participant_id
                    for m in quiet.messages
                )

            await wait_for(lambda: announced(speaker), 5, "active speaker")
            assert not announced(quiet)
        finally:
            await speaker.close()
            await quiet.close()


async def test_audio_only_stops_video_and_switching_back_resumes_it(tmp_path):
    async with simulcast_call(tmp_path, "audio") as (_server, _publisher, subscriber, video):
        await wait_for(lambda: video.packets > 10, 5, "video")
        await subscriber.send_raw({"type": "audio_only", "enabled": True})
        await asyncio.sleep(0.8)
        before = video.packets
        await asyncio.sleep(1.0)
        assert video.packets == before
        await subscriber.send_raw({"type": "audio_only", "enabled": False})
        await wait_for(lambda: video.packets > before, 2, "video again")
