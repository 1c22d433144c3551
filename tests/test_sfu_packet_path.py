"""The packet path without sockets: ingress → published stream → down tracks → their sinks.

The objects are wired by hand here, as `Participant` wires them, with fakes at the Protocol seams
(a publisher that records keyframe requests, sinks that record packets, feedback that records
calls, a transport that records RTCP).
"""

from __future__ import annotations

from sfu.clock import abs_send_time
from sfu.config import LOOPBACK_NETWORKS, SfuConfig
from sfu.downlink import Downlink
from sfu.downtrack import DownTrack
from sfu.drop_reason import DropReason
from sfu.errors import SignallingError
from sfu.ingress import Ingress
from sfu.negotiation import Negotiation
from sfu.publication import Publication
from sfu.publisher_layers import PublisherLayers
from sfu.recording_tap import RecordingTap
from sfu.rtcp import (
    Nack,
    ReceiverReport,
    Remb,
    ReportBlock,
    build_nack,
    build_pli,
    build_receiver_report,
    build_remb,
    build_sender_report,
    parse_rtcp,
)
from sfu.rtcp_timer import RtcpTimer
from sfu.rtp import parse_rtp
from sfu.sdp import (
    AUDIO_LEVEL_URI,
    MID_URI,
    REPAIRED_RID_URI,
    RID_URI,
    TWCC_URI,
    Codec,
    LocalTransport,
    OfferedMedia,
)
from sfu.twcc import parse_twcc
from tests.packets import rtp, view, vp8_payload
from tests.sfu_fakes import FakePublisher, Sink
from tests.test_sfu_sdp import CHROME_OFFER

VP8 = Codec(96, "VP8", 90000, rtx_payload_type=97)
OPUS = Codec(111, "opus", 48000, 2)


class RecordingSink(Sink):
    """Stands in for the recording tap: another sink behind another down track."""


class Levels:
    def __init__(self) -> None:
        self.levels: list[tuple[str, int]] = []

    def level(self, participant_id: str, level_dbov: int, now_ms: int) -> None:
        self.levels.append((participant_id, level_dbov))


class Feedback:
    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []

    def receiver_report(self, ssrc: int, fraction_lost: float) -> None:
        self.calls.append(("receiver_report", ssrc, fraction_lost))

    def nack(self, media_ssrc: int, lost: tuple[int, ...], now_ms: int) -> None:
        self.calls.append(("nack", media_ssrc, lost))

    def keyframe_request(self, media_ssrc: int, now_ms: int) -> None:
        self.calls.append(("keyframe_request", media_ssrc))

    def remb(self, bitrate_bps: int, now_ms: int) -> None:
        self.calls.append(("remb", bitrate_bps))


class FakeTransport:
    def __init__(self, state: str = "connected") -> None:
        self.state = state
        self.rtcp: list[bytes] = []

    def send_rtcp(self, data: bytes) -> bool:
        self.rtcp.append(data)
        return True


def media(
    kind: str = "video",
    mid: str = "1",
    ssrcs: list[int] | None = None,
    rids: list[str] | None = None,
    extensions: list[tuple[int, str]] | None = None,
) -> OfferedMedia:
    return OfferedMedia(
        mid=mid,
        kind=kind,
        proto="UDP/TLS/RTP/SAVPF",
        formats=["96"],
        codec=VP8 if kind == "video" else OPUS,
        extensions=extensions or [],
        ssrcs=ssrcs or [],
        direction="recvonly",
        msid=None,
        rids=rids or [],
    )


def make_ingress(
    *offered: OfferedMedia, feedback: Feedback | None = None
) -> tuple[Ingress, FakePublisher, Levels]:
    publisher = FakePublisher()
    levels = Levels()
    ingress = Ingress(
        publisher,
        publisher.id,
        500,
        levels,
        feedback or Feedback(),
        new_track_id=iter(f"track-{n}" for n in range(10)).__next__,
    )
    ingress.add_offered(offered)
    return ingress, publisher, levels


def downtrack_for(publication: Publication, ssrc: int, sink: Sink | None = None) -> DownTrack:
    downtrack = DownTrack(publication, "9", ssrc, 100, sink or Sink(), 0, 0)
    downtrack.active = True
    publication.add_downtrack(downtrack)
    return downtrack


