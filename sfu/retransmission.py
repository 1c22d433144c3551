"""Retransmission buffer: recent packets of one published stream, by extended sequence number."""

from __future__ import annotations

from typing import NamedTuple

from sfu.rtp import RtpPacketView


class BufferedPacket(NamedTuple):
    """What a resend or a layer switch needs of a buffered packet."""

    ext_seq: int
    seq: int
    marker: bool
    timestamp: int
    payload: bytes
    padding_size: int
    is_keyframe: bool


class RetransmissionBuffer:
    """A ring of the last `capacity` packets. Shared by every subscriber of the stream.

    The fields are kept in parallel lists of numbers and bytes rather than as packet objects:
    numbers and bytes are invisible to Python's cyclic garbage collector, so thousands of buffered
    packets do not lengthen its pauses (packet objects would be scanned by every collection of
    the older generations: tens of milliseconds with a few dozen publishers, which is delay for
    every packet arriving meanwhile). Storing costs a few list assignments and no allocation.
    """

    __slots__ = (
        "_capacity",
        "_ext_seq",
        "_keyframe",
        "_marker",
        "_padding",
        "_payload",
        "_seq",
        "_timestamp",
    )

    def __init__(self, capacity: int = 512) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self._capacity = capacity
        self.clear()

    def store(self, packet: RtpPacketView) -> None:
        slot = packet.ext_seq % self._capacity
        self._ext_seq[slot] = packet.ext_seq
        self._seq[slot] = packet.seq
        self._marker[slot] = packet.marker
        self._timestamp[slot] = packet.timestamp
        self._payload[slot] = packet.payload
        self._padding[slot] = packet.padding_size
        self._keyframe[slot] = packet.is_keyframe

    def contains(self, ext_seq: int) -> bool:
        return ext_seq >= 0 and self._ext_seq[ext_seq % self._capacity] == ext_seq

    def get(self, ext_seq: int) -> BufferedPacket | None:
        if ext_seq < 0:
            return None
        slot = ext_seq % self._capacity
        if self._ext_seq[slot] != ext_seq:
            return None
        return BufferedPacket(
            ext_seq,
            self._seq[slot],
            self._marker[slot],
            self._timestamp[slot],
            self._payload[slot],
            self._padding[slot],
            self._keyframe[slot],
        )

    def packets(self) -> list[BufferedPacket]:
        """Every buffered packet (for diagnostics and tests), oldest slot first."""
        found = [self.get(ext_seq) for ext_seq in self._ext_seq if ext_seq >= 0]
        return [packet for packet in found if packet is not None]

    def clear(self) -> None:
        capacity = self._capacity
        self._ext_seq: list[int] = [-1] * capacity
        self._seq: list[int] = [0] * capacity
        self._marker: list[bool] = [False] * capacity
        self._timestamp: list[int] = [0] * capacity
        self._payload: list[bytes] = [b""] * capacity
        self._padding: list[int] = [0] * capacity
        self._keyframe: list[bool] = [False] * capacity
