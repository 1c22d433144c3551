"""Counters of the media server, kept for the whole process lifetime (pure).

Prometheus counters must never go down, but down tracks and publications disappear with their
participant; each participant's totals are folded into the process totals when it leaves.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sfu.downtrack import DownTrack
    from sfu.participant import Participant


@dataclass
class MediaCounters:
    packets_in: int = 0
    bytes_in: int = 0
    rtx_packets_in: int = 0
    packets_out: int = 0
    bytes_out: int = 0
    retransmissions: int = 0
    nacks_received: int = 0
    nacks_sent: int = 0
    keyframe_requests: int = 0
    layer_switches: int = 0
    dropped: Counter[str] = field(default_factory=Counter)

    def add(self, other: MediaCounters) -> None:
        self.packets_in += other.packets_in
        self.bytes_in += other.bytes_in
        self.rtx_packets_in += other.rtx_packets_in
        self.packets_out += other.packets_out
        self.bytes_out += other.bytes_out
        self.retransmissions += other.retransmissions
        self.nacks_received += other.nacks_received
        self.nacks_sent += other.nacks_sent
        self.keyframe_requests += other.keyframe_requests
        self.layer_switches += other.layer_switches
        self.dropped.update(other.dropped)


def add_downtrack(counters: MediaCounters, downtrack: DownTrack) -> None:
    counters.packets_out += downtrack.packets_sent
    counters.bytes_out += downtrack.bytes_sent
    counters.retransmissions += downtrack.retransmissions
    counters.layer_switches += downtrack.layer_switches
    for reason, count in downtrack.drops.items():
        counters.dropped[reason.name.lower()] += count


def participant_counters(participant: Participant) -> MediaCounters:
    """What one participant's publications and down tracks have counted so far."""
    counters = MediaCounters(
        nacks_received=participant.nacks_received, nacks_sent=participant.nacks_sent
    )
    for publication in participant.publications.values():
        counters.keyframe_requests += publication.keyframe_requests_sent
        for stream in publication.streams.values():
            counters.packets_in += stream.packets_received
            counters.bytes_in += stream.bytes_received
            counters.rtx_packets_in += stream.rtx_packets
    for downtrack in participant.downtracks.values():
        add_downtrack(counters, downtrack)
    return counters
