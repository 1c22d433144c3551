"""Layer selection, allocation, VP8 numbering and active speaker, with synthetic packet streams."""

from sfu.allocation import BandwidthAllocator, VideoDemand, layer_for_size
from sfu.downtrack import DownTrack
from sfu.drop_reason import DropReason
from sfu.layer_selector import NO_LAYER
from sfu.publication import Publication
from sfu.rtp import parse_rtp
from sfu.speaker import ActiveSpeakerDetector
from sfu.vp8 import Vp8Munger, vp8_keyframe_size
from tests.packets import view, vp8_payload
from tests.sfu_fakes import FakePublisher, Sink

SIZES = [(320, 180), (640, 360), (1280, 720)]


def simulcast():
    publisher = FakePublisher()
    publication = Publication(publisher, "cam", "video", "1", 96, 90000, 500, rids=["q", "h", "f"])
    streams = [publication.add_stream(1000 + layer, layer, rid) for layer, rid in enumerate("qhf")]
    downtrack = DownTrack(publication, "7", 4242, 96, Sink(), 100, 5000)
    downtrack.active = True
    return publisher, publication, streams, downtrack


def send(stream, downtrack, seq, timestamp, now_ms, keyframe=False, picture_id=0, start=True):
    packet = view(
        seq,
        timestamp,
        ssrc=stream.ssrc,
        payload=vp8_payload(keyframe=keyframe, start=start, picture_id=picture_id),
    )
    assert stream.receive(packet, now_ms)
    out = downtrack.forward(stream, packet, now_ms)
    return parse_rtp(out) if out is not None else None


def picture_id(packet) -> int:
    return ((packet.payload[2] & 0x7F) << 8) | packet.payload[3]


def test_a_subscriber_switches_up_and_down_only_on_keyframes_with_continuous_numbers():
    _, _, (q, h, f), downtrack = simulcast()
    downtrack.selector.set_target(2)
    assert send(f, downtrack, 10, 0, 0, picture_id=500) is None  # waits for a keyframe
    first = send(f, downtrack, 11, 3000, 33, keyframe=True, picture_id=501)
    assert (first.seq, picture_id(first)) == (100, 501)
    assert send(q, downtrack, 70, 9000, 33, keyframe=True, picture_id=20) is None  # not selected
    downtrack.selector.set_target(0)
    assert picture_id(send(f, downtrack, 12, 6000, 66, picture_id=502)) == 502  # keeps f meanwhile
    assert send(q, downtrack, 71, 12000, 66, picture_id=21) is None  # q not at a keyframe yet
    down = send(q, downtrack, 72, 15000, 99, keyframe=True, picture_id=22)
    assert down.seq == 102 and picture_id(down) == 503
    assert send(f, downtrack, 13, 9000, 99, picture_id=503) is None
    assert picture_id(send(q, downtrack, 73, 18000, 133, picture_id=23)) == 504
    downtrack.selector.set_target(1)
    up = send(h, downtrack, 900, 1, 166, keyframe=True, picture_id=7000)
    assert up.seq == 104 and picture_id(up) == 505
    assert downtrack.layer_switches == 2


def test_picture_ids_wrap_around_15_bits_after_a_switch():
    _, _, (q, h, _), downtrack = simulcast()
    downtrack.selector.set_target(0)
    send(q, downtrack, 1, 0, 0, keyframe=True, picture_id=0x7FFE)
    downtrack.selector.set_target(1)
    up = send(h, downtrack, 50, 0, 33, keyframe=True, picture_id=10)
    assert picture_id(up) == 0x7FFF
    assert picture_id(send(h, downtrack, 51, 3000, 66, picture_id=11)) == 0


def test_loss_on_the_selected_layer_stays_a_gap_for_the_subscriber():
    _, _, (q, _, _), downtrack = simulcast()
    downtrack.selector.set_target(0)
    send(q, downtrack, 1, 0, 0, keyframe=True)
    assert send(q, downtrack, 4, 3000, 33).seq == 103


def test_a_paused_video_receives_nothing():
    _, _, (q, _, _), downtrack = simulcast()
    downtrack.selector.set_target(NO_LAYER)
    assert send(q, downtrack, 1, 0, 0, keyframe=True) is None
    assert downtrack.drops[DropReason.PAUSED] == 1


