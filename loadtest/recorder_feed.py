"""Synthetic RTP/RTCP as the SFU would send it to the recorder, for tests and benchmarks.

Real pre-encoded VP8 and Opus frames (`loadtest.media`) are packetized into RTP with sender
reports, per participant, with a chosen join time, leave time, clock offset and delays, and
returned as one arrival-ordered list of datagrams.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from loadtest.media import AUDIO_FRAME_MS, VIDEO_FPS, EncodedFrame, MediaLibrary, vp8_payloads
from sfu.rtcp import build_sender_report
from sfu.rtp import build_rtp
from sfu.sender_report import ntp_from_unix

__all__ = [
    "Datagram",
    "RtpPacketizer",
    "SyntheticParticipant",
    "synthetic_call",
]

VP8_PT = 96
OPUS_PT = 111


@dataclass(frozen=True, order=True)
class Datagram:
    arrival_unix_s: float
    data: bytes
    rtcp: bool = False


class RtpPacketizer:
    """Sequence numbers and timestamps of one outgoing RTP stream."""

    def __init__(
        self, ssrc: int, payload_type: int, clock_rate: int, first_seq: int = 0, first_ts: int = 0
    ) -> None:
        self.ssrc = ssrc
        self.payload_type = payload_type
        self.clock_rate = clock_rate
        self.seq = first_seq & 0xFFFF
        self.first_ts = first_ts

    def timestamp(self, media_s: float) -> int:
        return (self.first_ts + round(media_s * self.clock_rate)) & 0xFFFFFFFF

    def packets(self, payloads: Sequence[bytes], timestamp: int) -> list[bytes]:
        out = []
        for index, payload in enumerate(payloads):
            out.append(
                build_rtp(
                    payload_type=self.payload_type,
                    seq=self.seq,
                    timestamp=timestamp,
                    ssrc=self.ssrc,
                    payload=payload,
                    marker=index == len(payloads) - 1,
                )
            )
            self.seq = (self.seq + 1) & 0xFFFF
        return out


@dataclass(frozen=True)
class SyntheticParticipant:
    participant_id: str
    video_ssrc: int
    audio_ssrc: int
    join_s: float = 0.0  # seconds after the call's start
    leave_s: float | None = None
    layer: int = 0  # video layer index in the library (q, h, f)
    clock_offset_s: float = 0.0  # its NTP clock minus ours
    audio_delay_s: float = 0.010  # capture to arrival at the recorder
    video_delay_s: float = 0.030
    first_seq: int = 1000
    first_ts: int = 12345
    sender_report_interval_s: float = 1.0


def synthetic_call(
    library: MediaLibrary,
    participants: Sequence[SyntheticParticipant],
    *,
    start_unix_s: float,
    duration_s: float,
) -> list[Datagram]:
    """Every datagram of a call of `duration_s` seconds, ordered by arrival time."""
    out: list[Datagram] = []
    for person in participants:
        end_s = min(duration_s, person.leave_s if person.leave_s is not None else duration_s)
        video = RtpPacketizer(person.video_ssrc, VP8_PT, 90_000, person.first_seq, person.first_ts)
        audio = RtpPacketizer(
            person.audio_ssrc, OPUS_PT, 48_000, person.first_seq + 7, person.first_ts + 999
        )
        frames: tuple[EncodedFrame, ...] = library.video_layers[person.layer].frames
        frame_s = 1 / VIDEO_FPS
        index = 0
        while True:
            media_s = index * frame_s  # relative to the participant's join
            capture_s = person.join_s + media_s
            if capture_s >= end_s:
                break
            frame = frames[index % len(frames)]
            arrival = start_unix_s + capture_s + person.video_delay_s
            for offset, packet in enumerate(
                video.packets(vp8_payloads(frame.data, picture_id=index), video.timestamp(media_s))
            ):
                out.append(Datagram(arrival + offset * 1e-5, packet))
            index += 1
        audio_frame_s = AUDIO_FRAME_MS / 1000
        index = 0
        while True:
            media_s = index * audio_frame_s
            capture_s = person.join_s + media_s
            if capture_s >= end_s:
                break
            frame = library.audio_frames[index % len(library.audio_frames)]
            arrival = start_unix_s + capture_s + person.audio_delay_s
            for packet in audio.packets([frame.data], audio.timestamp(media_s)):
                out.append(Datagram(arrival, packet))
            index += 1
        report_s = person.join_s + 0.05
        while report_s < end_s:
            media_s = report_s - person.join_s
            ntp = ntp_from_unix(start_unix_s + report_s + person.clock_offset_s)
            for stream in (video, audio):
                sr = build_sender_report(stream.ssrc, ntp, stream.timestamp(media_s), 0, 0)
                out.append(Datagram(start_unix_s + report_s + 0.001, sr, rtcp=True))
            report_s += person.sender_report_interval_s
    out.sort()
    return out
