"""Retransmission buffer: recent packets of one published stream, by extended sequence number."""

from __future__ import annotations

from sfu.rtp import RtpPacketView


class RetransmissionBuffer:
    """A ring of the last `capacity` packets. Shared by every subscriber of the stream."""

    __slots__ = ("_capacity", "_slots")

    def __init__(self, capacity: int = 512) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self._capacity = capacity
        self._slots: list[RtpPacketView | None] = [None] * capacity

    def store(self, packet: RtpPacketView) -> None:
        self._slots[packet.ext_seq % self._capacity] = packet

    def get(self, ext_seq: int) -> RtpPacketView | None:
        if ext_seq < 0:
            return None
        packet = self._slots[ext_seq % self._capacity]
        if packet is None or packet.ext_seq != ext_seq:
            return None
        return packet

    def clear(self) -> None:
        self._slots = [None] * self._capacity
