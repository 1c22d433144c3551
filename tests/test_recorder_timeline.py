"""One shared timeline: sender-report mapping, fallbacks, late joiners, wrap-around, restarts."""

from __future__ import annotations

import itertools

from recorder.timeline import Timeline, TrackClock, ntp_to_unix_us
from sfu.sender_report import ntp_from_unix

START = 1_700_000_000.0
VIDEO_RATE = 90_000
AUDIO_RATE = 48_000


class Sender:
    """One publisher's track: RTP timestamps from capture times, sender reports from its clock."""

    def __init__(
        self,
        clock: TrackClock,
        rate: int,
        *,
        first_ts: int = 1000,
        clock_offset_s: float = 0.0,
        delay_s: float = 0.010,
    ) -> None:
        self.clock = clock
        self.rate = rate
        self.first_ts = first_ts
        self.clock_offset_s = clock_offset_s
        self.delay_s = delay_s

    def ts(self, capture_s: float) -> int:
        return (self.first_ts + round(capture_s * self.rate)) & 0xFFFFFFFF

    def report(self, capture_s: float) -> bool:
        ntp = ntp_from_unix(START + capture_s + self.clock_offset_s)
        return self.clock.on_sender_report(ntp, self.ts(capture_s), START + capture_s + 0.001)

    def frame(self, capture_s: float, delay_s: float | None = None) -> int:
        arrival = START + capture_s + (self.delay_s if delay_s is None else delay_s)
        return self.clock.map(self.ts(capture_s), arrival)


def test_ntp_times_convert_to_unix_microseconds():
    assert ntp_to_unix_us(ntp_from_unix(START + 0.25)) == round((START + 0.25) * 1e6)


def test_before_a_sender_report_a_track_starts_at_its_arrival_and_follows_its_rtp_clock():
    timeline = Timeline(START)
    audio = Sender(timeline.track("a", AUDIO_RATE, "p"), AUDIO_RATE, delay_s=0.030)
    assert audio.frame(1.0) == 1_030_000
    assert audio.frame(1.02, delay_s=0.090) == 1_050_000  # jitter does not move it
    assert audio.clock.mapping == "arrival"


def test_rtp_timestamps_wrap_around_32_bits_without_a_jump():
    timeline = Timeline(START)
    video = Sender(
        timeline.track("v", VIDEO_RATE, "p", video=True), VIDEO_RATE, first_ts=0xFFFF0000
    )
    times = [video.frame(i * 0.04) for i in range(30)]  # passes 2**32 after ~0.73 s
    assert video.ts(0) > video.ts(29 * 0.04)
    assert [b - a for a, b in itertools.pairwise(times)] == [40_000] * 29
    assert video.clock.stats.restarts == 0


def test_sender_reports_keep_audio_and_video_of_one_participant_in_sync():
    timeline = Timeline(START)
    audio = Sender(timeline.track("p/audio", AUDIO_RATE, "p"), AUDIO_RATE, delay_s=0.020)
    # Video leaves later than audio captured at the same moment (bigger frames, pacing).
    video = Sender(
        timeline.track("p/video", VIDEO_RATE, "p", video=True),
        VIDEO_RATE,
        first_ts=777,
        delay_s=0.120,
    )
    assert audio.report(0.0) and video.report(0.0)
    audio_times = {round(t * 1000): audio.frame(t) for t in (i * 0.02 for i in range(100))}
    video_times = {round(t * 1000): video.frame(t) for t in (i * 0.04 for i in range(50))}
    for capture_ms, video_us in video_times.items():
        assert abs(video_us - audio_times[capture_ms]) <= 1, capture_ms
    # Both sit at their capture time plus the smallest network delay seen.
    assert audio_times[1000] == 1_020_000
    assert audio.clock.mapping == video.clock.mapping == "sender_report"


def test_a_participant_whose_clock_is_off_is_placed_by_arrival_not_by_its_clock():
    timeline = Timeline(START)
    ours = Sender(timeline.track("a/audio", AUDIO_RATE, "a"), AUDIO_RATE)
    theirs = Sender(
        timeline.track("b/audio", AUDIO_RATE, "b"), AUDIO_RATE, clock_offset_s=-3.5, first_ts=9
    )
    assert ours.report(0.0) and theirs.report(0.0)
    for i in range(50):
        a, b = ours.frame(i * 0.02), theirs.frame(i * 0.02)
        assert a == b  # same capture moment, same delay: the same place on the timeline


def test_a_late_joiner_starts_at_its_real_offset_on_the_timeline():
    timeline = Timeline(START)
    first = Sender(timeline.track("a/audio", AUDIO_RATE, "a"), AUDIO_RATE)
    late = Sender(timeline.track("b/audio", AUDIO_RATE, "b"), AUDIO_RATE, first_ts=4242)
    first.report(0.0)
    for i in range(5):
        first.frame(i * 0.02)
    late.report(12.0)
    assert late.frame(12.0) == 12_010_000  # a gap of 12 s, not a track starting at 0
    assert late.clock.stats.first_us == 12_010_000


