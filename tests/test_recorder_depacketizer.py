"""Rebuilding VP8 frames and Opus packets from RTP: order, loss, duplicates, wrap-around."""

from __future__ import annotations

import pytest

from loadtest.media import MediaLibrary, load_media, vp8_payloads
from recorder.depacketizer import Frame, OpusDepacketizer, Vp8Depacketizer, vp8_frame_size
from tests.packets import vp8_payload

T0 = 1_700_000_000.0


@pytest.fixture(scope="module")
def library() -> MediaLibrary:
    return load_media()


class Stream:
    """Packets of one VP8 stream: frames split into payloads with running seq/timestamps."""

    def __init__(self, seq: int = 100, timestamp: int = 5000) -> None:
        self.seq = seq
        self.timestamp = timestamp
        self.time = T0

    def frame(
        self, payloads: list[bytes], *, step: int = 3600
    ) -> list[tuple[int, int, bool, bytes, float]]:
        packets = []
        for index, payload in enumerate(payloads):
            packets.append(
                (self.seq & 0xFFFF, self.timestamp, index == len(payloads) - 1, payload, self.time)
            )
            self.seq += 1
        self.timestamp = (self.timestamp + step) & 0xFFFFFFFF
        self.time += 0.04
        return packets

    def synthetic(
        self, *, keyframe: bool, parts: int = 3
    ) -> list[tuple[int, int, bool, bytes, float]]:
        payloads = [vp8_payload(keyframe=keyframe, start=i == 0, size=40) for i in range(parts)]
        return self.frame(payloads)


def push_all(
    depacketizer: Vp8Depacketizer | OpusDepacketizer,
    packets: list[tuple[int, int, bool, bytes, float]],
) -> list[Frame]:
    frames: list[Frame] = []
    for seq, timestamp, marker, payload, arrival in packets:
        frames.extend(depacketizer.push(seq, timestamp, marker, payload, arrival))
    return frames


def test_a_frame_split_over_packets_is_rebuilt_without_its_payload_descriptors(library):
    keyframe = library.video_layers[2].frames[0].data
    stream = Stream()
    packets = stream.frame(vp8_payloads(keyframe, picture_id=7))
    assert len(packets) > 10
    frames = push_all(Vp8Depacketizer(), packets)
    assert len(frames) == 1
    assert frames[0].data == keyframe
    assert frames[0].keyframe
    assert frames[0].timestamp == 5000
    assert frames[0].arrival_unix_s == T0
    assert vp8_frame_size(frames[0].data) == (1280, 720)


def test_real_inter_frames_follow_the_keyframe_in_order(library):
    layer = library.video_layers[0]
    stream = Stream()
    depacketizer = Vp8Depacketizer()
    packets = [
        p for i, f in enumerate(layer.frames[:20]) for p in stream.frame(vp8_payloads(f.data, i))
    ]
    frames = push_all(depacketizer, packets)
    assert [f.data for f in frames] == [f.data for f in layer.frames[:20]]
    assert [f.keyframe for f in frames] == [True] + [False] * 19
    assert depacketizer.stats.keyframe_requests == 0
    assert not depacketizer.keyframe_wanted


def test_a_stream_joined_mid_frame_waits_for_a_keyframe_and_asks_for_one():
    stream = Stream()
    depacketizer = Vp8Depacketizer()
    first = stream.synthetic(keyframe=False)
    frames = push_all(depacketizer, first[1:])  # the frame's start is missing
    frames += push_all(depacketizer, stream.synthetic(keyframe=False))
    assert frames == []
    assert depacketizer.keyframe_wanted
    assert depacketizer.keyframe_request_due(T0 + 0.1)
    frames = push_all(depacketizer, stream.synthetic(keyframe=True))
    assert [f.keyframe for f in frames] == [True]
    assert not depacketizer.keyframe_wanted
    assert depacketizer.stats.frames_dropped == 2