def test_a_published_stream_fans_each_packet_out_to_every_down_track_through_its_own_sink():
    publication = Publication(FakePublisher(), "t", "video", "1", 96, 90000, 500)
    stream = publication.add_stream(1111)
    first, second = downtrack_for(publication, 21), downtrack_for(publication, 22)
    recording = downtrack_for(publication, 23, RecordingSink())
    stream.deliver(view(10, 0, payload=vp8_payload(keyframe=True)), 0, 0)
    for downtrack in (first, second, recording):
        assert isinstance(downtrack.sink, Sink)
        [out] = downtrack.sink.sent
        packet = parse_rtp(out)
        assert packet is not None
        assert (packet.ssrc, packet.payload) == (downtrack.ssrc, vp8_payload(keyframe=True))


def test_a_down_track_not_yet_active_gets_nothing_while_the_others_get_the_packet():
    publication = Publication(FakePublisher(), "t", "video", "1", 96, 90000, 500)
    stream = publication.add_stream(1111)
    waiting, ready = downtrack_for(publication, 21), downtrack_for(publication, 22)
    waiting.active = False
    stream.deliver(view(10, 0, payload=vp8_payload(keyframe=True)), 0, 0)
    assert isinstance(waiting.sink, Sink) and isinstance(ready.sink, Sink)
    assert waiting.sink.sent == [] and len(ready.sink.sent) == 1
    assert waiting.drops[DropReason.TRANSPORT_NOT_READY] == 1


def test_a_duplicate_packet_is_fanned_out_once_and_a_removed_down_track_gets_no_more():
    publication = Publication(FakePublisher(), "t", "video", "1", 96, 90000, 500)
    stream = publication.add_stream(1111)
    kept, removed = downtrack_for(publication, 21), downtrack_for(publication, 22)
    packet = vp8_payload(keyframe=True)
    stream.deliver(view(10, 0, payload=packet), 0, 0)
    stream.deliver(view(10, 0, payload=packet), 1, 0)
    publication.remove_downtrack(removed)
    stream.deliver(view(11, 0, payload=vp8_payload(keyframe=False, start=False)), 2, 0)
    assert isinstance(kept.sink, Sink) and isinstance(removed.sink, Sink)
    assert (len(kept.sink.sent), len(removed.sink.sent)) == (2, 1)


def test_a_packet_goes_from_the_ingress_to_the_subscribers_sink():
    ingress, _, _ = make_ingress(media(ssrcs=[2001, 2002]))
    publication = ingress.publications["1"]
    downtrack = downtrack_for(publication, 31)
    ingress.on_rtp(rtp(500, 9000, ssrc=2001, payload=vp8_payload(keyframe=True)), 0)
    assert isinstance(downtrack.sink, Sink)
    [out] = downtrack.sink.sent
    packet = parse_rtp(out)
    assert packet is not None and (packet.ssrc, packet.payload_type) == (31, 100)
    assert ingress.last_packet_ms > 0


def test_the_ingress_learns_a_simulcast_layer_from_its_rid_and_unwraps_its_retransmissions():
    extensions = [(4, MID_URI), (10, RID_URI), (11, REPAIRED_RID_URI), (5, TWCC_URI)]
    ingress, _, _ = make_ingress(media(rids=["q", "h", "f"], extensions=extensions))
    publication = ingress.publications["1"]
    downtrack = downtrack_for(publication, 31)
    downtrack.selector.set_target(1)
    first = [(4, b"1"), (10, b"h"), (5, b"\x00\x07")]
    ingress.on_rtp(rtp(100, 0, ssrc=5000, payload=vp8_payload(keyframe=True), extensions=first), 0)
    # Chrome names mid and rid only in the first packets: the SSRC is remembered.
    ingress.on_rtp(rtp(102, 0, ssrc=5000, payload=vp8_payload(keyframe=False, start=False)), 0)
    lost = vp8_payload(keyframe=False, start=False, size=50)
    rtx = rtp(7, 0, ssrc=5001, payload_type=97, payload=b"\x00\x65" + lost, extensions=[(11, b"h")])
    ingress.on_rtp(rtx, 0)
    stream = publication.layers[1]
    assert stream is not None and (stream.ssrc, stream.rid, stream.rtx_ssrc) == (5000, "h", 5001)
    assert (stream.packets_received, stream.rtx_packets) == (3, 1)
    assert isinstance(downtrack.sink, Sink)
    restored = parse_rtp(downtrack.sink.sent[-1])
    assert restored is not None and restored.payload == lost
    [feedback] = ingress.twcc.build_feedback(1, 5000)
    assert parse_twcc(feedback).base_seq == 7


