"""RTCP reading and writing (RFC 3550, RFC 4585, RFC 5104, REMB draft) for the forwarding unit."""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

RTCP_SR = 200
RTCP_RR = 201
RTCP_SDES = 202
RTCP_BYE = 203
RTCP_RTPFB = 205
RTCP_PSFB = 206

RTPFB_NACK = 1
RTPFB_TWCC = 15
PSFB_PLI = 1
PSFB_FIR = 4
PSFB_APP = 15  # REMB


@dataclass(frozen=True)
class SenderReport:
    ssrc: int
    ntp_timestamp: int  # 64-bit NTP
    rtp_timestamp: int
    packet_count: int
    octet_count: int


@dataclass(frozen=True)
class ReportBlock:
    ssrc: int
    fraction_lost: int
    packets_lost: int
    highest_ext_seq: int
    jitter: int
    lsr: int
    dlsr: int


@dataclass(frozen=True)
class ReceiverReport:
    ssrc: int
    reports: tuple[ReportBlock, ...] = ()


@dataclass(frozen=True)
class Nack:
    sender_ssrc: int
    media_ssrc: int
    lost: tuple[int, ...]  # 16-bit sequence numbers


@dataclass(frozen=True)
class PictureLossIndication:
    sender_ssrc: int
    media_ssrc: int


@dataclass(frozen=True)
class FullIntraRequest:
    sender_ssrc: int
    media_ssrcs: tuple[int, ...]


