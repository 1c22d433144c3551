"""The SFU sends a recorded room's media to the recorder as plain RTP over loopback."""

from __future__ import annotations

import asyncio
import itertools
import json

import pytest

from common.ports import free_udp_port
from loadtest.participant import SyntheticParticipant
from sfu.recording_tap import recorded_layer
from sfu.rtcp import SenderReport, build_pli, parse_rtcp
from sfu.rtp import parse_rtp
from sfu.vp8 import vp8_is_keyframe
from tests.servers import running_server
from tests.test_sfu_call import streams_from, wait_for


def test_the_highest_flowing_layer_is_recorded_and_the_top_one_when_none_flows():
    assert recorded_layer([True, True, True]) == 2
    assert recorded_layer([True, True, False]) == 1
    assert recorded_layer([True, False, False]) == 0
    assert recorded_layer([False, False, False]) == 2
    assert recorded_layer([False]) == 0


class FakeRecorder(asyncio.DatagramProtocol):
    """A UDP socket standing where the recorder listens: keeps what the tap sends."""

    def __init__(self) -> None:
        self.rtp: dict[int, list] = {}
        self.reports: dict[int, int] = {}
        self.announcements: list[dict] = []
        self.byes = 0
        self.transport: asyncio.DatagramTransport | None = None
        self.tap_address = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        self.tap_address = addr
        if data[:1] == b"{":
            self.announcements.append(json.loads(data))
            return
        if 191 < data[1] < 224:
            for message in parse_rtcp(data):
                if isinstance(message, SenderReport):
                    self.reports[message.ssrc] = self.reports.get(message.ssrc, 0) + 1
                else:
                    self.byes += 1
            return
        packet = parse_rtp(data)
        if packet is not None:
            self.rtp.setdefault(packet.ssrc, []).append(packet)

    def tracks(self) -> list[dict]:
        return self.announcements[-1]["tracks"] if self.announcements else []


@pytest.mark.media
async def test_a_recorded_room_sends_each_track_on_the_top_layer_with_reports_and_names(tmp_path):
    loop = asyncio.get_running_loop()
    transport, recorder = await loop.create_datagram_endpoint(
        FakeRecorder, local_addr=("127.0.0.1", 0)
    )
    port = transport.get_extra_info("sockname")[1]
    async with running_server(tmp_path) as server:
        alice = SyntheticParticipant(server.base_url, server.token("rec", "alice"), simulcast=True)
        bob = SyntheticParticipant(server.base_url, server.token("rec", "bob"))
        late = None
        try:
            await alice.join()
            await bob.join()
            await asyncio.wait_for(alice.connected.wait(), 10)
            await asyncio.wait_for(bob.connected.wait(), 10)
            await server.sfu.set_recording("rec", "r1", port)
            await wait_for(lambda: len(recorder.tracks()) == 4, 5, "four tracks announced")
            tracks = recorder.tracks()
            assert {(t["kind"], t["codec"]) for t in tracks} == {
                ("audio", "opus"),
                ("video", "VP8"),
            }
            assert {t["role"] for t in tracks} <= {"resident", "employee", "guest"}
            assert recorder.announcements[-1]["recording_id"] == "r1"
            video = next(
                t
                for t in tracks
                if t["kind"] == "video" and t["participant_id"] == alice.participant_id
            )
            await wait_for(lambda: len(recorder.rtp.get(video["ssrc"], [])) > 30, 5, "video")
            packets = recorder.rtp[video["ssrc"]]
            assert vp8_is_keyframe(packets[0].payload), "the recording starts on a keyframe"
            # The top layer (f, 1150-byte packets in the synthetic publisher) is what is recorded.
            assert max(len(p.payload) for p in packets[-10:]) > 1000
            seqs = [p.seq for p in packets]
            assert all((b - a) % 65536 == 1 for a, b in itertools.pairwise(seqs))
            await wait_for(lambda: recorder.reports.get(video["ssrc"], 0) >= 1, 3, "a report")
            for participant in (alice, bob):
                assert {"type": "recording", "active": True, "recording_id": "r1"} in (
                    participant.messages
                )

            # The recorder asks for a keyframe with a PLI sent back to the tap's socket.
            camera = next(
                p
                for p in server.sfu.rooms["rec"]
                .participants[alice.participant_id]
                .publications.values()
                if p.kind == "video"
            )
            before = camera.keyframe_requests_sent
            await asyncio.sleep(1.1)  # the per-layer request throttle
            transport.sendto(build_pli(1, video["ssrc"]), recorder.tap_address)
            await wait_for(lambda: camera.keyframe_requests_sent > before, 3, "keyframe request")

            late = SyntheticParticipant(server.base_url, server.token("rec", "carol"))
            await late.join()
            await wait_for(
                lambda: (
                    {"type": "recording", "active": True, "recording_id": "r1"} in late.messages
                ),
                3,
                "a late joiner is told",
            )
            await asyncio.wait_for(late.connected.wait(), 10)
            await wait_for(lambda: len(recorder.tracks()) == 6, 5, "the late joiner's tracks")

            await bob.close()
            await wait_for(lambda: len(recorder.tracks()) == 4, 5, "bob's tracks gone")
            await server.sfu.set_recording("rec", None)
            await wait_for(
                lambda: (
                    {"type": "recording", "active": False, "recording_id": None} in alice.messages
                ),
                3,
                "the end of the recording is told",
            )
            count = sum(len(v) for v in recorder.rtp.values())
            await asyncio.sleep(0.5)
            assert sum(len(v) for v in recorder.rtp.values()) == count, "nothing after the stop"
            room = server.sfu.rooms["rec"]
            assert room.recording is None
            for participant in room.participants.values():
                for publication in participant.publications.values():
                    assert all(d.mid.startswith("rec-") is False for d in publication.downtracks)
        finally:
            for participant in (late, bob, alice):
                if participant is not None:
                    await participant.close()
            transport.close()


@pytest.mark.media
async def test_a_recording_without_a_listening_recorder_does_not_disturb_the_call(tmp_path):
    async with running_server(tmp_path) as server:
        alice = SyntheticParticipant(server.base_url, server.token("norec", "alice"))
        bob = SyntheticParticipant(server.base_url, server.token("norec", "bob"))
        try:
            await alice.join()
            await bob.join()
            await asyncio.wait_for(bob.connected.wait(), 10)
            # Nobody listens on this port: the kernel answers "port unreachable".
            await server.sfu.set_recording("norec", "r2", free_udp_port())
            await asyncio.sleep(1.5)
            await wait_for(lambda: streams_from(bob, alice, "video"), 5, "video")
            video = streams_from(bob, alice, "video")[0]
            before = video.packets
            await asyncio.sleep(1.0)
            assert video.packets > before + 10
            for room in server.sfu.rooms.values():
                for participant in room.participants.values():
                    assert participant.tick_errors == 0
        finally:
            await bob.close()
            await alice.close()