def test_a_lost_packet_drops_the_frame_and_asks_for_a_keyframe():
    stream = Stream()
    depacketizer = Vp8Depacketizer(max_packets=4)
    frames = push_all(depacketizer, stream.synthetic(keyframe=True))
    assert len(frames) == 1
    broken = stream.synthetic(keyframe=False)
    del broken[1]  # lost on the way
    frames = push_all(depacketizer, broken)
    # Later inter frames refer to the broken one: they are dropped too, until a keyframe.
    for _ in range(3):
        frames += push_all(depacketizer, stream.synthetic(keyframe=False))
    assert frames == []
    assert depacketizer.keyframe_wanted
    assert depacketizer.keyframe_request_due(T0 + 0.2)
    assert depacketizer.stats.lost == 1
    frames = push_all(depacketizer, stream.synthetic(keyframe=True))
    frames += push_all(depacketizer, stream.synthetic(keyframe=False))
    assert [f.keyframe for f in frames] == [True, False]
    assert depacketizer.stats.frames == 3


def test_keyframe_requests_are_throttled_and_a_throttled_one_stays_pending():
    depacketizer = Vp8Depacketizer(keyframe_interval_ms=500)
    depacketizer.request_keyframe()
    assert depacketizer.keyframe_request_due(T0)
    assert not depacketizer.keyframe_request_due(T0 + 0.2)
    assert not depacketizer.keyframe_request_due(T0 + 0.49)
    assert depacketizer.keyframe_request_due(T0 + 0.5)
    assert depacketizer.stats.keyframe_requests == 2
    stream = Stream()
    push_all(depacketizer, stream.synthetic(keyframe=True))
    assert not depacketizer.keyframe_request_due(T0 + 5)


def test_reordered_packets_are_put_back_in_order():
    stream = Stream()
    packets = stream.synthetic(keyframe=True, parts=4) + stream.synthetic(keyframe=False, parts=4)
    shuffled = [packets[i] for i in (0, 2, 1, 3, 5, 4, 7, 6)]
    depacketizer = Vp8Depacketizer()
    frames = push_all(depacketizer, shuffled)
    assert [f.keyframe for f in frames] == [True, False]
    assert depacketizer.stats.lost == 0
    assert not depacketizer.keyframe_wanted


def test_duplicate_packets_are_dropped():
    stream = Stream()
    packets = stream.synthetic(keyframe=True) + stream.synthetic(keyframe=False)
    doubled = [p for packet in packets for p in (packet, packet)] + packets[:2]
    depacketizer = Vp8Depacketizer()
    frames = push_all(depacketizer, doubled)
    assert len(frames) == 2
    assert depacketizer.stats.duplicates + depacketizer.stats.late == 8


def test_sequence_numbers_wrap_around_16_bits():
    stream = Stream(seq=0xFFFE, timestamp=0xFFFFFF00)
    depacketizer = Vp8Depacketizer()
    frames = []
    for index in range(5):
        frames += push_all(depacketizer, stream.synthetic(keyframe=index == 0))
    assert len(frames) == 5
    assert frames[-1].ext_seq_last - frames[0].ext_seq_first == 14
    assert depacketizer.stats.lost == 0


def test_a_missing_packet_is_given_up_after_the_reorder_window():
    stream = Stream()
    depacketizer = Vp8Depacketizer(max_delay_ms=100)
    push_all(depacketizer, stream.synthetic(keyframe=True))
    packets = stream.synthetic(keyframe=True) + stream.synthetic(keyframe=True)
    del packets[0]  # the start of the first keyframe never comes
    frames = push_all(depacketizer, packets)
    assert frames == []  # still waiting for the missing packet
    assert depacketizer.poll(T0 + 0.1) == []
    frames = depacketizer.poll(packets[-1][4] + 0.2)
    assert [f.keyframe for f in frames] == [True]  # the second keyframe survives
    assert depacketizer.stats.lost == 1


def test_the_reorder_buffer_is_bounded_by_packets_too():
    stream = Stream()
    depacketizer = Vp8Depacketizer(max_packets=5, max_delay_ms=10_000)
    push_all(depacketizer, stream.synthetic(keyframe=True))
    stream.synthetic(keyframe=False)  # all three packets lost
    frames = []
    for _ in range(3):
        frames += push_all(depacketizer, stream.synthetic(keyframe=True))
    assert len(frames) == 3  # given up on as soon as more than 5 packets waited
    assert depacketizer.stats.lost == 3


def test_a_frame_without_a_marker_ends_when_the_timestamp_changes():
    stream = Stream()
    first = [(s, t, False, p, a) for s, t, _m, p, a in stream.synthetic(keyframe=True)]
    second = stream.synthetic(keyframe=False)
    depacketizer = Vp8Depacketizer()
    frames = push_all(depacketizer, first + second)
    assert [f.keyframe for f in frames] == [True, False]
    assert frames[0].timestamp != frames[1].timestamp