def test_audio_levels_go_to_the_speaker_detector_under_the_participants_id():
    audio = media("audio", "0", ssrcs=[1001], extensions=[(1, AUDIO_LEVEL_URI)])
    ingress, publisher, levels = make_ingress(audio)
    ingress.on_rtp(rtp(1, 0, ssrc=1001, payload_type=111, extensions=[(1, bytes([0x80 | 25]))]), 0)
    assert levels.levels == [(publisher.id, 25)]


def test_the_ingress_keeps_sender_reports_and_hands_subscriber_feedback_on():
    feedback = Feedback()
    ingress, _, _ = make_ingress(media(ssrcs=[2001]), feedback=feedback)
    ingress.on_rtcp(build_sender_report(2001, 1 << 40, 90000, 10, 1000))
    stream = ingress.publications["1"].layers[0]
    assert stream is not None and stream.sr_clock.known
    block = ReportBlock(
        77, fraction_lost=64, packets_lost=1, highest_ext_seq=5, jitter=0, lsr=0, dlsr=0
    )
    ingress.on_rtcp(build_receiver_report(1, [block]))
    ingress.on_rtcp(build_nack(1, 77, [5, 6]))
    ingress.on_rtcp(build_pli(1, 77))
    ingress.on_rtcp(build_remb(1, 500_000, [77]))
    assert feedback.calls == [
        ("receiver_report", 77, 0.25),
        ("nack", 77, (5, 6)),
        ("keyframe_request", 77),
        ("remb", 500_000),
    ]
    ingress.on_rtcp(b"\x80\xc9\x00\x09")
    assert ingress.rtcp_errors == 1


def test_the_downlink_answers_a_nack_through_the_down_tracks_own_sink():
    notified: list[dict[str, object]] = []
    downlink = Downlink(notified.append)
    publisher = FakePublisher()
    publication = Publication(publisher, "t", "video", "1", 96, 90000, 500)
    stream = publication.add_stream(1111)
    downtrack = downtrack_for(publication, 41)
    downlink.add(downtrack)
    for seq in range(10, 14):
        keyframe = seq == 10
        stream.deliver(view(seq, 0, payload=vp8_payload(keyframe=keyframe, start=keyframe)), 0, 0)
    assert isinstance(downtrack.sink, Sink)
    lost_seq = parse_rtp(downtrack.sink.sent[2]).seq  # type: ignore[union-attr]
    downlink.nack(41, (lost_seq,), 1000)
    assert len(downtrack.sink.sent) == 5
    assert downtrack.sink.sent[-1][2:] == downtrack.sink.sent[2][2:]
    downlink.keyframe_request(41, 2000)
    assert publisher.plis == [1111]
    assert downlink.nacks_received == 1


def test_the_downlink_trusts_the_browsers_estimate_after_warming_up_and_reports_low_bandwidth():
    notified: list[dict[str, object]] = []
    downlink = Downlink(notified.append)
    downlink.connected_ms = 0
    downlink.remb(100_000, 1000)
    assert downlink.downlink_estimate_bps is None
    downlink.remb(100_000, 6000)
    assert downlink.downlink_estimate_bps == 100_000
    downlink.allocate(6000)
    assert notified == [{"type": "bandwidth", "downlink_bps": 100_000, "low": True}]


def local() -> LocalTransport:
    return LocalTransport("uf", "pw" * 11, "sha-256", "AA:BB", [])


def test_negotiation_takes_one_offer_then_makes_its_own_offers_one_at_a_time():
    negotiation = Negotiation()
    remote, offered = negotiation.take_offer(CHROME_OFFER)
    assert remote.ice_ufrag == "abcd" and [m.mid for m in offered] == ["0", "1"]
    assert negotiation.abs_send_time_id == 2
    try:
        negotiation.take_offer(CHROME_OFFER)
    except SignallingError as exc:
        assert exc.code == "unexpected_message"
    else:
        raise AssertionError("a second offer was taken")
    assert not negotiation.offer_due()  # before the answer, an offer waits
    negotiation.answer_sent()
    assert negotiation.next_offer() is None  # nothing new for the page
    publication = Publication(FakePublisher(), "t", "video", "1", 96, 90000, 500)
    line = negotiation.add_send_line(publication)
    assert (line.mid, line.payload_type) == ("2", 96) and line.ssrc in negotiation.ssrcs
    assert negotiation.offer_due()
    assert negotiation.next_offer() == ["0", "1", "2"]
    offer = negotiation.describe("actpass", local())
    assert not negotiation.offer_due() and negotiation.offer_pending
    negotiation.take_answer(offer)
    assert negotiation.negotiated_mids == {"0", "1", "2"}
    negotiation.remove_send_line("2")
    assert "2" not in negotiation.negotiated_mids
    assert negotiation.offer_due() and negotiation.next_offer() == ["0", "1", "2"]
    assert "a=inactive" in negotiation.describe("actpass", local()).split("m=video")[-1]


