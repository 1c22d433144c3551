"""Recording real VP8 and Opus through RecordingSession into encrypted segments, and exporting.

ffprobe and ffmpeg judge the files: the tracks, the duration, and a decode that reports nothing.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from loadtest.media import MediaLibrary, load_media, vp8_payloads
from loadtest.recorder_feed import (
    OPUS_PT,
    VP8_PT,
    Datagram,
    RtpPacketizer,
    SyntheticParticipant,
    synthetic_call,
)
from recorder.encrypted_reader import open_encrypted
from recorder.export import ExportError, export_recording
from recorder.manifest import (
    MANIFEST_NAME,
    build_manifest,
    read_manifest,
    verify_hashes,
    write_manifest,
)
from recorder.segment_crypto import SegmentTamperedError
from recorder.session import RecordingSession, TrackInfo, segment_path
from sfu.rtcp import PictureLossIndication, parse_rtcp
from tests.media_files import decode_errors, ffprobe

pytestmark = pytest.mark.skipif(
    not (shutil.which("ffprobe") and shutil.which("ffmpeg")), reason="needs ffmpeg and ffprobe"
)

KEY = bytes(range(100, 132))
START = 1_700_000_000.0
PEOPLE = (
    SyntheticParticipant("medewerker-1", 11, 12, layer=1),
    SyntheticParticipant("inwoner-1", 21, 22, join_s=0.8, layer=0, clock_offset_s=2.5),
)
ROLES = {"medewerker-1": "employee", "inwoner-1": "resident"}


@pytest.fixture(scope="module")
def library() -> MediaLibrary:
    return load_media()


def tracks_of(person: SyntheticParticipant) -> list[TrackInfo]:
    role = ROLES.get(person.participant_id, "guest")
    return [
        TrackInfo(
            person.video_ssrc, "video", "vp8", 90_000, VP8_PT, person.participant_id, role, "camera"
        ),
        TrackInfo(
            person.audio_ssrc, "audio", "opus", 48_000, OPUS_PT, person.participant_id, role, "mic"
        ),
    ]


def feed(session: RecordingSession, datagrams: Sequence[Datagram]) -> list[bytes]:
    replies: list[bytes] = []
    for datagram in datagrams:
        handler = session.on_rtcp if datagram.rtcp else session.on_rtp
        replies += handler(datagram.data, datagram.arrival_unix_s)
    return replies


def record(
    library: MediaLibrary, directory: Path, duration_s: float = 3.0, people=PEOPLE
) -> RecordingSession:
    session = RecordingSession(directory, KEY, recording_id="rec-1", start_unix_s=START)
    for person in people:
        for track in tracks_of(person):
            session.add_track(track)
    feed(session, synthetic_call(library, people, start_unix_s=START, duration_s=duration_s))
    session.close()
    return session


@pytest.fixture(scope="module")
def recording(library, tmp_path_factory) -> tuple[Path, RecordingSession]:
    directory = tmp_path_factory.mktemp("recording")
    return directory, record(library, directory)


def test_two_participants_export_to_one_playable_file_with_all_tracks(recording, tmp_path):
    directory, _session = recording
    out = tmp_path / "export.webm"
    report = export_recording(directory, KEY, out)

    info = ffprobe(out)
    codecs = sorted(stream["codec_name"] for stream in info["streams"])
    assert codecs == ["opus", "opus", "vp8", "vp8"]
    assert abs(float(info["format"]["duration"]) - 3.0) <= 0.5
    assert decode_errors(out, all_streams=True) == ""
    sizes = {
        stream["tags"].get("participant_id", stream["tags"].get("PARTICIPANT_ID")): (
            stream["width"],
            stream["height"],
        )
        for stream in info["streams"]
        if stream["codec_type"] == "video"
    }
    assert sizes == {"medewerker-1": (640, 360), "inwoner-1": (320, 180)}

    assert abs(report.duration_s - 3.0) <= 0.5
    by_key = {(t.participant_id, t.kind): t for t in report.tracks}
    assert by_key["medewerker-1", "video"].packets == 75
    assert by_key["medewerker-1", "audio"].packets == 150
    # The late joiner starts at its real offset: a gap, not a shifted track.
    assert by_key["inwoner-1", "audio"].first_s == pytest.approx(0.81, abs=0.005)
    assert by_key["inwoner-1", "video"].first_s == pytest.approx(0.83, abs=0.005)
    assert [s.closed_cleanly for s in report.segments] == [True]


def test_the_session_counts_frames_and_needs_no_keyframe_requests_on_a_clean_stream(recording):
    _directory, session = recording
    stats = session.stats()
    assert stats[11].frames_written == 75 and stats[11].frames_dropped == 0
    assert stats[12].frames_written == 150
    assert stats[21].first_us == pytest.approx(830_000, abs=5000)
    assert all(s.keyframe_requests == 0 and s.lost == 0 for s in stats.values())
    assert all(s.sender_reports >= 2 for s in stats.values())
    assert [s.path.name for s in session.segments] == ["segment-0000.mkv.enc"]


def test_a_segment_cut_at_any_record_boundary_is_a_playable_matroska_file(recording, tmp_path):
    directory, _session = recording
    chunks = list(open_encrypted(segment_path(directory, 0), KEY))
    assert len(chunks) >= 5
    for count in (1, 2, len(chunks) // 2, len(chunks) - 1):
        cut = tmp_path / f"cut-{count}.mkv"
        cut.write_bytes(b"".join(chunks[:count]))
        assert decode_errors(cut, all_streams=True) == "", count


def test_a_segment_cut_at_arbitrary_bytes_like_a_kill_still_exports_and_decodes(
    recording, tmp_path
):
    directory, _session = recording
    blob = segment_path(directory, 0).read_bytes()
    rng = random.Random(5)
    for size in sorted(rng.sample(range(len(blob) // 4, len(blob)), 4)):
        killed = tmp_path / f"killed-{size}"
        killed.mkdir()
        segment_path(killed, 0).write_bytes(blob[:size])
        out = killed / "export.mkv"
        report = export_recording(killed, KEY, out)
        assert not report.segments[0].closed_cleanly
        assert decode_errors(out, all_streams=True) == "", size
        assert 0.5 < report.duration_s < 3.1


def test_a_flipped_byte_in_a_segment_is_detected_as_tampering(recording, tmp_path):
    directory, _session = recording
    blob = bytearray(segment_path(directory, 0).read_bytes())
    blob[len(blob) // 2] ^= 0x40
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    segment_path(tampered, 0).write_bytes(bytes(blob))
    with pytest.raises(SegmentTamperedError):
        export_recording(tampered, KEY, tmp_path / "out.mkv")


def test_the_manifest_records_everything_and_its_hashes_catch_a_changed_file(recording, tmp_path):
    directory, session = recording
    copy = tmp_path / "copy"
    shutil.copytree(directory, copy)
    consent = {"given_by": "inwoner-1", "statement": "Ik stem in", "given_at": "2023-11-14T22:13Z"}
    manifest = build_manifest(
        recording_id="rec-1",
        room={"id": "spreekuur", "name": "Spreekuur"},
        directory=copy,
        started_unix_s=START,
        ended_unix_s=START + 3,
        tracks=session.tracks,
        segments=session.segments,
        consent=consent,
        key=KEY,
    )
    write_manifest(manifest, copy / MANIFEST_NAME)
    loaded = read_manifest(copy / MANIFEST_NAME)
    assert loaded["consent"] == consent
    assert loaded["participants"] == [
        {"id": "medewerker-1", "role": "employee"},
        {"id": "inwoner-1", "role": "resident"},
    ]
    assert {(t["kind"], t["codec"]) for t in loaded["tracks"]} == {
        ("video", "vp8"),
        ("audio", "opus"),
    }
    assert loaded["started_at"] == "2023-11-14T22:13:20.000000Z"
    assert [s["file"] for s in loaded["segments"]] == ["segment-0000.mkv.enc"]
    assert verify_hashes(loaded, copy) == []
    assert sorted(p.name for p in copy.iterdir()) == [MANIFEST_NAME, "segment-0000.mkv.enc"]

    with open(segment_path(copy, 0), "ab") as file:
        file.write(b"\x00")
    problems = verify_hashes(loaded, copy)
    assert len(problems) == 2 and "SHA-256" in problems[1]
    segment_path(copy, 0).unlink()
    assert verify_hashes(loaded, copy) == ["segment-0000.mkv.enc: missing"]
    with pytest.raises(ValueError):
        build_manifest(
            recording_id="x",
            room="r",
            directory=copy,
            started_unix_s=START,
            ended_unix_s=None,
            tracks=[],
            segments=[],
            consent=None,
        )


def test_a_track_added_after_the_header_starts_a_new_segment_and_the_export_joins_them(
    library, tmp_path
):
    first, late = PEOPLE[0], SyntheticParticipant("tolk-1", 31, 32, join_s=1.5, layer=0)
    datagrams = synthetic_call(library, [first, late], start_unix_s=START, duration_s=3.0)
    session = RecordingSession(tmp_path, KEY, recording_id="rec-1", start_unix_s=START)
    for track in tracks_of(first):
        session.add_track(track)
    replies: list[bytes] = []
    joined = False
    for datagram in datagrams:
        if not joined and datagram.arrival_unix_s >= START + 1.5:
            for track in tracks_of(late):  # the control side announces the interpreter
                session.add_track(track)
            joined = True
        replies += feed(session, [datagram])
    replies += session.poll(START + 3.5)
    segments = session.close()

    assert [s.path.name for s in segments] == ["segment-0000.mkv.enc", "segment-0001.mkv.enc"]
    assert [len(s.tracks) for s in segments] == [2, 4]
    plis = [m for r in replies for m in parse_rtcp(r) if isinstance(m, PictureLossIndication)]
    assert 11 in {p.media_ssrc for p in plis}  # the new segment must start with a keyframe

    out = tmp_path / "export.mkv"
    report = export_recording(tmp_path, KEY, out)
    assert len(report.tracks) == 4
    by_key = {(t.participant_id, t.kind): t for t in report.tracks}
    assert by_key["tolk-1", "audio"].first_s == pytest.approx(1.51, abs=0.01)
    # The first participant's audio continues across the two segments without a hole.
    assert by_key["medewerker-1", "audio"].packets == 150
    assert decode_errors(out, all_streams=True) == ""
    assert len(ffprobe(out)["streams"]) == 4


def test_a_recorder_killed_mid_segment_continues_in_a_new_segment_on_the_same_timeline(
    library, tmp_path
):
    datagrams = synthetic_call(library, PEOPLE[:1], start_unix_s=START, duration_s=4.0)
    crash_at = START + 1.2
    before = [d for d in datagrams if d.arrival_unix_s < crash_at]
    after = [d for d in datagrams if d.arrival_unix_s >= crash_at + 0.3]  # restart takes 0.3 s

    crashed = RecordingSession(tmp_path, KEY, recording_id="rec-1", start_unix_s=START)
    for track in tracks_of(PEOPLE[0]):
        crashed.add_track(track)
    feed(crashed, before)
    assert crashed._writer is not None
    crashed._writer.abandon()  # kill -9: no trailer, no final record, the last cluster lost

    restarted = RecordingSession(tmp_path, KEY, recording_id="rec-1", start_unix_s=START)
    for track in tracks_of(PEOPLE[0]):
        restarted.add_track(track)
    replies = feed(restarted, after)
    restarted.close()
    assert restarted.segments[0].path.name == "segment-0001.mkv.enc"
    # The stream was joined between keyframes: the recorder asked for one (none came in the
    # synthetic stream until its next keyframe at 2 s).
    assert any(isinstance(m, PictureLossIndication) for r in replies for m in parse_rtcp(r))

    out = tmp_path / "export.mkv"
    report = export_recording(tmp_path, KEY, out)
    assert [s.closed_cleanly for s in report.segments] == [False, True]
    assert decode_errors(out, all_streams=True) == ""
    audio = next(t for t in report.tracks if t.kind == "audio")
    video = next(t for t in report.tracks if t.kind == "video")
    assert audio.end_s == pytest.approx(4.01, abs=0.03)
    assert video.first_s == pytest.approx(0.03, abs=0.005)
    assert abs(report.duration_s - 4.0) <= 0.5


def test_a_layer_switch_and_a_lost_packet_are_recorded_without_decode_errors(
    library, tmp_path, all_streams=True
):
    session = RecordingSession(tmp_path, KEY, recording_id="rec-1", start_unix_s=START)
    video_track = tracks_of(PEOPLE[0])[0]
    session.add_track(video_track)
    packetizer = RtpPacketizer(11, VP8_PT, 90_000, first_seq=65_000, first_ts=0xFFFF_0000)
    low, high = library.video_layers[0], library.video_layers[1]
    # q for two seconds, then the SFU switches to h at its keyframe; a packet is lost at 2.5 s.
    frames = list(low.frames[:50]) + list(high.frames[50:75]) + list(low.frames[:25])
    replies: list[bytes] = []
    for index, frame in enumerate(frames):
        arrival = START + index * 0.04 + 0.02
        packets = packetizer.packets(
            vp8_payloads(frame.data, index), packetizer.timestamp(index * 0.04)
        )
        if index == 62:
            packets = packets[:-1]  # the end of this frame is lost
        for packet in packets:
            replies += session.on_rtp(packet, arrival)
        replies += session.poll(arrival + 0.015)
    session.close()

    stats = session.stats()[11]
    assert stats.lost == 1
    assert stats.keyframe_requests >= 1
    plis = [m for r in replies for m in parse_rtcp(r)]
    assert plis and all(isinstance(m, PictureLossIndication) and m.media_ssrc == 11 for m in plis)
    # Frames 62..74 are dropped (62 broken, the rest depend on it); 75 is a keyframe again.
    assert stats.frames_written == 100 - 13
    writer_stats = session.segments[0].stats[video_track.stream_key]
    assert writer_stats.sizes == [(320, 180), (640, 360), (320, 180)]
    out = tmp_path / "export.webm"
    export_recording(tmp_path, KEY, out)
    assert decode_errors(out, all_streams=True) == ""


def test_exporting_an_empty_directory_says_there_is_nothing(tmp_path):
    with pytest.raises(ExportError):
        export_recording(tmp_path, KEY, tmp_path / "out.mkv")
    session = RecordingSession(tmp_path, KEY, recording_id="rec-1", start_unix_s=START)
    session.add_track(tracks_of(PEOPLE[0])[1])
    session.close()
    assert session.segments == []  # nothing recorded, no file
    with pytest.raises(ExportError):
        export_recording(tmp_path, KEY, tmp_path / "out.mkv")
