import random
import struct

import pytest

from sfu.rtcp import RtcpError, parse_rtcp
from sfu.twcc import (
    MAX_SPAN,
    TwccFeedback,
    TwccRecorder,
    encode_status_chunks,
    parse_twcc,
)

T0 = 1_000_000_000  # µs; reference time 15625 (x 64 ms), far from the 24-bit wrap


def framed(packet: bytes) -> TwccFeedback:
    """Parse one built packet after checking its RTCP framing."""
    assert len(packet) % 4 == 0
    first, packet_type, length = struct.unpack_from("!BBH", packet)
    assert first >> 6 == 2 and first & 0x1F == 15 and packet_type == 205
    assert 4 * (length + 1) == len(packet)
    if first & 0x20:
        padding = packet[-1]
        assert 1 <= padding <= 3
        assert packet[-padding:-1] == bytes(padding - 1)
    assert list(parse_rtcp(packet)) == []  # the general parser skips it without complaint
    return parse_twcc(packet)


def build(recorder: TwccRecorder, sender_ssrc: int = 1, media_ssrc: int = 2) -> list[TwccFeedback]:
    return [framed(packet) for packet in recorder.build_feedback(sender_ssrc, media_ssrc)]


def statuses(feedbacks: list[TwccFeedback]) -> list[tuple[int, int | None]]:
    """The reported (seq, arrival) pairs, checking that the messages follow on one another."""
    result: list[tuple[int, int | None]] = []
    for previous, feedback in zip([None, *feedbacks], feedbacks, strict=False):
        if previous is not None:
            assert feedback.base_seq == (previous.base_seq + len(previous.packets)) & 0xFFFF
            assert feedback.fb_count == (previous.fb_count + 1) & 0xFF
        assert feedback.packets[0][0] == feedback.base_seq
        result.extend(feedback.packets)
    return result


def assert_arrivals(reported: list[tuple[int, int | None]], expected: list[tuple[int, int | None]]):
    assert [seq for seq, _ in reported] == [seq for seq, _ in expected]
    assert [t is None for _, t in reported] == [t is None for _, t in expected]
    for (seq, got), (_, want) in zip(reported, expected, strict=True):
        if want is not None:
            assert got is not None and abs(got - want) <= 125, (seq, got, want)


def test_a_tiny_feedback_is_encoded_byte_for_byte():
    recorder = TwccRecorder()
    recorder.record(10, 129_000)  # reference floor(129000 / 64000) = 2 -> 128000 µs
    recorder.record(12, 229_000)  # 11 is lost
    recorder.record(13, 228_000)  # arrived 1 ms before 12
    packets = recorder.build_feedback(1, 2)
    # Deltas in 250 µs ticks: 10: (129000 - 128000) / 250 = 4 (small, status 1);
    # 12: (229000 - 129000) / 250 = 400 = 0x0190 (large, status 2);
    # 13: (228000 - 229000) / 250 = -4 = 0xFFFC (negative, status 2).
    # Statuses 1 0 2 2 in one two-bit vector chunk: 1 1 | 01 00 10 10 | 00 00 00 = 0xD280.
    # 20 header bytes + 2 chunk bytes + 1 + 2 + 2 delta bytes = 27, one byte of padding
    # (count 1, P bit set): 28 bytes, length 28 / 4 - 1 = 6.
    assert packets == [
        bytes.fromhex(
            "af cd 0006"  # V=2, P=1, FMT=15, PT=205, length 6
            "00000001 00000002"  # sender SSRC, media SSRC
            "000a 0004"  # base sequence number 10, status count 4
            "000002 00"  # reference time 2, feedback packet count 0
            "d280"  # two-bit status vector chunk
            "04 0190 fffc"  # receive deltas
            "01"  # padding count
        )
    ]
    assert parse_twcc(packets[0]) == TwccFeedback(
        1, 2, 10, 2, 0, ((10, 129_000), (11, None), (12, 229_000), (13, 228_000))
    )