def test_a_new_subscriber_is_sent_abs_send_time_so_its_browser_can_estimate_the_downlink():
    publisher = FakePublisher()
    publication = Publication(publisher, "cam", "video", "1", 96, 90000, 500)
    stream = publication.add_stream(5)
    downtrack = DownTrack(publication, "3", 77, 96, Sink(), 0, 0, abs_send_time_id=3)
    downtrack.active = True
    packet = view(1, 0, ssrc=5, payload=vp8_payload(keyframe=True))
    stream.receive(packet, 0)
    out = parse_rtp(downtrack.forward(stream, packet, 0, abs_send_time=0x123456))
    assert out.extension_profile == 0xBEDE
    assert out.extension[:4] == bytes([0x32, 0x12, 0x34, 0x56])
    assert out.payload == vp8_payload(keyframe=True)


def test_layers_are_chosen_by_the_rendered_size():
    assert layer_for_size(160, 90, SIZES, 3) == 0
    assert layer_for_size(500, 280, SIZES, 3) == 1
    assert layer_for_size(1000, 560, SIZES, 3) == 2
    assert layer_for_size(3000, 2000, SIZES, 3) == 2
    assert layer_for_size(160, 90, [None, None, None], 3) == 0
    assert layer_for_size(500, 300, [], 1) == 0


def demand(key="v", visible=True, max_layer=2, flowing=(True, True, True), current=2):
    return VideoDemand(
        key, visible, max_layer, [150_000, 500_000, 1_500_000], list(flowing), current
    )


def test_without_an_estimate_the_size_decides():
    choice = BandwidthAllocator().allocate(None, 0.0, 40_000, [demand()], 0)["v"]
    assert (choice.wanted_layer, choice.target_layer) == (2, 2)


def test_a_hidden_video_is_paused():
    choice = BandwidthAllocator().allocate(None, 0.0, 40_000, [demand(visible=False)], 0)["v"]
    assert choice.target_layer == NO_LAYER


def test_a_weak_downlink_gets_a_lower_layer_and_does_not_flap_back_at_once():
    allocator = BandwidthAllocator()
    assert allocator.allocate(None, 0.0, 40_000, [demand()], 0)["v"].target_layer == 2
    weak = allocator.allocate(300_000, 0.0, 40_000, [demand(current=2)], 1000)["v"]
    assert weak.target_layer == 0 and allocator.congested
    # The estimate recovers a little (REMB ~1.5x what it receives): no upgrade during back-off.
    assert (
        allocator.allocate(600_000, 0.0, 40_000, [demand(current=0)], 2000)["v"].target_layer == 0
    )
    # After the back-off (8 s), headroom without loss allows a probe upward.
    assert (
        allocator.allocate(600_000, 0.0, 40_000, [demand(current=0)], 9500)["v"].target_layer == 2
    )
    # The probe congests: down again, and the back-off doubles to 16 s.
    assert (
        allocator.allocate(400_000, 0.0, 40_000, [demand(current=2)], 10000)["v"].target_layer == 0
    )
    assert (
        allocator.allocate(900_000, 0.0, 40_000, [demand(current=0)], 20000)["v"].target_layer == 0
    )
    assert (
        allocator.allocate(900_000, 0.0, 40_000, [demand(current=0)], 26100)["v"].target_layer == 2
    )


def test_a_steady_estimate_below_the_rate_is_not_taken_for_congestion():
    allocator = BandwidthAllocator()
    allocator.allocate(None, 0.0, 40_000, [demand()], 0)
    choice = allocator.allocate(1_200_000, 0.0, 40_000, [demand(current=2)], 1000, False)["v"]
    assert choice.target_layer == 2 and not allocator.congested


def test_with_loss_as_the_only_signal_probing_goes_up_one_layer_at_a_time():
    allocator = BandwidthAllocator()
    allocator.allocate(None, 0.0, 40_000, [demand()], 0)
    # The budget shrinks with the loss: heavy loss goes straight to the lowest layer.
    assert allocator.allocate(None, 0.8, 40_000, [demand(current=2)], 1000)["v"].target_layer == 0
    # After the back-off (8 s) and within 15 s of the congestion: one layer up at a time.
    assert allocator.allocate(None, 0.0, 40_000, [demand(current=0)], 9500)["v"].target_layer == 1
    assert allocator.allocate(None, 0.0, 40_000, [demand(current=1)], 12000)["v"].target_layer == 1
    # Later on, a calm link gets what the screen needs at once.
    assert allocator.allocate(None, 0.0, 40_000, [demand(current=1)], 17600)["v"].target_layer == 2


def test_loss_on_the_lowest_layer_means_the_link_is_too_weak_for_video():
    allocator = BandwidthAllocator()
    allocator.allocate(None, 0.0, 40_000, [demand(max_layer=0, current=0)], 0)
    allocator.allocate(None, 0.3, 40_000, [demand(max_layer=0, current=0)], 1000)
    assert allocator.struggling


