from sfu.keyframe import KeyframeRequestThrottle
from sfu.nack import NackGenerator
from sfu.retransmission import RetransmissionBuffer
from sfu.rtcp import (
    Bye,
    FullIntraRequest,
    Nack,
    PictureLossIndication,
    ReceiverReport,
    Remb,
    ReportBlock,
    RtcpError,
    SenderReport,
    build_bye,
    build_fir,
    build_nack,
    build_pli,
    build_receiver_report,
    build_remb,
    build_sdes_cname,
    build_sender_report,
    parse_rtcp,
)
from sfu.sender_report import SenderReportClock, ntp_from_unix
from tests.packets import view


def test_a_compound_rtcp_packet_round_trips():
    compound = (
        build_sender_report(7, ntp_from_unix(1.5e9), 1234, 10, 1000)
        + build_sdes_cname(7, "abc")
        + build_receiver_report(8, [ReportBlock(9, 12, -3, 70000, 5, 6, 7)])
        + build_pli(8, 9)
        + build_fir(8, 9, 3)
        + build_nack(8, 9, [10, 11, 26, 27, 60000])
        + build_remb(8, 1_500_000, [9, 10])
        + build_bye([7])
    )
    messages = list(parse_rtcp(compound))
    assert isinstance(messages[0], SenderReport) and messages[0].rtp_timestamp == 1234
    assert messages[1] == ReceiverReport(8, (ReportBlock(9, 12, -3, 70000, 5, 6, 7),))
    assert messages[2] == PictureLossIndication(8, 9)
    assert messages[3] == FullIntraRequest(8, (9,))
    assert isinstance(messages[4], Nack) and sorted(messages[4].lost) == [10, 11, 26, 27, 60000]
    assert isinstance(messages[5], Remb) and messages[5].ssrcs == (9, 10)
    assert abs(messages[5].bitrate_bps - 1_500_000) < 1_500_000 / 1000
    assert messages[6] == Bye((7,))


def test_malformed_rtcp_raises_after_the_good_part():
    good = build_pli(1, 2)
    parsed = []
    try:
        for message in parse_rtcp(good + b"\x80\xc9\x00\x09"):
            parsed.append(message)
    except RtcpError:
        pass
    else:
        raise AssertionError("no error for a truncated packet")
    assert parsed == [PictureLossIndication(1, 2)]


def test_the_retransmission_buffer_returns_only_the_packet_asked_for():
    buffer = RetransmissionBuffer(capacity=4)
    for ext_seq in range(100, 106):
        packet = view(ext_seq & 0xFFFF)
        packet.ext_seq = ext_seq
        buffer.store(packet)
    assert buffer.get(105) is not None and buffer.get(105).ext_seq == 105
    assert buffer.get(101) is None  # overwritten by 105
    assert buffer.get(200) is None
    assert buffer.get(-1) is None


def test_keyframe_requests_are_throttled_and_a_throttled_one_is_sent_later():
    throttle = KeyframeRequestThrottle(interval_ms=500)
    assert throttle.request(1000)
    assert not throttle.request(1100)
    assert not throttle.request(1200)
    assert not throttle.poll(1400)
    assert throttle.poll(1500)
    assert not throttle.poll(1600)  # only once


def test_a_keyframe_cancels_a_pending_request():
    throttle = KeyframeRequestThrottle(interval_ms=500)
    throttle.request(0)
    throttle.request(100)
    throttle.keyframe_received()
    assert not throttle.poll(600)


def test_missing_packets_are_nacked_a_bounded_number_of_times():
    nack = NackGenerator(retry_interval_ms=40, max_tries=3, max_age_ms=1000)
    nack.packet_received(100, 0)
    nack.packet_received(103, 0)
    assert nack.due(0) == [101, 102]
    assert nack.due(10) == []
    nack.packet_received(101, 20)
    assert nack.due(50) == [102]
    assert nack.due(100) == [102]
    assert nack.due(200) == []  # three tries used


def test_huge_gaps_are_not_nacked():
    nack = NackGenerator()
    nack.packet_received(100, 0)
    nack.packet_received(5000, 0)
    assert nack.due(0) == []


def test_sender_report_clock_projects_the_publishers_time():
    clock = SenderReportClock(90000)
    ntp = ntp_from_unix(1_700_000_000.0)
    clock.update(ntp, 1000, now_ms=5000)
    projected_ntp, projected_rtp = clock.project(now_ms=5500)
    assert projected_rtp == 1000 + 45000
    assert projected_ntp - ntp == (500 << 32) // 1000
    assert clock.delay_since_last_sr(5500) == 32768