def test_padding_packets_only_advance_the_sequence():
    stream = Stream()
    depacketizer = Vp8Depacketizer()
    frames = push_all(depacketizer, stream.synthetic(keyframe=True))
    padding = (stream.seq & 0xFFFF, stream.timestamp, False, b"", stream.time)
    stream.seq += 1
    frames += push_all(depacketizer, [padding])
    frames += push_all(depacketizer, stream.synthetic(keyframe=False))
    assert [f.keyframe for f in frames] == [True, False]
    assert depacketizer.stats.lost == 0


def test_a_layer_switch_continues_with_the_new_resolution_at_its_keyframe(library):
    low, high = library.video_layers[0], library.video_layers[1]
    stream = Stream()
    depacketizer = Vp8Depacketizer()
    # The SFU forwards q for 50 frames, then switches to h at h's keyframe (frame 50), with
    # continuous sequence numbers and timestamps.
    sent = list(low.frames[:50]) + list(high.frames[50:60])
    assert high.frames[50].keyframe
    packets = [p for i, f in enumerate(sent) for p in stream.frame(vp8_payloads(f.data, i))]
    frames = push_all(depacketizer, packets)
    assert [f.data for f in frames] == [f.data for f in sent]
    sizes = [vp8_frame_size(f.data) for f in frames if f.keyframe]
    assert sizes == [(320, 180), (640, 360)]
    assert depacketizer.stats.keyframe_requests == 0


def test_a_sequence_restart_waits_for_the_next_keyframe():
    stream = Stream()
    depacketizer = Vp8Depacketizer()
    frames = push_all(depacketizer, stream.synthetic(keyframe=True))
    stream.seq += 20_000  # the publisher restarted its stream
    frames += push_all(depacketizer, stream.synthetic(keyframe=False))
    assert depacketizer.keyframe_wanted
    frames += push_all(depacketizer, stream.synthetic(keyframe=True))
    assert [f.keyframe for f in frames] == [True, True]
    assert depacketizer.stats.restarts == 1


def test_finish_releases_complete_frames_and_drops_an_unfinished_one():
    stream = Stream()
    depacketizer = Vp8Depacketizer()
    packets = stream.synthetic(keyframe=True) + stream.synthetic(keyframe=False)
    packets += stream.synthetic(keyframe=False)[:2]  # the last frame never ends
    frames = push_all(depacketizer, [packets[0], packets[2], packets[1], *packets[3:]])
    frames += depacketizer.finish()
    assert [f.keyframe for f in frames] == [True, False]
    assert depacketizer.stats.frames_dropped == 1


def opus_packets(count: int, *, seq: int = 65530, timestamp: int = 0xFFFFF000):
    return [
        ((seq + i) & 0xFFFF, (timestamp + 960 * i) & 0xFFFFFFFF, False, bytes([i]) * 3, T0 + i / 50)
        for i in range(count)
    ]


def test_a_packet_older_than_the_first_one_received_counts_as_late():
    packets = opus_packets(3)
    depacketizer = OpusDepacketizer()
    frames = push_all(depacketizer, [packets[1], packets[0], packets[2]])
    assert [f.data[0] for f in frames] == [1, 2]
    assert depacketizer.stats.late == 1


def test_opus_packets_come_out_in_order_without_duplicates_across_the_wrap():
    packets = opus_packets(10)
    mixed = [packets[i] for i in (0, 2, 1, 3, 3, 5, 4, 6, 7, 9, 8, 2)]
    depacketizer = OpusDepacketizer()
    frames = push_all(depacketizer, mixed)
    assert [f.data[0] for f in frames] == list(range(10))
    assert [f.timestamp for f in frames] == [p[1] for p in packets]
    assert depacketizer.stats.duplicates + depacketizer.stats.late == 2


def test_a_lost_opus_packet_is_just_missing():
    packets = opus_packets(6)
    del packets[2]
    depacketizer = OpusDepacketizer(max_delay_ms=100)
    frames = push_all(depacketizer, packets)
    frames += depacketizer.poll(T0 + 1)
    assert [f.data[0] for f in frames] == [0, 1, 3, 4, 5]
    assert depacketizer.stats.lost == 1
    assert not depacketizer.keyframe_request_due(T0 + 2)