def test_a_muted_track_resumes_in_its_place():
    timeline = Timeline(START)
    audio = Sender(timeline.track("a", AUDIO_RATE, "p"), AUDIO_RATE)
    audio.report(0.0)
    audio.frame(0.0)
    assert audio.frame(30.0) == 30_010_000
    assert audio.clock.stats.restarts == 0


def test_the_switch_to_a_sender_report_never_goes_back_and_audio_catches_up():
    timeline = Timeline(START)
    audio = Sender(timeline.track("p/audio", AUDIO_RATE, "p"), AUDIO_RATE, delay_s=0.060)
    times = [audio.frame(i * 0.02) for i in range(10)]  # arrival-anchored: 60 ms late
    # The sender report arrives; the least delayed frames show the real delay is 10 ms.
    audio.report(0.2)
    times += [audio.frame(0.2 + i * 0.02, delay_s=0.010) for i in range(30)]
    steps = [b - a for a, b in itertools.pairwise(times)]
    assert min(steps) >= 15_000  # squeezed by at most 25 % of a 20 ms frame
    assert times[-1] == round((0.2 + 29 * 0.02 + 0.010) * 1e6)  # caught up


def test_video_is_not_squeezed_onto_the_frame_grid_when_its_mapping_steps_back():
    timeline = Timeline(START)
    video = Sender(
        timeline.track("p/video", VIDEO_RATE, "p", video=True), VIDEO_RATE, delay_s=0.050
    )
    times = [video.frame(i * 0.04) for i in range(5)]
    video.report(0.2)
    times += [video.frame(0.2 + i * 0.04, delay_s=0.020) for i in range(10)]
    steps = [b - a for a, b in itertools.pairwise(times)]
    assert min(steps) == 40_000  # never two frames closer than the frame rate
    # A frame that comes late (one skipped by the camera) lets the video catch up.
    times.append(video.frame(0.2 + 11 * 0.04, delay_s=0.020))
    assert times[-1] - times[-2] == 50_000  # 80 ms of RTP time minus the 30 ms it lagged
    assert times[-1] == round((0.2 + 11 * 0.04 + 0.020) * 1e6)


def test_a_timestamp_jump_re_anchors_the_track_at_its_arrival():
    timeline = Timeline(START)
    video = Sender(timeline.track("v", VIDEO_RATE, "p", video=True), VIDEO_RATE)
    video.report(0.0)
    before = [video.frame(i * 0.04) for i in range(10)]
    video.first_ts = 0x7654_3210  # the publisher restarted with a new random timestamp
    after = [video.frame(5.0 + i * 0.04) for i in range(10)]
    assert video.clock.stats.restarts == 1
    assert after[0] == 5_010_000 > before[-1]
    assert [b - a for a, b in itertools.pairwise(after)] == [40_000] * 9
    assert video.clock.mapping == "arrival"  # until a sender report for the new timestamps


def test_a_sender_report_from_before_a_restart_is_ignored():
    timeline = Timeline(START)
    video = Sender(timeline.track("v", VIDEO_RATE, "p", video=True), VIDEO_RATE)
    video.frame(0.0)
    old_ntp = ntp_from_unix(START + 0.5)
    assert not video.clock.on_sender_report(old_ntp, 0x1234_5678, START + 0.5)
    assert video.clock.stats.rejected_sender_reports == 1
    assert video.report(0.5)


def test_a_new_ssrc_for_the_same_track_re_anchors_and_stays_increasing():
    timeline = Timeline(START)
    clock = timeline.track("p/audio", AUDIO_RATE, "p")
    audio = Sender(clock, AUDIO_RATE)
    audio.report(0.0)
    last = [audio.frame(i * 0.02) for i in range(50)][-1]
    clock.restart()
    again = Sender(timeline.track("p/audio", AUDIO_RATE, "p"), AUDIO_RATE, first_ts=99)
    assert again.clock is clock
    first_after = again.frame(0.5, delay_s=0.400)  # placed before the last frame written
    assert first_after == last + 1
    assert again.frame(2.0) == 2_400_000  # anchored at the first arrival, until a report
    assert clock.mapping == "arrival"
    assert clock.stats.restarts == 1
    assert clock.stats.nudged == 1


def test_frames_before_the_recording_started_are_placed_at_zero():
    timeline = Timeline(START)
    audio = Sender(timeline.track("a", AUDIO_RATE, "p"), AUDIO_RATE)
    assert audio.frame(-0.5) == 0
    assert audio.frame(-0.48) == 1
    assert audio.clock.stats.clamped == 2