def test_a_hand_made_feedback_with_run_length_and_one_bit_chunks_parses():
    # Base 65534, 15 statuses, reference 0xFFFFFF = -1 (x 64 ms = -64000 µs), fb count 7.
    # Chunk 0x2005 = 0 01 0000000000101: a run of 5 received with small deltas: 65534..2.
    # Chunk 0xA610 = 1 0 10011000010000: one-bit vector, of which the remaining 10 are used:
    # 3 received, 4 5 lost, 6 7 received, 8..11 lost, 12 received (the last 4 bits unused).
    # Nine small deltas 0 1 2 3 4 5 6 7 255, then three bytes of padding.
    data = bytes.fromhex(
        "af cd 0008 00000005 00000006 fffe 000f ffffff 07 2005 a610 0001020304050607ff 000003"
    )
    times = []
    now = -64_000
    for ticks in (0, 1, 2, 3, 4, 5, 6, 7, 255):
        now += ticks * 250
        times.append(now)
    received = [65534, 65535, 0, 1, 2, 3, 6, 7, 12]
    expected = dict(zip(received, times, strict=True))
    feedback = parse_twcc(data)
    assert (feedback.sender_ssrc, feedback.media_ssrc) == (5, 6)
    assert (feedback.base_seq, feedback.reference_time_64ms, feedback.fb_count) == (65534, -1, 7)
    assert feedback.packets == tuple(
        (seq & 0xFFFF, expected.get(seq & 0xFFFF)) for seq in range(65534, 65534 + 15)
    )
    assert feedback.packets[-1] == (12, 6750)


def test_malformed_feedback_is_rejected():
    good = TwccRecorder()
    good.record(1, T0)
    packet = good.build_feedback(1, 2)[0]
    with pytest.raises(RtcpError):
        parse_twcc(packet[:-4])  # shorter than its length field
    with pytest.raises(RtcpError):
        parse_twcc(b"\x81" + packet[1:])  # FMT 1 is a NACK
    with pytest.raises(RtcpError):
        # two-bit vector with the reserved symbol 3 as the only status
        parse_twcc(bytes.fromhex("8fcd0005 00000001 00000002 0001 0001 00000000 f000 0000"))


def test_nothing_new_gives_no_feedback():
    recorder = TwccRecorder()
    assert recorder.build_feedback(1, 2) == []
    recorder.record(5, T0)
    assert len(recorder.build_feedback(1, 2)) == 1
    assert recorder.build_feedback(1, 2) == []


def test_the_reference_time_is_the_floor_of_the_first_received_packet_in_64_ms_units():
    recorder = TwccRecorder()
    recorder.record(7, 64_000 * 1000 + 63_999)
    recorder.record(8, 64_000 * 999)  # earlier, but later in sequence: not the reference
    [feedback] = build(recorder)
    assert feedback.reference_time_64ms == 1000
    assert_arrivals(feedback.packets, [(7, 64_000 * 1000 + 63_999), (8, 64_000 * 999)])


def test_the_reference_time_wraps_at_24_bits():
    recorder = TwccRecorder()
    recorder.record(1, ((1 << 24) + 3) * 64_000 + 500)
    [packet] = recorder.build_feedback(1, 2)
    assert packet[16:19] == b"\x00\x00\x03"
    assert framed(packet).packets == ((1, 3 * 64_000 + 500),)


def test_losses_are_reported_and_a_feedback_ends_with_the_newest_received_packet():
    recorder = TwccRecorder()
    for seq in (100, 101, 104, 106):
        recorder.record(seq, T0 + seq * 1000)
    feedbacks = build(recorder)
    assert statuses(feedbacks) == [
        (100, T0 + 100_000),
        (101, T0 + 101_000),
        (102, None),
        (103, None),
        (104, T0 + 104_000),
        (105, None),
        (106, T0 + 106_000),
    ]


def test_the_next_feedback_continues_where_the_previous_one_ended():
    recorder = TwccRecorder()
    recorder.record(1, T0)
    [first] = build(recorder)
    recorder.record(5, T0 + 1000)
    [second] = build(recorder)
    assert (first.base_seq, second.base_seq) == (1, 2)
    assert second.fb_count == first.fb_count + 1
    assert second.packets == ((2, None), (3, None), (4, None), (5, T0 + 1000))


def test_a_late_packet_already_reported_is_not_reported_again():
    recorder = TwccRecorder()
    recorder.record(1, T0)
    recorder.record(3, T0 + 1000)
    assert statuses(build(recorder)) == [(1, T0), (2, None), (3, T0 + 1000)]
    recorder.record(2, T0 + 2000)  # reported lost already
    recorder.record(3, T0 + 3000)  # reported received already
    assert recorder.build_feedback(1, 2) == []
    recorder.record(4, T0 + 4000)
    assert statuses(build(recorder)) == [(4, T0 + 4000)]


def test_a_reordered_packet_before_the_first_feedback_moves_its_base_back():
    recorder = TwccRecorder()
    recorder.record(50, T0)
    recorder.record(48, T0 + 1000)
    assert statuses(build(recorder)) == [(48, T0 + 1000), (49, None), (50, T0)]


