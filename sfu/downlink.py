"""What one participant receives: its down tracks, their layers, and what its browser reports.

`Downlink` keeps the participant's down tracks (by mid and by the SFU's SSRC), the page's video
layout, audio-only mode and the browser's downlink estimate, and chooses each video's layer
(`allocation.py`). It answers the subscriber's RTCP (`ingress.SubscriberFeedback`): loss from
receiver reports, NACKs from the publication's retransmission buffers, PLI/FIR as keyframe
requests to the publisher, REMB as the estimate. Messages for the page go to `notify`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from sfu.allocation import LOW_BANDWIDTH_BPS, BandwidthAllocator, VideoDemand, layer_for_size
from sfu.clock import abs_send_time, monotonic_ns
from sfu.downtrack import DownTrack
from sfu.publication import Publication

Notify = Callable[[dict[str, object]], None]

ALLOCATION_INTERVAL_MS = 500
AUDIO_BITRATE_BPS = 40_000
# A browser's receive-side estimate starts from a guess; it means something after a few seconds.
ESTIMATE_WARMUP_MS = 5000
ESTIMATE_WINDOW_MS = 3000
ESTIMATE_FALL = 0.85


class Downlink:
    """One participant's down tracks and the choice of their layers."""

    def __init__(self, notify: Notify) -> None:
        self._notify = notify
        self.downtracks: dict[str, DownTrack] = {}  # by mid in this participant's SDP
        self._by_ssrc: dict[int, DownTrack] = {}
        self.downlink_estimate_bps: int | None = None  # None until the browser's REMB settles
        self._estimates: deque[tuple[int, int]] = deque()
        self.connected_ms = 0
        self._allocator = BandwidthAllocator()
        self._layout: dict[str, tuple[int, int, bool]] = {}  # mid -> (width, height, visible)
        self.audio_only = False
        self._low_bandwidth = False
        self._next_allocation_ms = 0
        self.nacks_received = 0

    # -- down tracks -------------------------------------------------------------------------

    def add(self, downtrack: DownTrack) -> None:
        self.downtracks[downtrack.mid] = downtrack
        self._by_ssrc[downtrack.ssrc] = downtrack

    def find(self, publication: Publication) -> DownTrack | None:
        """The down track of a publication, if there is one."""
        for existing in self.downtracks.values():
            if existing.publication is publication:
                return existing
        return None

    def remove(self, downtrack: DownTrack) -> None:
        self.downtracks.pop(downtrack.mid, None)
        self._layout.pop(downtrack.mid, None)
        self._allocator.forget(downtrack.mid)
        self._by_ssrc.pop(downtrack.ssrc, None)

    # -- what the page asks for --------------------------------------------------------------

    def set_layout(self, layout: dict[str, tuple[int, int, bool]]) -> None:
        """The page's report of how it shows each remote video (by mid)."""
        for mid, shown in layout.items():
            if mid in self.downtracks:
                self._layout[mid] = shown
        self._next_allocation_ms = 0

    def set_audio_only(self, enabled: bool) -> None:
        self.audio_only = enabled
        self._next_allocation_ms = 0

    def allocate_soon(self) -> None:
        """Decide the layers at the next tick (a down track started, the layout changed)."""
        self._next_allocation_ms = 0

    def allocate_if_due(self, now: int) -> None:
        if now >= self._next_allocation_ms:
            self._next_allocation_ms = now + ALLOCATION_INTERVAL_MS
            self.allocate(now)

    # -- the subscriber's RTCP (SubscriberFeedback) ------------------------------------------

    def receiver_report(self, ssrc: int, fraction_lost: float) -> None:
        downtrack = self._by_ssrc.get(ssrc)
        if downtrack is not None:
            downtrack.receiver_report(fraction_lost)

    def nack(self, media_ssrc: int, lost: tuple[int, ...], now_ms: int) -> None:
        self.nacks_received += 1
        downtrack = self._by_ssrc.get(media_ssrc)
        if downtrack is not None and downtrack.active:
            sink = downtrack.sink
            send_time = abs_send_time(monotonic_ns())
            for packet in downtrack.retransmit(lost, send_time, now_ms):
                sink.send_rtp(packet)

    def keyframe_request(self, media_ssrc: int, now_ms: int) -> None:
        downtrack = self._by_ssrc.get(media_ssrc)
        if downtrack is not None:
            downtrack.publication.request_keyframe(now_ms, downtrack.target_layer)

    def remb(self, bitrate_bps: int, now_ms: int) -> None:
        self._estimates.append((now_ms, bitrate_bps))
        while now_ms - self._estimates[0][0] > ESTIMATE_WINDOW_MS:
            self._estimates.popleft()
        if now_ms - self.connected_ms >= ESTIMATE_WARMUP_MS:
            self.downlink_estimate_bps = bitrate_bps

    # -- layers ------------------------------------------------------------------------------

    def allocate(self, now: int) -> None:
        """Choose the layer of every video this participant receives."""
        demands = []
        audio_tracks = 0
        for mid, downtrack in self.downtracks.items():
            publication = downtrack.publication
            if publication.kind != "video":
                audio_tracks += 1
                continue
            width, height, visible = self._layout.get(mid, (1280, 720, True))
            demands.append(
                VideoDemand(
                    key=mid,
                    visible=visible and not self.audio_only,
                    max_layer=layer_for_size(
                        width, height, publication.layer_sizes(), publication.layer_count
                    ),
                    bitrates=publication.layer_bitrates(now),
                    flowing=publication.flowing_layers(now),
                    current_layer=downtrack.current_layer,
                )
            )
        loss = max((d.fraction_lost for d in self.downtracks.values()), default=0.0)
        estimate = self.downlink_estimate_bps
        falling = estimate is not None and estimate < ESTIMATE_FALL * max(
            rate for _, rate in self._estimates
        )
        choices = self._allocator.allocate(
            estimate, loss, audio_tracks * AUDIO_BITRATE_BPS, demands, now, falling
        )
        shown = {demand.key for demand in demands if demand.visible}
        for mid, choice in choices.items():
            downtrack = self.downtracks[mid]
            paused = mid in shown and choice.target_layer < 0
            if paused != downtrack.bandwidth_paused:
                downtrack.bandwidth_paused = paused
                self._notify(
                    {
                        "type": "video_paused",
                        "participant_id": downtrack.publication.publisher.id,
                        "paused": paused,
                    }
                )
            downtrack.wanted_layer = choice.wanted_layer
            if downtrack.selector.target_layer != choice.target_layer:
                downtrack.selector.set_target(choice.target_layer)
                if choice.target_layer >= 0 and downtrack.active:
                    downtrack.publication.request_keyframe(now, choice.target_layer)
        low = self._allocator.struggling or (
            self.downlink_estimate_bps is not None
            and self.downlink_estimate_bps < LOW_BANDWIDTH_BPS
        )
        if low != self._low_bandwidth:
            self._low_bandwidth = low
            self._notify(
                {"type": "bandwidth", "downlink_bps": self.downlink_estimate_bps, "low": low}
            )

    def sender_reports(self, now: int) -> list[tuple[DownTrack, bytes]]:
        """A sender report for every down track that has forwarded something."""
        reports = []
        for downtrack in self.downtracks.values():
            report = downtrack.sender_report(now)
            if report is not None:
                reports.append((downtrack, report))
        return reports