def test_heavy_loss_counts_as_congestion():
    allocator = BandwidthAllocator()
    choice = allocator.allocate(5_000_000, 0.3, 40_000, [demand()], 0)["v"]
    assert choice.target_layer < 2


def test_a_layer_that_stops_is_replaced_by_the_best_one_still_flowing():
    allocator = BandwidthAllocator()
    choice = allocator.allocate(None, 0.0, 40_000, [demand(flowing=(True, True, False))], 0)["v"]
    assert (choice.wanted_layer, choice.target_layer) == (2, 1)
    only_top = allocator.allocate(
        None, 0.0, 40_000, [demand(max_layer=0, flowing=(False, False, True))], 0
    )
    assert only_top["v"].target_layer == 2  # better a larger picture than none


def test_two_videos_share_the_budget_largest_first_down():
    allocator = BandwidthAllocator()
    demands = [demand("a", current=2), demand("b", max_layer=1, current=1)]
    allocator.allocate(None, 0.0, 40_000, demands, 0)
    choices = allocator.allocate(1_100_000, 0.0, 40_000, demands, 1000)
    assert choices["a"].target_layer == 1 and choices["b"].target_layer == 1


def test_vp8_keyframe_size_is_read_from_the_frame_header():
    frame = (
        vp8_payload(keyframe=True, size=4)[:5]
        + b"\x00\x00\x9d\x01\x2a"
        + bytes([0x00, 0x05, 0xD0, 0x02])
    )
    assert vp8_keyframe_size(frame) == (1280, 720)
    assert vp8_keyframe_size(vp8_payload(keyframe=False)) is None


def test_the_vp8_munger_passes_payloads_unchanged_until_a_switch():
    munger = Vp8Munger()
    payload = vp8_payload(keyframe=True, picture_id=42)
    assert munger.rewrite(payload) is payload


def test_the_active_speaker_is_the_one_who_speaks_and_changes_with_hysteresis():
    detector = ActiveSpeakerDetector()
    for t in range(0, 1000, 20):
        detector.level("anna", 30, t)
        detector.level("bert", 127, t)
    assert detector.poll(1000) == (True, "anna")
    for t in range(1000, 1400, 20):
        detector.level("bert", 30, t)
    assert detector.poll(1400) == (False, "anna")  # anna still counts more in the window
    for t in range(1400, 3000, 20):
        detector.level("bert", 30, t)
    assert detector.poll(3000) == (True, "bert")
    assert detector.poll(4600) == (False, "bert")  # quiet from here on
    assert detector.poll(6700) == (True, None)


def test_when_even_the_lowest_layers_do_not_fit_the_smaller_video_is_paused():
    allocator = BandwidthAllocator()
    big = demand("big", max_layer=2, current=0)
    small = demand("small", max_layer=1, current=0)
    allocator.allocate(None, 0.0, 40_000, [big, small], 0)
    choices = allocator.allocate(None, 0.4, 80_000, [big, small], 1000)
    assert choices["big"].target_layer == 0
    assert choices["small"].target_layer == NO_LAYER
    # After the back-off, the paused video comes back first, at its lowest layer.
    later = allocator.allocate(None, 0.0, 80_000, [big, small], 9500)
    assert later["small"].target_layer == 0 and later["big"].target_layer == 0


def test_retransmissions_are_limited_on_a_congested_link():
    _, _, (q, _, _), downtrack = simulcast()
    downtrack.selector.set_target(0)
    sent = [send(q, downtrack, seq, seq * 3000, seq, keyframe=seq == 1) for seq in range(1, 101)]
    seqs = tuple(packet.seq for packet in sent[50:100])
    first = downtrack.retransmit(seqs, now_ms=1000)
    assert len(first) == 40  # the burst allowance
    assert downtrack.retransmit(seqs[:5], now_ms=1050) == []  # no credit left, and too soon
    assert downtrack.drops[DropReason.RETRANSMIT_LIMIT] >= 10


def test_making_a_video_small_and_large_again_switches_back_at_once():
    allocator = BandwidthAllocator()
    assert allocator.allocate(None, 0.0, 40_000, [demand()], 0)["v"].target_layer == 2
    small = allocator.allocate(None, 0.0, 40_000, [demand(max_layer=0, current=2)], 500)
    assert small["v"].target_layer == 0
    large = allocator.allocate(None, 0.0, 40_000, [demand(current=0)], 1000)
    assert large["v"].target_layer == 2