def test_duplicates_are_reported_once_with_the_first_arrival():
    recorder = TwccRecorder()
    recorder.record(9, T0)
    recorder.record(10, T0 + 1000)
    recorder.record(9, T0 + 5000)
    recorder.record(10, T0 + 6000)
    assert statuses(build(recorder)) == [(9, T0), (10, T0 + 1000)]


def test_sequence_numbers_wrap_around():
    recorder = TwccRecorder()
    recorder.record(65534, T0)
    recorder.record(0, T0 + 2000)
    recorder.record(65535, T0 + 1000)  # reordered across the wrap
    recorder.record(2, T0 + 3000)
    [feedback] = build(recorder)
    assert feedback.base_seq == 65534
    assert feedback.packets == (
        (65534, T0),
        (65535, T0 + 1000),
        (0, T0 + 2000),
        (1, None),
        (2, T0 + 3000),
    )
    recorder.record(3, T0 + 4000)
    recorder.record(65535, T0 + 5000)  # from before the previous feedback: dropped
    assert statuses(build(recorder)) == [(3, T0 + 4000)]


def test_a_later_packet_that_arrived_earlier_gets_a_negative_delta():
    recorder = TwccRecorder()
    recorder.record(2, T0 + 10_000)
    recorder.record(1, T0 + 30_000)
    [packet] = recorder.build_feedback(1, 2)
    # T0 is a multiple of 64 ms, so 1: 30000 µs / 250 = 120 ticks (small, status 1);
    # 2: -20000 µs / 250 = -80 ticks (large, status 2). Statuses 1 2 in a two-bit vector:
    # 1 1 | 01 10 00 00 00 00 00 = 0xD800. 20 + 2 + 1 + 2 = 25 bytes, so 3 bytes of padding.
    assert packet[20:] == bytes.fromhex("d800 78 ffb0 000003")
    assert framed(packet).packets == ((1, T0 + 30_000), (2, T0 + 10_000))


def test_large_gaps_in_time_use_large_deltas_up_to_eight_seconds():
    recorder = TwccRecorder()
    recorder.record(1, T0)
    recorder.record(2, T0 + 300)  # rounds to 1 tick
    recorder.record(3, T0 + 300 + 8_000_000)  # 32000 ticks: still one feedback
    [feedback] = build(recorder)
    assert_arrivals(list(feedback.packets), [(1, T0), (2, T0 + 300), (3, T0 + 300 + 8_000_000)])


@pytest.mark.parametrize("step_us", [9_000_000, -9_000_000])
def test_a_delta_too_large_for_16_bits_starts_a_new_feedback_with_a_new_reference(step_us):
    recorder = TwccRecorder()
    recorder.record(1, T0)
    recorder.record(2, T0 + 1000)
    recorder.record(3, T0 + step_us)
    feedbacks = build(recorder)
    assert [f.base_seq for f in feedbacks] == [1, 3]
    assert feedbacks[1].reference_time_64ms == (T0 + step_us) // 64_000
    assert_arrivals(statuses(feedbacks), [(1, T0), (2, T0 + 1000), (3, T0 + step_us)])


def test_a_feedback_is_split_at_the_most_statuses_per_packet():
    recorder = TwccRecorder(max_packets_per_feedback=10)
    for seq in range(25):
        if seq not in (10, 11):  # the second packet starts with two losses
            recorder.record(seq, T0 + 100_000 * seq)
    feedbacks = build(recorder)
    assert [len(f.packets) for f in feedbacks] == [10, 10, 5]
    assert [f.fb_count for f in feedbacks] == [0, 1, 2]
    # each packet's reference time comes from its own first received packet
    assert [f.reference_time_64ms for f in feedbacks] == [
        (T0 + 100_000 * seq) // 64_000 for seq in (0, 12, 20)
    ]
    assert_arrivals(
        statuses(feedbacks),
        [(seq, None if seq in (10, 11) else T0 + 100_000 * seq) for seq in range(25)],
    )


def test_a_split_packet_of_only_losses_takes_the_next_reference_time():
    recorder = TwccRecorder(max_packets_per_feedback=4)
    recorder.record(0, T0)
    recorder.record(9, T0 + 640_000)
    feedbacks = build(recorder)
    assert [len(f.packets) for f in feedbacks] == [4, 4, 2]
    assert feedbacks[1].packets == ((4, None), (5, None), (6, None), (7, None))
    assert feedbacks[1].reference_time_64ms == feedbacks[2].reference_time_64ms == T0 // 64_000 + 10


