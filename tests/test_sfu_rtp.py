from sfu.rtp import is_rtcp, parse_rtp, read_header_extension
from sfu.seq import SequenceUnwrapper, seq_newer
from sfu.vp8 import vp8_is_keyframe
from tests.packets import rtp, vp8_payload


def test_parse_reads_the_fixed_header_and_keeps_the_payload():
    packet = parse_rtp(rtp(65535, 4_000_000_000, ssrc=42, payload=b"abc", marker=True))
    assert packet is not None
    assert (packet.seq, packet.timestamp, packet.ssrc, packet.marker) == (
        65535,
        4_000_000_000,
        42,
        True,
    )
    assert packet.payload == b"abc"


def test_parse_finds_the_payload_behind_header_extensions_and_reads_one_extension():
    data = rtp(1, payload=b"xyz", extensions=[(3, b"1"), (5, b"\x01\x02")])
    packet = parse_rtp(data)
    assert packet is not None and packet.payload == b"xyz"
    assert read_header_extension(packet.extension_profile, packet.extension, 3) == b"1"
    assert read_header_extension(packet.extension_profile, packet.extension, 5) == b"\x01\x02"
    assert read_header_extension(packet.extension_profile, packet.extension, 7) is None


def test_parse_recognises_padding_only_packets():
    packet = parse_rtp(rtp(1, payload=b"", padding=200))
    assert packet is not None and packet.is_padding_only


def test_parse_rejects_garbage_and_truncated_packets():
    assert parse_rtp(b"") is None
    assert parse_rtp(b"\x00" * 20) is None  # version 0
    assert parse_rtp(rtp(1)[:11]) is None
    bad_padding = bytearray(rtp(1, payload=b"ab"))
    bad_padding[0] |= 0x20
    bad_padding[-1] = 250
    assert parse_rtp(bytes(bad_padding)) is None


def test_rtcp_and_rtp_are_told_apart_by_packet_type():
    assert is_rtcp(bytes([0x80, 200, 0, 6]))
    assert not is_rtcp(rtp(1))


def test_unwrapping_continues_across_the_16_bit_wrap_and_tolerates_reordering():
    unwrapper = SequenceUnwrapper()
    first = unwrapper.unwrap(65534)
    assert unwrapper.unwrap(65535) == first + 1
    assert unwrapper.unwrap(0) == first + 2
    assert unwrapper.unwrap(65535) == first + 1  # late packet
    assert unwrapper.unwrap(2) == first + 4


def test_unwrapping_reports_a_restart_on_a_huge_jump():
    unwrapper = SequenceUnwrapper()
    unwrapper.unwrap(100)
    assert unwrapper.unwrap(30000) == -1


def test_newer_sequence_numbers_wrap():
    assert seq_newer(0, 65535)
    assert not seq_newer(65535, 0)


def test_vp8_keyframes_are_recognised_only_at_the_start_of_partition_zero():
    assert vp8_is_keyframe(vp8_payload(keyframe=True))
    assert not vp8_is_keyframe(vp8_payload(keyframe=False))
    assert not vp8_is_keyframe(vp8_payload(keyframe=True, start=False))
    assert vp8_is_keyframe(bytes([0x10, 0x00]))  # no extension bytes
    assert not vp8_is_keyframe(b"")
