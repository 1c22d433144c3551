"""Calls between real aiortc peers (synthetic participants) through a real server on loopback."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from loadtest.participant import SyntheticParticipant
from tests.packets import lose_one_packet, ssrc_of
from tests.servers import RunningServer, running_server

pytestmark = pytest.mark.media


async def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        await asyncio.sleep(0.02)


async def join(
    server: RunningServer, room: str, identity: str, **options: object
) -> SyntheticParticipant:
    participant = SyntheticParticipant(server.base_url, server.token(room, identity), **options)  # type: ignore[arg-type]
    await participant.join()
    await asyncio.wait_for(participant.connected.wait(), 10)
    return participant


@asynccontextmanager
async def call_of_two(
    tmp_path: Path, room: str, **sfu_options: int
) -> AsyncIterator[tuple[RunningServer, SyntheticParticipant, SyntheticParticipant]]:
    """A server and two synthetic participants in `room`; everything is closed afterwards."""
    async with running_server(tmp_path, **sfu_options) as server:
        a = await join(server, room, "a")
        b = await join(server, room, "b")
        try:
            yield server, a, b
        finally:
            await a.close()
            await b.close()


def streams_from(receiver: SyntheticParticipant, sender: SyntheticParticipant, kind: str):
    return [
        s
        for s in receiver.streams.values()
        if s.participant_id == sender.participant_id and s.kind == kind
    ]


def receiving(
    receiver: SyntheticParticipant, sender: SyntheticParticipant, kind: str, packets: int = 20
) -> bool:
    return any(s.packets >= packets for s in streams_from(receiver, sender, kind))


async def everyone_receives_everyone(
    people: list[SyntheticParticipant], kinds: tuple[str, ...]
) -> None:
    for receiver in people:
        for sender in people:
            for kind in kinds if sender is not receiver else ():
                await wait_for(lambda r=receiver, s=sender, k=kind: receiving(r, s, k), 10, kind)


async def test_three_participants_receive_each_others_audio_and_video_byte_for_byte(tmp_path):
    async with running_server(tmp_path) as server:
        people = [await join(server, "call1", name) for name in ("employee", "resident", "guest")]
        try:
            await everyone_receives_everyone(people, ("audio", "video"))
            # Sender reports map each forwarded stream's timestamps to the publisher's clock.
            await wait_for(
                lambda: all(
                    len(s.sender_report_offsets) >= 2 for p in people for s in p.streams.values()
                ),
                5,
                "sender reports",
            )
            for receiver in people:
                for stream in receiver.streams.values():
                    assert stream.corrupt_payloads == 0
                    if stream.kind == "video":
                        assert stream.keyframes >= 1
                    clock_rate = 90000 if stream.kind == "video" else 48000
                    for offset in stream.sender_report_offsets:
                        assert abs(offset) < clock_rate // 10, (stream.kind, offset)
            stats = server.sfu.stats()
            assert stats["packets_forwarded"] > 0
            snapshot = server.sfu.room_snapshot("call1")
            assert snapshot is not None and len(snapshot["participants"]) == 3
        finally:
            for person in people:
                await person.close()


async def test_someone_who_joins_while_another_has_not_offered_yet_is_seen_by_everyone(tmp_path):
    async with running_server(tmp_path) as server:
        first = await join(server, "race", "first")
        slow = SyntheticParticipant(
            server.base_url, server.token("race", "slow"), offer_delay_s=0.7
        )
        await slow.join()
        quick = await join(server, "race", "quick")  # offers while "slow" has not offered yet
        await asyncio.wait_for(slow.connected.wait(), 10)
        people = [first, slow, quick]
        try:
            await everyone_receives_everyone(people, ("video",))
            assert not any(p.errors for p in people)
        finally:
            for person in people:
                await person.close()


async def test_participants_who_join_at_the_same_moment_get_each_track_once(tmp_path):
    async with running_server(tmp_path) as server:
        people = [
            SyntheticParticipant(server.base_url, server.token("rush", name))
            for name in ("one", "two", "three", "four")
        ]
        await asyncio.gather(*(person.join() for person in people))
        try:
            await asyncio.gather(*(asyncio.wait_for(p.connected.wait(), 10) for p in people))
            await everyone_receives_everyone(people, ("video",))
            assert not any(p.errors for p in people)
            for participant in server.sfu.rooms["rush"].participants.values():
                assert len(participant.downtracks) == 6  # audio + video of three others
        finally:
            for person in people:
                await person.close()


async def test_a_late_joiner_gets_a_keyframe_within_a_second(tmp_path):
    async with running_server(tmp_path) as server:
        first = await join(server, "late", "first")
        await asyncio.sleep(1.5)
        late = await join(server, "late", "late")
        started = time.monotonic()
        try:
            await wait_for(
                lambda: any(s.kind == "video" and s.packets for s in late.streams.values()),
                3,
                "video",
            )
            elapsed = time.monotonic() - started
            video = streams_from(late, first, "video")[0]
            assert video.keyframes >= 1
            assert elapsed < 1.0, f"first picture after {elapsed:.2f} s"
        finally:
            await late.close()
            await first.close()


async def test_a_participant_who_leaves_disappears_from_the_others(tmp_path):
    async with running_server(tmp_path) as server:
        a = await join(server, "leave", "a")
        b = await join(server, "leave", "b")
        try:
            await wait_for(lambda: receiving(a, b, "video"), 10, "video from b")
            await b.close()
            await wait_for(
                lambda: any(m.get("type") == "participant_left" for m in a.messages),
                5,
                "participant_left",
            )
            # The SFU renegotiated: b's tracks are inactive in a's latest offer.
            await wait_for(
                lambda: server.sfu.room_snapshot("leave")["participants"].__len__() == 1, 5, "room"
            )
            offers = [m for m in a.messages if m.get("type") == "offer"]
            assert "a=inactive" in offers[-1]["sdp"]
        finally:
            await a.close()


async def test_a_participant_who_drops_without_leaving_is_removed_within_ten_seconds(tmp_path):
    async with running_server(tmp_path, media_timeout_ms=4000) as server:
        a = await join(server, "drop", "a")
        b = await join(server, "drop", "b")
        try:
            await wait_for(lambda: receiving(a, b, "audio"), 10, "audio from b")
            started = time.monotonic()
            # b vanishes: no leave, media stops (like a closed laptop).
            b._closed = True
            for task in b._tasks:
                task.cancel()
            await b.transport.close()
            await wait_for(
                lambda: any(m.get("type") == "participant_left" for m in a.messages),
                10,
                "participant_left",
            )
            assert time.monotonic() - started < 10
        finally:
            await a.close()
            if b._session is not None:
                await b._session.close()


async def test_a_page_whose_socket_closes_without_leave_is_removed_after_the_grace_period(tmp_path):
    async with call_of_two(tmp_path, "grace", disconnect_grace_ms=1500) as (_server, a, b):
        assert b._ws is not None
        started = time.monotonic()
        await b._ws.close()  # no "leave"; media keeps flowing for now
        await asyncio.sleep(1.0)
        assert not any(m.get("type") == "participant_left" for m in a.messages)
        await wait_for(
            lambda: any(m.get("type") == "participant_left" for m in a.messages),
            5,
            "participant_left",
        )
        assert 1.4 < time.monotonic() - started < 5


async def test_mute_changes_are_told_to_the_others(tmp_path):
    async with call_of_two(tmp_path, "mute") as (_server, a, b):
        await b.send_raw({"type": "mute", "kind": "video", "muted": True})

        def a_sees_b_muted() -> bool:
            for message in a.messages:
                if message.get("type") == "participant_updated":
                    participant = message["participant"]
                    if participant["id"] == b.participant_id and any(
                        t["kind"] == "video" and t["muted"] for t in participant["tracks"]
                    ):
                        return True
            return False

        await wait_for(a_sees_b_muted, 5, "mute update")


async def test_a_packet_lost_on_the_way_to_a_subscriber_is_resent_on_its_nack(tmp_path):
    async with call_of_two(tmp_path, "nack") as (server, a, b):
        await wait_for(lambda: receiving(a, b, "video", 40), 10, "video")
        video = streams_from(a, b, "video")[0]
        # The SFU's packet to a gets lost once (before SRTP, as on a real network).
        sfu_side = server.sfu.rooms["nack"].participants[a.participant_id]
        lost = lose_one_packet(sfu_side.transport, lambda data: ssrc_of(data) == video.ssrc)
        await wait_for(lambda: bool(lost), 2, "a lost packet")
        await asyncio.sleep(0.2)
        assert lost[0] not in video.seqs
        from sfu.rtcp import build_nack

        a.transport.send_rtcp(build_nack(a.video_ssrc, video.ssrc, [lost[0]]))
        await wait_for(lambda: lost[0] in video.seqs, 3, "retransmission")
        assert video.corrupt_payloads == 0
        assert server.sfu.stats()["retransmissions"] >= 1


async def test_the_sfu_asks_the_publisher_again_for_lost_video_which_comes_back_in_rtx(tmp_path):
    async with call_of_two(tmp_path, "upnack") as (server, a, b):
        await wait_for(lambda: receiving(a, b, "video"), 10, "video")
        # b loses one video packet on the way: the SFU NACKs it, b resends it in RTX.
        dropped = lose_one_packet(b.transport, lambda data: data[1] & 0x7F == 96)
        await wait_for(lambda: bool(dropped), 2, "a dropped packet")
        lost_seq = dropped[0]
        await wait_for(lambda: b.nacks_received > 0, 3, "NACK from the SFU")
        sfu_b = server.sfu.rooms["upnack"].participants[b.participant_id]
        video_in = next(p for p in sfu_b.publications.values() if p.kind == "video")
        stream_in = video_in.layers[0]
        assert stream_in is not None
        await wait_for(
            lambda: any(p.seq == lost_seq for p in stream_in.buffer.packets()),
            2,
            "the resent packet at the SFU",
        )
        assert stream_in.rtx_packets >= 1
        video = streams_from(a, b, "video")[0]
        await wait_for(lambda: len(video.seqs) > 10, 2, "video")
        assert video.corrupt_payloads == 0


async def test_bad_signalling_input_closes_only_that_connection(tmp_path):
    async with call_of_two(tmp_path, "bad") as (server, a, b):
        async with aiohttp.ClientSession() as session:
            cases = [
                ("not json", "bad_json"),
                (json.dumps({"type": "join", "token": "garbage"}), "invalid_token"),
            ]
            for frame, code in cases:
                async with session.ws_connect(server.base_url.replace("http", "ws") + "/rtc") as ws:
                    await ws.send_str(frame)
                    message = await ws.receive_json(timeout=5)
                    assert message["code"] == code
                    await ws.receive(timeout=5)
                    assert ws.closed
            async with session.ws_connect(server.base_url.replace("http", "ws") + "/rtc") as ws:
                await ws.send_json({"type": "join", "token": server.token("bad", "c")})
                joined = await ws.receive_json(timeout=5)
                assert joined["type"] == "joined"
                await ws.send_json({"type": "offer", "sdp": "v=0\r\nthis is not sdp"})
                message = await ws.receive_json(timeout=5)
                while message["type"] != "error":
                    message = await ws.receive_json(timeout=5)
                assert message["code"] == "bad_sdp"
                await ws.receive(timeout=5)
                assert ws.closed
            async with session.ws_connect(server.base_url.replace("http", "ws") + "/rtc") as ws:
                await ws.send_json({"type": "join", "token": server.token("bad", "d")})
                await ws.receive_json(timeout=5)
                await ws.send_json({"type": "dance"})
                message = await ws.receive_json(timeout=5)
                while message["type"] != "error":
                    message = await ws.receive_json(timeout=5)
                assert message["code"] == "unknown_type"
        # The call between a and b went on.
        count = sum(s.packets for s in streams_from(a, b, "audio"))
        await wait_for(
            lambda: sum(s.packets for s in streams_from(a, b, "audio")) > count + 20, 5, "audio"
        )


async def test_joining_again_with_the_same_identity_replaces_the_old_connection(tmp_path):
    async with running_server(tmp_path) as server:
        first = await join(server, "again", "same")
        other = await join(server, "again", "other")
        second = await join(server, "again", "same")
        try:
            await wait_for(
                lambda: any(e.get("code") == "replaced" for e in first.errors), 5, "replaced"
            )
            await wait_for(
                lambda: receiving(other, second, "audio"), 10, "audio from the new connection"
            )
            snapshot = server.sfu.room_snapshot("again")
            assert snapshot is not None and len(snapshot["participants"]) == 2
        finally:
            for person in (first, other, second):
                await person.close()


async def test_remote_candidates_outside_the_allowed_networks_are_never_contacted(tmp_path):
    async with running_server(tmp_path) as server:
        person = SyntheticParticipant(server.base_url, server.token("nets", "x"))
        outside = [
            "candidate:9 1 udp 2122260223 10.1.2.3 5000 typ host",
            "candidate:8 1 udp 2122260223 2001:db8::1 5000 typ host",
            "candidate:7 1 udp 2122260223 0f9e7c1a-1b2c-4d5e-8f90-123456789abc.local 5000 typ host",
            "candidate:6 1 tcp 2122260223 127.0.0.1 9 typ host tcptype active",
        ]
        original = person.transport.gather

        async def gather_with_extras() -> list[str]:
            return [*await original(), *outside]

        person.transport.gather = gather_with_extras  # type: ignore[method-assign]
        await person.join()
        try:
            await asyncio.wait_for(person.connected.wait(), 10)
            await person.send_raw(
                {"type": "candidate", "candidate": {"candidate": outside[0], "sdpMid": "0"}}
            )
            await person.send_raw({"type": "ping"})
            await wait_for(lambda: any(m["type"] == "pong" for m in person.messages), 5, "pong")
            sfu_side = server.sfu.rooms["nets"].participants[person.participant_id]
            remote = sfu_side.transport._ice.getRemoteCandidates()
            assert remote and {c.ip for c in remote} == {"127.0.0.1"}
            assert {c.protocol for c in remote} == {"udp"}
        finally:
            await person.close()


async def test_a_subscribers_keyframe_request_reaches_the_publisher_throttled(tmp_path):
    async with call_of_two(tmp_path, "pli") as (_server, a, b):
        await wait_for(lambda: receiving(a, b, "video"), 10, "video")
        await asyncio.sleep(0.6)  # past the throttle interval of the subscribe request
        before = b.plis_received
        video = streams_from(a, b, "video")[0]
        keyframes = video.keyframes
        for _ in range(10):  # a burst of requests
            a.request_keyframe(video.mid)
        await wait_for(lambda: b.plis_received > before, 2, "PLI at the publisher")
        await wait_for(lambda: video.keyframes > keyframes, 2, "a keyframe")
        await asyncio.sleep(0.8)
        # One request went out; the others were satisfied by the keyframe that came.
        assert b.plis_received - before == 1
