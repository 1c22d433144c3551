from loadtest.stats import StreamStats, percentile


def test_loss_counts_gaps_but_not_duplicates_or_reordering_across_the_wrap():
    stats = StreamStats(90000, True)
    for seq in (65534, 65535, 2, 1, 1, 3):
        stats.packet(seq, 0, False, False, 1.0)
    assert stats.expected == 6 and stats.packets == 5 and stats.lost == 1
    assert stats.duplicates == 1


def test_delay_comes_from_the_forwarded_sender_report_mapping():
    stats = StreamStats(48000, False)
    stats.sender_report(ntp_seconds=100.0, rtp_timestamp=480000)
    stats.packet(1, 480000 + 4800, False, False, arrival_s=100.105)  # sent at 100.1
    assert abs(stats.delays_ms[0] - 5.0) < 1e-6


def test_a_gap_between_complete_frames_counts_as_a_freeze():
    stats = StreamStats(90000, True)
    for index, arrival in enumerate((0.0, 0.04, 0.08, 0.5, 0.54)):
        stats.packet(index, index * 3600, True, index == 0, arrival)
    assert stats.frames == 5 and stats.freezes == 1 and round(stats.freeze_ms) == 420
    assert stats.keyframes == 1


def test_percentiles():
    assert percentile([], 0.5) is None
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert percentile(list(map(float, range(101))), 0.99) == 99.0
