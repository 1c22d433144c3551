"""VP8 payload descriptor (RFC 7741): just enough to recognise keyframes."""

from __future__ import annotations


def vp8_is_keyframe(payload: bytes) -> bool:
    """Whether the packet starts a VP8 keyframe (start of partition 0 with the P bit clear)."""
    size = len(payload)
    if size < 1:
        return False
    first = payload[0]
    if not first & 0x10 or first & 0x0F:  # S bit must be set and partition index 0
        return False
    index = 1
    if first & 0x80:  # X: extended control bits
        if size < 2:
            return False
        ext = payload[1]
        index = 2
        if ext & 0x80:  # I: picture id
            if size <= index:
                return False
            index += 2 if payload[index] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            index += 1
        if ext & 0x30:  # T or K: TID/Y/KEYIDX
            index += 1
    if index >= size:
        return False
    return not payload[index] & 0x01


def vp8_descriptor_size(payload: bytes) -> int:
    """Length of the VP8 payload descriptor, or 0 when the payload is too short to have one."""
    size = len(payload)
    if size < 1:
        return 0
    index = 1
    if payload[0] & 0x80:
        if size < 2:
            return 0
        ext = payload[1]
        index = 2
        if ext & 0x80:
            if size <= index:
                return 0
            index += 2 if payload[index] & 0x80 else 1
        if ext & 0x40:
            index += 1
        if ext & 0x30:
            index += 1
    return index if index <= size else 0


def vp8_keyframe_size(payload: bytes) -> tuple[int, int] | None:
    """(width, height) from the first packet of a VP8 keyframe (RFC 6386 section 9.1)."""
    start = vp8_descriptor_size(payload)
    if not start or len(payload) < start + 10:
        return None
    if payload[start + 3 : start + 6] != b"\x9d\x01\x2a":
        return None
    width = (payload[start + 6] | (payload[start + 7] << 8)) & 0x3FFF
    height = (payload[start + 8] | (payload[start + 9] << 8)) & 0x3FFF
    return width, height


class Vp8Munger:
    """Keeps VP8 picture ids and TL0PICIDX continuous for one subscriber across layer switches.

    Each simulcast layer numbers its pictures on its own; a decoder that sees the numbers jump
    back treats frames as old. On a switch (always at a keyframe) the offsets are chosen so the
    new layer continues where the last forwarded packet of the old one stopped. Until the first
    switch the offsets are zero and payloads pass unchanged (no per-packet work at all).
    """

    __slots__ = ("picture_id_offset", "tl0_offset")

    def __init__(self) -> None:
        self.picture_id_offset = 0
        self.tl0_offset = 0

    @staticmethod
    def _positions(payload: bytes) -> tuple[int, bool, int]:
        """(picture id index or -1, picture id is 15-bit, TL0PICIDX index or -1)."""
        if len(payload) < 2 or not payload[0] & 0x80:
            return -1, False, -1
        ext = payload[1]
        index = 2
        picture_index = -1
        long_id = False
        if ext & 0x80:
            if len(payload) <= index:
                return -1, False, -1
            picture_index = index
            long_id = bool(payload[index] & 0x80)
            index += 2 if long_id else 1
        tl0_index = index if ext & 0x40 and index < len(payload) else -1
        return picture_index, long_id, tl0_index

    @staticmethod
    def _read(payload: bytes, picture_index: int, long_id: bool) -> int:
        if long_id:
            return ((payload[picture_index] & 0x7F) << 8) | payload[picture_index + 1]
        return payload[picture_index] & 0x7F

    def switch(self, last_forwarded: bytes | None, first_of_new: bytes) -> None:
        """Continue the numbering of `last_forwarded` (as received) in the new layer."""
        if last_forwarded is None:
            return
        old_index, old_long, old_tl0_index = self._positions(last_forwarded)
        new_index, new_long, new_tl0_index = self._positions(first_of_new)
        if old_index >= 0 and new_index >= 0:
            mask = 0x7FFF if old_long else 0x7F
            last_out = (
                self._read(last_forwarded, old_index, old_long) + self.picture_id_offset
            ) & mask
            picture_id = self._read(first_of_new, new_index, new_long)
            self.picture_id_offset = (last_out + 1 - picture_id) & 0x7FFF
        if old_tl0_index >= 0 and new_tl0_index >= 0:
            last_tl0 = (last_forwarded[old_tl0_index] + self.tl0_offset) & 0xFF
            self.tl0_offset = (last_tl0 + 1 - first_of_new[new_tl0_index]) & 0xFF

    def rewrite(self, payload: bytes) -> bytes:
        """The payload with the numbers shifted by the current offsets."""
        if not self.picture_id_offset and not self.tl0_offset:
            return payload
        picture_index, long_id, tl0_index = self._positions(payload)
        if picture_index < 0 and tl0_index < 0:
            return payload
        out = bytearray(payload)
        if picture_index >= 0:
            if long_id:
                picture_id = (
                    self._read(payload, picture_index, True) + self.picture_id_offset
                ) & 0x7FFF
                out[picture_index] = 0x80 | (picture_id >> 8)
                out[picture_index + 1] = picture_id & 0xFF
            else:
                picture_id = (
                    self._read(payload, picture_index, False) + self.picture_id_offset
                ) & 0x7F
                out[picture_index] = picture_id
        if tl0_index >= 0:
            out[tl0_index] = (payload[tl0_index] + self.tl0_offset) & 0xFF
        return bytes(out)
