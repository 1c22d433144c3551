"""`make bench`: the recorder's CPU per recorded stream, and what decoding would cost instead.

Real pre-encoded VP8 (the top simulcast layer, 1280x720, 25 fps, about 1.5 Mbit/s) and Opus
are packetized as the SFU sends them (loadtest/recorder_feed.py) and fed through `RecordingSession`:
depacketizing, the shared timeline, Matroska muxing with PyAV and AES-GCM encryption, to files on
disk, exactly as the recorder process does, without its UDP socket. The CPU time of this
process (best of three) is divided by the recorded streams and the seconds of media. For scale,
the same VP8 frames are also decoded once with PyAV: a recorder that decoded (to transcode or
to mix) would pay at least that per video stream, before any encoding.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import av

from loadtest.media import MediaLibrary, load_media
from loadtest.recorder_feed import OPUS_PT, VP8_PT, SyntheticParticipant, synthetic_call
from recorder.session import RecordingSession, TrackInfo

KEY = bytes(range(32))
START = 1_700_000_000.0
TOP_LAYER = 2


def _people(count: int) -> list[SyntheticParticipant]:
    return [
        SyntheticParticipant(f"p{index}", 1000 + 2 * index, 1001 + 2 * index, layer=TOP_LAYER)
        for index in range(count)
    ]


def _tracks(person: SyntheticParticipant) -> list[TrackInfo]:
    pid = person.participant_id
    return [
        TrackInfo(person.video_ssrc, "video", "vp8", 90_000, VP8_PT, pid, "resident", "camera"),
        TrackInfo(person.audio_ssrc, "audio", "opus", 48_000, OPUS_PT, pid, "resident", "mic"),
    ]


def record_cpu_seconds(library: MediaLibrary, people: int, media_s: float) -> float:
    """CPU seconds to record `people` participants (video + audio each) for `media_s` seconds."""
    participants = _people(people)
    datagrams = synthetic_call(library, participants, start_unix_s=START, duration_s=media_s)
    best = float("inf")
    for _ in range(3):
        with tempfile.TemporaryDirectory() as tmp:
            session = RecordingSession(Path(tmp), KEY, recording_id="bench", start_unix_s=START)
            for person in participants:
                for track in _tracks(person):
                    session.add_track(track)
            started = time.process_time()
            for datagram in datagrams:
                if datagram.rtcp:
                    session.on_rtcp(datagram.data, datagram.arrival_unix_s)
                else:
                    session.on_rtp(datagram.data, datagram.arrival_unix_s)
            session.close()
            best = min(best, time.process_time() - started)
    return best


def decode_cpu_seconds(library: MediaLibrary, media_s: float) -> float:
    """CPU seconds to decode `media_s` seconds of the same VP8 layer with PyAV (for scale)."""
    frames = library.video_layers[TOP_LAYER].frames
    count = int(media_s * 25)
    codec = av.CodecContext.create("vp8", "r")
    started = time.process_time()
    for index in range(count):
        packet = av.Packet(frames[index % len(frames)].data)
        for _frame in codec.decode(packet):
            pass
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of media")
    parser.add_argument("--markdown", type=Path, required=True)
    args = parser.parse_args()
    library = load_media()
    rows = []
    for people in (1, 3):
        cpu = record_cpu_seconds(library, people, args.seconds)
        streams = 2 * people
        rows.append((people, streams, cpu, 1e6 * cpu / (streams * args.seconds)))
    decode = decode_cpu_seconds(library, args.seconds)
    lines = [
        "## Recorder",
        "",
        f"Command: `python -m loadtest.recorder_bench --seconds {args.seconds:g} --markdown FILE`",
        "",
        "Recording real VP8 (1280x720, 25 fps, top simulcast layer) and Opus as the SFU sends",
        "them: depacketizing, the shared timeline, Matroska muxing with PyAV and AES-GCM",
        "encryption to disk, without decoding. CPU time of the recording core (the process adds",
        "its UDP receive, about as much as the SFU's per packet), best of three.",
        "",
        f"| participants | streams | CPU s for {args.seconds:g} s of media "
        "| µs CPU per stream per second of media | share of one core per stream |",
        "|---:|---:|---:|---:|---:|",
    ]
    for people, streams, cpu, per_stream in rows:
        lines.append(
            f"| {people} | {streams} | {cpu:.3f} | {per_stream:.0f} | "
            f"{100 * per_stream / 1e6:.2f} % |"
        )
    video_stream_share = decode / args.seconds
    lines += [
        "",
        f"For scale: only decoding the same {args.seconds:g} s of VP8 video once with PyAV costs "
        f"{decode:.3f} CPU s ({100 * video_stream_share:.1f} % of a core per video stream), "
        "before any re-encoding; the recorder never decodes.",
        "",
    ]
    args.markdown.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
