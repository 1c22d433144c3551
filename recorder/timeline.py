"""One shared timeline for every track of a recording, in microseconds from its start.

Each track's 32-bit RTP timestamps are unwrapped into extended (`ext_`) timestamps and placed on
the timeline as follows.

Sender reports. A publisher's RTCP sender reports pair its NTP clock with each track's RTP clock;
its audio and video share that NTP clock, so mapping both through their sender reports keeps them
in sync (lip sync). The publisher's NTP clock is *not* assumed to agree with ours (a phone's clock
may be seconds off), so every publisher is a clock domain whose offset to our wall clock is
estimated from arrivals: offset = the smallest (arrival time − sender time) seen over the last
`offset_window_ms` (the sample with the least network delay). All tracks of a domain share the
offset, which keeps them in sync with each other; participants are placed against each other by
their arrival times. The offset follows the window minimum when it drops by more than
`offset_lower_ms` or rises by more than `offset_raise_ms` (clock drift), so ordinary jitter never
moves a track.

Before the first sender report of a track its first mapped frame is anchored at its arrival time
and later frames follow the RTP clock from there. When the sender report arrives the track
switches to it; the step this causes is the first frame's network delay minus the smallest one
(milliseconds).

Gaps, not shifts. A participant who joins late starts at its real offset on the timeline; one
who leaves early just ends. A muted track whose timestamps continue with the wall clock resumes
in its right place.

Restarts. A timestamp jump that disagrees with the arrival times by more than
`restart_threshold_ms` (a publisher restarted its stream with a new random timestamp) re-anchors
the track at the arrival time and forgets its sender report until a new one arrives; sender
reports that do not fit the current timestamps (left from before a restart) are ignored. A new
SSRC for the same track calls `TrackClock.restart()`, which does the same.

Smooth corrections. When the mapping changes under a running track (the switch from arrival to
sender report, a new sender report, a new domain offset) the output never jumps back. A step
forward is taken at once (a short gap). A step back is taken up as a correction that shrinks
frame by frame: for audio by up to `slew_ratio` (25 %) of each frame's duration; for video only
by what a frame step exceeds the smallest frame step seen so far (a dropped or late frame), since
squeezing a regular frame sequence makes two frames share a slot of the frame-rate grid that
players and `ffmpeg` put video on (they report non-monotonic timestamps). Video that would lag
more than `max_video_lag_ms` behind its mapping is squeezed like audio, because lip sync then
matters more.

Strictly increasing output. Every track's output timestamps strictly increase: a time at or
before the previous one (after a restart, or frames sharing a timestamp) is nudged to the previous
time + 1 µs
and counted in `nudged`; a time before the recording's start becomes 0. Frames are never
dropped here.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from sfu.sender_report import NTP_EPOCH_OFFSET

__all__ = ["ClockDomain", "Timeline", "TrackClock", "TrackClockStats", "ntp_to_unix_us"]

TS_MODULO = 1 << 32
TS_HALF = 1 << 31
US_PER_S = 1_000_000


def ntp_to_unix_us(ntp: int) -> int:
    """64-bit NTP time → microseconds since the Unix epoch."""
    return ((ntp >> 32) - NTP_EPOCH_OFFSET) * US_PER_S + (((ntp & 0xFFFFFFFF) * US_PER_S) >> 32)


def _signed32(delta: int) -> int:
    delta &= TS_MODULO - 1
    return delta - TS_MODULO if delta >= TS_HALF else delta


class ClockDomain:
    """One sender clock (a publisher's NTP clock) and its estimated offset to ours."""

    __slots__ = ("_window", "lower_us", "name", "offset_us", "raise_us", "window_us")

    def __init__(self, name: str, *, window_ms: int, lower_ms: int, raise_ms: int) -> None:
        self.name = name
        self.window_us = window_ms * 1000
        self.lower_us = lower_ms * 1000
        self.raise_us = raise_ms * 1000
        self.offset_us: int | None = None
        self._window: deque[tuple[int, int]] = deque()  # (arrival µs, sample), samples rising

    def add_sample(self, arrival_us: int, sample_us: int) -> int:
        """Record arrival − sender time of one frame; returns the offset to use."""
        window = self._window
        while window and window[-1][1] >= sample_us:
            window.pop()
        window.append((arrival_us, sample_us))
        while window[0][0] < arrival_us - self.window_us:
            window.popleft()
        minimum = window[0][1]
        offset = self.offset_us
        if offset is None or minimum < offset - self.lower_us or minimum > offset + self.raise_us:
            self.offset_us = offset = minimum
        return offset


@dataclass(slots=True)
class TrackClockStats:
    frames: int = 0
    sender_reports: int = 0
    rejected_sender_reports: int = 0
    restarts: int = 0
    slewed: int = 0  # backward mapping steps taken up smoothly
    jumped: int = 0  # forward mapping steps taken at once
    nudged: int = 0
    clamped: int = 0  # times before the recording's start, set to 0
    first_us: int | None = None
    last_us: int | None = None


class TrackClock:
    """The mapping of one track's RTP timestamps onto the shared timeline."""

    def __init__(
        self,
        timeline: Timeline,
        key: str,
        clock_rate: int,
        domain: ClockDomain,
        *,
        video: bool = False,
    ) -> None:
        if clock_rate <= 0:
            raise ValueError("clock rate must be positive")
        self.video = video
        self.timeline = timeline
        self.key = key
        self.clock_rate = clock_rate
        self.domain = domain
        self.stats = TrackClockStats()
        self._reset()

    def _reset(self) -> None:
        self._last_ts: int | None = None
        self._last_ext = 0
        self._last_arrival_us = 0
        self._anchor_ext = 0
        self._anchor_us = 0
        self._sr_ext: int | None = None
        self._sr_sender_us = 0
        self._pending_sr: tuple[int, int, int] | None = None  # (rtp ts, sender µs, arrival µs)
        self._prev_raw_us: int | None = None  # the previous frame's uncorrected mapping
        self._prev_ext = 0
        self._correction_us = 0
        self._min_frame_us: int | None = None

    @property
    def mapping(self) -> str:
        """What maps the track now: "sender_report", "arrival" or "none" (nothing yet)."""
        if self._last_ts is None:
            return "none"
        return "sender_report" if self._sr_ext is not None else "arrival"

    def restart(self) -> None:
        """The publisher restarted the stream (e.g. a new SSRC): anchor afresh, keep the output
        strictly increasing."""
        if self._last_ts is not None:
            self.stats.restarts += 1
        self._reset()

    def _ticks_to_us(self, ticks: int) -> int:
        return ticks * US_PER_S // self.clock_rate

    def _consistent(self, ext_delta: int, arrival_delta_us: int) -> bool:
        return (
            abs(self._ticks_to_us(ext_delta) - arrival_delta_us)
            <= self.timeline.restart_threshold_us
        )

    def on_sender_report(self, ntp: int, rtp_timestamp: int, arrival_unix_s: float) -> bool:
        """A sender report for this track; False when it does not fit the stream (ignored)."""
        sender_us = ntp_to_unix_us(ntp)
        arrival_us = round(arrival_unix_s * US_PER_S)
        if self._last_ts is None:
            self._pending_sr = (rtp_timestamp & 0xFFFFFFFF, sender_us, arrival_us)
            return True
        return self._apply_sender_report(rtp_timestamp, sender_us, arrival_us)

    def _apply_sender_report(self, rtp_timestamp: int, sender_us: int, arrival_us: int) -> bool:
        assert self._last_ts is not None
        delta = _signed32(rtp_timestamp - self._last_ts)
        if not self._consistent(delta, arrival_us - self._last_arrival_us):
            self.stats.rejected_sender_reports += 1
            return False
        self._sr_ext = self._last_ext + delta
        self._sr_sender_us = sender_us
        self.stats.sender_reports += 1
        return True

    def _smooth(self, raw_us: int, ext: int) -> int:
        """The correction to add to this frame's mapping (see "Smooth corrections")."""
        previous = self._prev_raw_us
        self._prev_raw_us, prev_ext, self._prev_ext = raw_us, self._prev_ext, ext
        if previous is None:
            self._correction_us = 0
            return 0
        frame_us = self._ticks_to_us(ext - prev_ext)
        if frame_us > 0 and (self._min_frame_us is None or frame_us < self._min_frame_us):
            self._min_frame_us = frame_us
        step_us = raw_us - (previous + frame_us)
        correction = self._correction_us - step_us
        if step_us > 0:
            self.stats.jumped += 1
        elif step_us < 0:
            self.stats.slewed += 1
        if correction <= 0:
            correction = 0
        else:
            timeline = self.timeline
            if self.video and correction <= timeline.max_video_lag_us:
                allowance = max(0, frame_us - (self._min_frame_us or frame_us))
            else:
                allowance = int(max(0, frame_us) * timeline.slew_ratio)
            correction = max(0, correction - allowance)
        self._correction_us = correction
        return correction

    def map(self, rtp_timestamp: int, arrival_unix_s: float) -> int:
        """Timeline time (µs from the recording's start) of a frame with this RTP timestamp that
        arrived (its first packet) at `arrival_unix_s`. Strictly increasing per track."""
        rtp_timestamp &= 0xFFFFFFFF
        arrival_us = round(arrival_unix_s * US_PER_S)
        if self._last_ts is None:
            ext = rtp_timestamp
            self._anchor_ext, self._anchor_us = ext, arrival_us
            self._last_ts, self._last_ext, self._last_arrival_us = ext, ext, arrival_us
            pending = self._pending_sr
            self._pending_sr = None
            if pending is not None:
                self._apply_sender_report(*pending)
        else:
            delta = _signed32(rtp_timestamp - self._last_ts)
            ext = self._last_ext + delta
            if not self._consistent(delta, arrival_us - self._last_arrival_us):
                self.stats.restarts += 1
                self._sr_ext = None
                self._anchor_ext, self._anchor_us = ext, arrival_us
                self._prev_raw_us = None
            self._last_ts, self._last_ext, self._last_arrival_us = rtp_timestamp, ext, arrival_us

        if self._sr_ext is not None:
            sender_us = self._sr_sender_us + self._ticks_to_us(ext - self._sr_ext)
            offset_us = self.domain.add_sample(arrival_us, arrival_us - sender_us)
            raw_us = sender_us + offset_us
        else:
            raw_us = self._anchor_us + self._ticks_to_us(ext - self._anchor_ext)
        absolute_us = raw_us + self._smooth(raw_us, ext)

        stats = self.stats
        time_us = absolute_us - self.timeline.origin_us
        if time_us < 0:
            stats.clamped += 1
            time_us = 0
        last = stats.last_us
        if last is not None and time_us <= last:
            stats.nudged += 1
            time_us = last + 1
        if stats.first_us is None:
            stats.first_us = time_us
        stats.last_us = time_us
        stats.frames += 1
        return time_us


class Timeline:
    """The recording's shared timeline: 0 is `origin_unix_s` (the recording's start)."""

    def __init__(
        self,
        origin_unix_s: float,
        *,
        restart_threshold_ms: int = 5000,
        offset_window_ms: int = 10_000,
        offset_lower_ms: int = 5,
        offset_raise_ms: int = 50,
        slew_ratio: float = 0.25,
        max_video_lag_ms: int = 100,
    ) -> None:
        self.origin_us = round(origin_unix_s * US_PER_S)
        self.slew_ratio = slew_ratio
        self.max_video_lag_us = max_video_lag_ms * 1000
        self.restart_threshold_us = restart_threshold_ms * 1000
        self._domain_settings = (offset_window_ms, offset_lower_ms, offset_raise_ms)
        self.domains: dict[str, ClockDomain] = {}
        self.tracks: dict[str, TrackClock] = {}

    def domain(self, name: str) -> ClockDomain:
        domain = self.domains.get(name)
        if domain is None:
            window_ms, lower_ms, raise_ms = self._domain_settings
            domain = ClockDomain(name, window_ms=window_ms, lower_ms=lower_ms, raise_ms=raise_ms)
            self.domains[name] = domain
        return domain

    def track(self, key: str, clock_rate: int, domain: str, *, video: bool = False) -> TrackClock:
        """The clock of track `key` (created on first use) in clock domain `domain` (usually the
        participant: its tracks share the publisher's NTP clock)."""
        clock = self.tracks.get(key)
        if clock is None or clock.clock_rate != clock_rate:
            clock = TrackClock(self, key, clock_rate, self.domain(domain), video=video)
            self.tracks[key] = clock
        return clock

    def to_us(self, unix_s: float) -> int:
        """A wall-clock time on the timeline."""
        return round(unix_s * US_PER_S) - self.origin_us