def test_the_feedback_packet_count_wraps_at_8_bits():
    recorder = TwccRecorder()
    counts = []
    for seq in range(300):
        recorder.record(seq, T0 + seq)
        counts.extend(f.fb_count for f in build(recorder))
    assert counts == [seq & 0xFF for seq in range(300)]


def test_long_runs_are_run_length_encoded():
    recorder = TwccRecorder(max_packets_per_feedback=10_000)
    for seq in range(1000):
        recorder.record(seq, T0 + 1000 * seq)  # 4 ticks each: small deltas
    recorder.record(6000, T0 + 2_000_000)  # 5000 lost in between
    [packet] = recorder.build_feedback(1, 2)
    # one run of 1000 received, one run of 5000 lost, one run of 1 received: 3 chunks
    assert len(packet) <= 20 + 3 * 2 + 1000 + 2 + 3
    feedback = framed(packet)
    assert len(feedback.packets) == 6001
    assert sum(t is not None for _, t in feedback.packets) == 1001


def test_mixed_statuses_use_compact_vector_chunks():
    assert encode_status_chunks([1, 0] * 7) == [0b1010_1010_1010_1010]
    assert encode_status_chunks([2, 0, 1, 2, 0, 1, 2]) == [0b11_10_00_01_10_00_01_10]
    assert encode_status_chunks([1] * 20 + [0]) == [0x2000 | 20, 1]
    assert encode_status_chunks([0] * 9000) == [0x1FFF, 9000 - 0x1FFF]
    assert encode_status_chunks([2] * 7 + [1]) == [0x4007, 0x2001]


def test_a_gap_wider_than_the_span_starts_over_from_the_newest_packet():
    recorder = TwccRecorder()
    recorder.record(0, T0)
    recorder.record(20_000, T0 + 1000)
    recorder.record(40_000, T0 + 2000)  # 40001 sequence numbers would be too many
    assert 40_000 >= MAX_SPAN
    assert statuses(build(recorder)) == [(40_000, T0 + 2000)]
    recorder.record(40_001, T0 + 3000)
    assert statuses(build(recorder)) == [(40_001, T0 + 3000)]


@pytest.mark.parametrize("seed", range(40))
def test_random_arrivals_round_trip(seed):
    rng = random.Random(seed)
    max_packets = rng.choice([7, 13, 64, 500])
    recorder = TwccRecorder(max_packets_per_feedback=max_packets)
    first_ext = 65536 - rng.randrange(1, 2000)  # the wrap happens during the run
    send_us = T0 + rng.randrange(0, 64_000)

    events: list[tuple[int, int]] = []  # (arrival, ext seq)
    for ext in range(first_ext, first_ext + rng.randrange(500, 3000)):
        roll = rng.random()
        send_us += rng.choice([0, 0, 100, 1000, 5000, 20_000])
        if roll < 0.01:
            send_us += rng.choice([300_000, 9_000_000])  # stalls, some too long for a delta
        if roll < 0.1:
            continue  # lost
        arrival = send_us + rng.randrange(0, 30_000)  # jitter reorders packets
        events.append((arrival, ext))
        if rng.random() < 0.03:
            events.append((arrival + rng.randrange(0, 50_000), ext))  # duplicate
    events.sort()

    # Model: a packet counts if its number is past what feedback already covered.
    pending: dict[int, int] = {}
    covered_up_to: int | None = None
    reported: list[tuple[int, int | None]] = []
    expected: list[tuple[int, int | None]] = []

    def flush() -> None:
        nonlocal covered_up_to
        feedbacks = build(recorder)
        if not pending:
            assert feedbacks == []
            return
        for feedback in feedbacks:
            assert 1 <= len(feedback.packets) <= max_packets
            received = [t for _, t in feedback.packets if t is not None]
            reference_us = feedback.reference_time_64ms * 64_000
            assert received == [] or 0 <= received[0] - reference_us < 64_000 + 125
        reported.extend(statuses(feedbacks))
        start = min(pending) if covered_up_to is None else covered_up_to + 1
        end = max(pending)
        expected.extend((ext & 0xFFFF, pending.get(ext)) for ext in range(start, end + 1))
        covered_up_to = end
        pending.clear()

    for arrival, ext in events:
        recorder.record(ext & 0xFFFF, arrival)
        if (covered_up_to is None or ext > covered_up_to) and ext not in pending:
            pending[ext] = arrival
        if rng.random() < 0.02:
            flush()
    flush()
    assert_arrivals(reported, expected)
    assert len(expected) > 400
