from sfu.downtrack import DownTrack
from sfu.drop_reason import DropReason
from sfu.layer_selector import LayerSelector
from sfu.publication import Publication
from sfu.rtp import parse_rtp
from tests.packets import view, vp8_payload
from tests.sfu_fakes import FakePublisher, Sink


def make(kind: str = "video"):
    publisher = FakePublisher()
    publication = Publication(
        publisher,  # type: ignore[arg-type]
        "t1",
        kind,
        "1",
        96 if kind == "video" else 111,
        90000 if kind == "video" else 48000,
        500,
    )
    stream = publication.add_stream(1111)
    downtrack = DownTrack(publication, "5", 2222, 100, Sink(), initial_seq=0, initial_timestamp=0)
    downtrack.active = True
    return publisher, publication, stream, downtrack


def feed(stream, downtrack, seq, timestamp, now_ms, **kwargs):
    packet = view(seq, timestamp, **kwargs)
    assert stream.receive(packet, now_ms)
    return downtrack.forward(stream, packet, now_ms)


def test_video_waits_for_a_keyframe_then_forwards_with_new_ssrc_and_payload_type():
    _, _, stream, downtrack = make()
    assert feed(stream, downtrack, 10, 0, 0, payload=vp8_payload(keyframe=False)) is None
    assert downtrack.drops[DropReason.WAITING_FOR_KEYFRAME] == 1
    out = feed(stream, downtrack, 11, 3000, 33, payload=vp8_payload(keyframe=True))
    packet = parse_rtp(out)
    assert (packet.ssrc, packet.payload_type, packet.seq, packet.timestamp) == (2222, 100, 0, 0)
    assert packet.payload == vp8_payload(keyframe=True)
    following = parse_rtp(
        feed(stream, downtrack, 12, 3000, 34, payload=vp8_payload(keyframe=False, start=False))
    )
    assert following.seq == 1


def test_audio_is_forwarded_at_once_and_header_extensions_are_not_copied():
    _, _, stream, downtrack = make("audio")
    out = feed(
        stream, downtrack, 10, 0, 0, payload=b"opus", payload_type=111, extensions=[(1, b"\x80")]
    )
    packet = parse_rtp(out)
    assert packet.payload == b"opus" and packet.extension == b"" and len(out) == 12 + 4


def test_an_inactive_down_track_forwards_nothing():
    _, _, stream, downtrack = make("audio")
    downtrack.active = False
    assert feed(stream, downtrack, 10, 0, 0) is None
    assert downtrack.drops[DropReason.TRANSPORT_NOT_READY] == 1


def test_a_nack_is_answered_from_the_shared_buffer_with_the_subscribers_numbers():
    _, _, stream, downtrack = make("audio")
    sent = [
        parse_rtp(feed(stream, downtrack, seq, seq * 960, seq, payload=bytes([seq])))
        for seq in range(5)
    ]
    again = downtrack.retransmit((sent[2].seq, 999))
    assert len(again) == 1
    packet = parse_rtp(again[0])
    assert (packet.seq, packet.timestamp, packet.payload) == (
        sent[2].seq,
        sent[2].timestamp,
        bytes([2]),
    )
    assert downtrack.retransmissions == 1


def test_a_publisher_restart_waits_for_a_new_keyframe_and_continues_the_numbering():
    _, _, stream, downtrack = make()
    feed(stream, downtrack, 100, 0, 0, payload=vp8_payload(keyframe=True))
    feed(stream, downtrack, 101, 3000, 33, payload=vp8_payload(keyframe=False))
    # restart: sequence numbers jump far away
    assert feed(stream, downtrack, 40000, 5, 100, payload=vp8_payload(keyframe=False)) is None
    out = parse_rtp(feed(stream, downtrack, 40001, 3005, 133, payload=vp8_payload(keyframe=True)))
    assert out.seq == 2


def test_padding_only_packets_are_dropped_without_leaving_a_gap():
    _, _, stream, downtrack = make("audio")
    feed(stream, downtrack, 1, 0, 0)
    assert feed(stream, downtrack, 2, 0, 0, payload=b"", padding=100) is None
    assert parse_rtp(feed(stream, downtrack, 3, 960, 20)).seq == 1


def test_duplicates_from_the_publisher_are_not_forwarded_twice():
    _, _, stream, downtrack = make("audio")
    feed(stream, downtrack, 1, 0, 0)
    assert not stream.receive(view(1, 0), 1)


def test_keyframe_requests_to_the_publisher_are_throttled():
    publisher, publication, _, _ = make()
    for now in (0, 100, 200, 300):
        publication.request_keyframe(now)
    assert publisher.plis == [1111]
    publication.poll_keyframe_request(500)
    assert publisher.plis == [1111, 1111]


def test_sender_reports_map_the_subscribers_timestamps_to_the_publishers_clock():
    _, _, stream, downtrack = make("audio")
    assert downtrack.sender_report(0) is None  # no sender report from the publisher yet
    feed(stream, downtrack, 1, 48000, 0)
    stream.sr_clock.update(ntp=1 << 40, rtp_timestamp=48000, now_ms=0)
    from sfu.rtcp import SenderReport, parse_rtcp

    report = next(iter(parse_rtcp(downtrack.sender_report(1000))))
    assert isinstance(report, SenderReport) and report.ssrc == 2222
    assert report.rtp_timestamp == 48000  # subscriber's first timestamp was 0 at 48000 in
    assert report.ntp_timestamp == (1 << 40) + (1 << 32)


def test_the_layer_selector_keeps_the_current_layer_until_the_target_has_a_keyframe():
    selector = LayerSelector(needs_keyframe=True, preferred_layer=0)
    assert selector.select(0, is_keyframe=True) == DropReason.NONE
    selector.set_target(1)
    assert selector.select(1, is_keyframe=False) == DropReason.LAYER_NOT_SELECTED
    assert selector.select(0, is_keyframe=False) == DropReason.NONE
    assert selector.select(1, is_keyframe=True) == DropReason.NONE
    assert selector.current_layer == 1
    assert selector.select(0, is_keyframe=False) == DropReason.LAYER_NOT_SELECTED