@dataclass(frozen=True)
class Remb:
    sender_ssrc: int
    bitrate_bps: int
    ssrcs: tuple[int, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Bye:
    ssrcs: tuple[int, ...]


RtcpMessage = (
    SenderReport | ReceiverReport | Nack | PictureLossIndication | FullIntraRequest | Remb | Bye
)


class RtcpError(ValueError):
    pass


def _report_blocks(data: bytes, offset: int, count: int) -> tuple[ReportBlock, ...]:
    blocks = []
    for _ in range(count):
        if offset + 24 > len(data):
            raise RtcpError("truncated report block")
        ssrc, lost_word, highest, jitter, lsr, dlsr = struct.unpack_from("!IIIIII", data, offset)
        packets_lost = lost_word & 0xFFFFFF
        if packets_lost & 0x800000:
            packets_lost -= 1 << 24
        blocks.append(ReportBlock(ssrc, lost_word >> 24, packets_lost, highest, jitter, lsr, dlsr))
        offset += 24
    return tuple(blocks)


def parse_rtcp(data: bytes) -> Iterator[RtcpMessage]:
    """Yield the messages of a compound RTCP packet this server understands; skip the others.

    Raises RtcpError on a malformed compound packet (after yielding what came before it).
    """
    offset = 0
    size = len(data)
    while offset < size:
        if offset + 4 > size:
            raise RtcpError("truncated RTCP header")
        first, packet_type, length = struct.unpack_from("!BBH", data, offset)
        if first >> 6 != 2:
            raise RtcpError("bad RTCP version")
        end = offset + 4 * (length + 1)
        if end > size:
            raise RtcpError("truncated RTCP packet")
        count = first & 0x1F
        body = offset + 4
        if packet_type == RTCP_SR:
            if body + 24 > end:
                raise RtcpError("truncated sender report")
            ssrc, ntp_hi, ntp_lo, rtp_ts, packets, octets = struct.unpack_from(
                "!IIIIII", data, body
            )
            yield SenderReport(ssrc, (ntp_hi << 32) | ntp_lo, rtp_ts, packets, octets)
            _report_blocks(data[:end], body + 24, count)
        elif packet_type == RTCP_RR:
            if body + 4 > end:
                raise RtcpError("truncated receiver report")
            (ssrc,) = struct.unpack_from("!I", data, body)
            yield ReceiverReport(ssrc, _report_blocks(data[:end], body + 4, count))
        elif packet_type == RTCP_BYE:
            if body + 4 * count > end:
                raise RtcpError("truncated BYE")
            yield Bye(struct.unpack_from(f"!{count}I", data, body))
        elif packet_type in (RTCP_RTPFB, RTCP_PSFB):
            if body + 8 > end:
                raise RtcpError("truncated feedback")
            sender_ssrc, media_ssrc = struct.unpack_from("!II", data, body)
            fci = body + 8
            if packet_type == RTCP_RTPFB and count == RTPFB_NACK:
                lost: list[int] = []
                for index in range(fci, end - 3, 4):
                    pid, blp = struct.unpack_from("!HH", data, index)
                    lost.append(pid)
                    for bit in range(16):
                        if blp & (1 << bit):
                            lost.append((pid + bit + 1) & 0xFFFF)
                yield Nack(sender_ssrc, media_ssrc, tuple(lost))
            elif packet_type == RTCP_PSFB and count == PSFB_PLI:
                yield PictureLossIndication(sender_ssrc, media_ssrc)
            elif packet_type == RTCP_PSFB and count == PSFB_FIR:
                ssrcs = tuple(
                    struct.unpack_from("!I", data, index)[0] for index in range(fci, end - 7, 8)
                )
                yield FullIntraRequest(sender_ssrc, ssrcs)
            elif packet_type == RTCP_PSFB and count == PSFB_APP:
                if fci + 8 <= end and data[fci : fci + 4] == b"REMB":
                    num_ssrc = data[fci + 4]
                    exponent = data[fci + 5] >> 2
                    mantissa = ((data[fci + 5] & 0x03) << 16) | (data[fci + 6] << 8) | data[fci + 7]
                    ssrcs = tuple(
                        struct.unpack_from("!I", data, fci + 8 + 4 * i)[0]
                        for i in range(num_ssrc)
                        if fci + 12 + 4 * i <= end
                    )
                    yield Remb(sender_ssrc, mantissa << exponent, ssrcs)
        offset = end


def _header(count: int, packet_type: int, body_length: int) -> bytes:
    return struct.pack("!BBH", 0x80 | count, packet_type, body_length // 4)


def build_sender_report(
    ssrc: int, ntp_timestamp: int, rtp_timestamp: int, packet_count: int, octet_count: int
) -> bytes:
    body = struct.pack(
        "!IIIIII",
        ssrc,
        (ntp_timestamp >> 32) & 0xFFFFFFFF,
        ntp_timestamp & 0xFFFFFFFF,
        rtp_timestamp & 0xFFFFFFFF,
        packet_count & 0xFFFFFFFF,
        octet_count & 0xFFFFFFFF,
    )
    return _header(0, RTCP_SR, len(body)) + body


def _pack_report_block(block: ReportBlock) -> bytes:
    lost = block.packets_lost
    lost = max(-(1 << 23), min((1 << 23) - 1, lost)) & 0xFFFFFF
    return struct.pack(
        "!IIIIII",
        block.ssrc,
        (min(255, block.fraction_lost) << 24) | lost,
        block.highest_ext_seq & 0xFFFFFFFF,
        block.jitter & 0xFFFFFFFF,
        block.lsr & 0xFFFFFFFF,
        block.dlsr & 0xFFFFFFFF,
    )


def build_receiver_report(ssrc: int, blocks: Sequence[ReportBlock]) -> bytes:
    body = struct.pack("!I", ssrc) + b"".join(_pack_report_block(b) for b in blocks[:31])
    return _header(min(31, len(blocks)), RTCP_RR, len(body)) + body


def build_sdes_cname(ssrc: int, cname: str) -> bytes:
    text = cname.encode()[:255]
    chunk = struct.pack("!IBB", ssrc, 1, len(text)) + text + b"\x00"
    while len(chunk) % 4:
        chunk += b"\x00"
    return _header(1, RTCP_SDES, len(chunk)) + chunk


def build_bye(ssrcs: Sequence[int]) -> bytes:
    body = b"".join(struct.pack("!I", s) for s in ssrcs[:31])
    return _header(min(31, len(ssrcs)), RTCP_BYE, len(body)) + body


def build_pli(sender_ssrc: int, media_ssrc: int) -> bytes:
    return _header(PSFB_PLI, RTCP_PSFB, 8) + struct.pack("!II", sender_ssrc, media_ssrc)


def build_fir(sender_ssrc: int, media_ssrc: int, sequence_number: int) -> bytes:
    body = struct.pack("!IIIB3x", sender_ssrc, 0, media_ssrc, sequence_number & 0xFF)
    return _header(PSFB_FIR, RTCP_PSFB, len(body)) + body


def build_nack(sender_ssrc: int, media_ssrc: int, lost: Sequence[int]) -> bytes:
    """Pack 16-bit sequence numbers into PID/BLP pairs."""
    pairs: list[bytes] = []
    ordered = sorted(set(s & 0xFFFF for s in lost))
    index = 0
    while index < len(ordered):
        pid = ordered[index]
        blp = 0
        index += 1
        while index < len(ordered):
            distance = (ordered[index] - pid) & 0xFFFF
            if not 1 <= distance <= 16:
                break
            blp |= 1 << (distance - 1)
            index += 1
        pairs.append(struct.pack("!HH", pid, blp))
    body = struct.pack("!II", sender_ssrc, media_ssrc) + b"".join(pairs)
    return _header(RTPFB_NACK, RTCP_RTPFB, len(body)) + body


def build_remb(sender_ssrc: int, bitrate_bps: int, ssrcs: Sequence[int]) -> bytes:
    exponent = 0
    mantissa = max(0, bitrate_bps)
    while mantissa >= (1 << 18):
        mantissa >>= 1
        exponent += 1
    body = (
        struct.pack("!II", sender_ssrc, 0)
        + b"REMB"
        + bytes(
            [
                len(ssrcs),
                (exponent << 2) | (mantissa >> 16),
                (mantissa >> 8) & 0xFF,
                mantissa & 0xFF,
            ]
        )
        + b"".join(struct.pack("!I", s) for s in ssrcs)
    )
    return _header(PSFB_APP, RTCP_PSFB, len(body)) + body