def test_layers_nobody_wants_for_ten_seconds_are_paused_and_the_lowest_stays_on():
    publication = Publication(FakePublisher(), "t", "video", "1", 96, 90000, 500, ["q", "h", "f"])
    downtrack = downtrack_for(publication, 51)
    downtrack.wanted_layer = 0
    layers = PublisherLayers()
    assert layers.update([publication], 0) == []
    assert layers.update([publication], 9999) == []
    assert layers.update([publication], 10000) == [publication]
    assert publication.active_layers == {"q": True, "h": False, "f": False}
    downtrack.wanted_layer = 2
    assert layers.update([publication], 10500) == [publication]
    assert publication.active_layers == {"q": True, "h": False, "f": True}


def timer_for(
    transport: FakeTransport, ingress: Ingress, expired: list[bool], notified: list[object]
) -> RtcpTimer:
    config = SfuConfig(rtc_ips=("127.0.0.1",), allowed_networks=LOOPBACK_NETWORKS)
    return RtcpTimer(
        transport,
        ingress,
        Downlink(notified.append),
        config,
        rtcp_ssrc=99,
        cname="me",
        created_ms=0,
        notify=notified.append,
        expire=lambda: expired.append(True),
    )


def test_the_timer_asks_the_publisher_again_for_a_missing_packet_and_reports_reception():
    ingress, _, _ = make_ingress(media(ssrcs=[2001]))
    stream = ingress.publications["1"].layers[0]
    assert stream is not None
    stream.receive(view(10, 0, ssrc=2001), 1000)
    stream.receive(view(12, 0, ssrc=2001), 1000)
    ingress.last_packet_ms = 1000
    transport, expired, notified = FakeTransport(), [], []
    timer = timer_for(transport, ingress, expired, notified)
    timer.tick(1050)
    messages = [m for data in transport.rtcp for m in parse_rtcp(data)]
    [nack] = [m for m in messages if isinstance(m, Nack)]
    assert (nack.media_ssrc, nack.lost) == (2001, (11,))
    [report] = [m for m in messages if isinstance(m, ReceiverReport)]
    assert report.ssrc == 99 and [b.ssrc for b in report.reports] == [2001]
    assert any(isinstance(m, Remb) for m in messages)
    assert timer.nacks_sent == 1 and expired == []


def test_the_timer_expires_a_participant_whose_media_stops_or_that_never_connects():
    ingress, _, _ = make_ingress()
    expired: list[bool] = []
    timer_for(FakeTransport(), ingress, expired, []).tick(8001)
    assert expired == [True]
    waiting = timer_for(FakeTransport("connecting"), ingress, expired, [])
    waiting.tick(20000)
    assert expired == [True]
    waiting.tick(20001)
    assert expired == [True, True]


def test_abs_send_time_is_seconds_in_six_dot_eighteen_fixed_point():
    assert abs_send_time(1_000_000_000) == 1 << 18
    assert abs_send_time(1_500_000_000) == (1 << 18) + (1 << 17)


class DatagramTransport:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def sendto(self, data: bytes, addr: object = None) -> None:
        self.sent.append(data)


class Person:
    id, name, role = "publisher-1", "Ada", "employee"


def test_the_recording_tap_is_one_more_sink_of_the_published_streams_fan_out():
    publication = Publication(FakePublisher(), "t", "video", "1", 96, 90000, 500)
    stream = publication.add_stream(1111)
    subscriber = downtrack_for(publication, 21)
    tap = RecordingTap("room", "rec-1", 5004)
    socket = DatagramTransport()
    tap.connection_made(socket)  # type: ignore[arg-type]
    person = Person()
    tap.add_publication(publication, person)  # type: ignore[arg-type]
    [recorded] = tap.downtracks.values()
    assert recorded.sink is tap and recorded in publication.downtracks
    stream.deliver(view(10, 0, payload=vp8_payload(keyframe=True)), 0, 0)
    rtp_out = [parse_rtp(data) for data in socket.sent if data[:1] != b"{"]
    assert [(p.ssrc, p.payload) for p in rtp_out if p is not None] == [
        (recorded.ssrc, vp8_payload(keyframe=True))
    ]
    assert isinstance(subscriber.sink, Sink) and len(subscriber.sink.sent) == 1
    tap.remove_participant(person)  # type: ignore[arg-type]
    assert publication.downtracks == [subscriber]
