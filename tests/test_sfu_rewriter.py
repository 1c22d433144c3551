from sfu.rewriter import RtpRewriter

SOURCE_A = 1
SOURCE_B = 2


def test_first_packet_gets_the_initial_sequence_number_and_timestamp():
    rewriter = RtpRewriter(90000, initial_seq=500, initial_timestamp=1000)
    assert rewriter.rewrite(SOURCE_A, 70000, 123456, now_ms=0) == (500, 1000)
    assert rewriter.rewrite(SOURCE_A, 70001, 126456, now_ms=33) == (501, 4000)


def test_outgoing_numbers_wrap_around_16_and_32_bits():
    rewriter = RtpRewriter(90000, initial_seq=65535, initial_timestamp=0xFFFFFFFF)
    assert rewriter.rewrite(SOURCE_A, 10, 0, now_ms=0) == (65535, 0xFFFFFFFF)
    assert rewriter.rewrite(SOURCE_A, 11, 3000, now_ms=33) == (0, 2999)


def test_losses_upstream_stay_gaps_downstream_so_the_subscriber_can_nack():
    rewriter = RtpRewriter(90000, initial_seq=0, initial_timestamp=0)
    rewriter.rewrite(SOURCE_A, 100, 0, 0)
    assert rewriter.rewrite(SOURCE_A, 103, 0, 0) == (3, 0)
    assert rewriter.rewrite(SOURCE_A, 101, 0, 0) == (1, 0)  # late packet keeps its place


def test_a_publisher_restart_continues_the_numbering_without_a_jump():
    rewriter = RtpRewriter(90000, initial_seq=10, initial_timestamp=1000)
    rewriter.rewrite(SOURCE_A, 5000, 900000, now_ms=1000)
    rewriter.rewrite(SOURCE_A, 5001, 903000, now_ms=1033)
    # The publisher restarts with other numbers, 500 ms later.
    seq, timestamp = rewriter.rewrite(SOURCE_B, 77, 42, now_ms=1533) or (0, 0)
    assert seq == 12
    assert timestamp == 1000 + 3000 + 45000  # 500 ms at 90 kHz after the last one
    assert rewriter.rewrite(SOURCE_B, 78, 3042, now_ms=1566) == (13, 1000 + 3000 + 45000 + 3000)


def test_packets_from_before_a_switch_are_dropped():
    rewriter = RtpRewriter(90000, initial_seq=0, initial_timestamp=0)
    rewriter.rewrite(SOURCE_A, 100, 0, 0)
    rewriter.rewrite(SOURCE_B, 200, 0, 10)
    assert rewriter.rewrite(SOURCE_B, 199, 0, 20) is None


def test_skipped_packets_leave_no_gap():
    rewriter = RtpRewriter(48000, initial_seq=0, initial_timestamp=0)
    rewriter.rewrite(SOURCE_A, 100, 0, 0)
    rewriter.skip(SOURCE_A, 101)  # padding
    assert rewriter.rewrite(SOURCE_A, 102, 960, 20) == (1, 960)


def test_nacked_sequence_numbers_map_back_to_the_incoming_packet_across_segments():
    rewriter = RtpRewriter(90000, initial_seq=65534, initial_timestamp=0)
    rewriter.rewrite(SOURCE_A, 100, 0, 0)  # out 65534
    rewriter.rewrite(SOURCE_A, 101, 3000, 33)  # out 65535
    rewriter.skip(SOURCE_A, 102)
    rewriter.rewrite(SOURCE_A, 103, 6000, 66)  # out 0
    rewriter.rewrite(SOURCE_B, 9, 50, 100)  # out 1
    assert rewriter.source_for_out_seq(65534) == (SOURCE_A, 100, 0 - 0)
    assert rewriter.source_for_out_seq(0)[:2] == (SOURCE_A, 103)
    assert rewriter.source_for_out_seq(1)[:2] == (SOURCE_B, 9)
    assert rewriter.source_for_out_seq(2) is None  # not sent yet
    assert rewriter.source_for_out_seq(40000) is None  # far in the past


def test_nack_mapping_returns_the_timestamp_offset_of_the_segment():
    rewriter = RtpRewriter(90000, initial_seq=0, initial_timestamp=500)
    rewriter.rewrite(SOURCE_A, 100, 1000, 0)
    _, _, ts_offset = rewriter.source_for_out_seq(0) or (0, 0, 0)
    assert (1000 + ts_offset) % (1 << 32) == 500


def test_a_layer_switch_soon_after_the_last_frame_still_advances_a_whole_frame_step():
    rewriter = RtpRewriter(90000, initial_seq=0, initial_timestamp=0)
    # 20 frames per second: a step of 4500.
    rewriter.rewrite(SOURCE_A, 100, 10_000, now_ms=1000)
    rewriter.rewrite(SOURCE_A, 101, 14_500, now_ms=1050)
    rewriter.rewrite(SOURCE_A, 102, 14_500, now_ms=1051)  # a second packet of that frame
    # The new layer's keyframe arrives 8 ms after the old layer's last packet.
    _, timestamp = rewriter.rewrite(SOURCE_B, 500, 777, now_ms=1059) or (0, 0)
    assert timestamp == 4500 + 4500  # one frame after the last, not 8 ms after it
    # A longer pause keeps its real length.
    rewriter.rewrite(SOURCE_B, 501, 777 + 4500, now_ms=1109)
    _, later = rewriter.rewrite(SOURCE_A, 103, 90_000, now_ms=1609) or (0, 0)
    assert later == 9000 + 4500 + 45_000


def test_a_gap_in_timestamps_is_not_taken_for_a_frame_step():
    rewriter = RtpRewriter(48000, initial_seq=0, initial_timestamp=0)
    rewriter.rewrite(SOURCE_A, 1, 0, now_ms=0)
    rewriter.rewrite(SOURCE_A, 2, 960, now_ms=20)
    rewriter.rewrite(SOURCE_A, 3, 960 + 48_000, now_ms=1020)  # a second of silence skipped
    _, timestamp = rewriter.rewrite(SOURCE_B, 9, 5, now_ms=1025) or (0, 0)
    assert timestamp == 960 + 48_000 + 960  # the 20 ms step, not the one-second gap
