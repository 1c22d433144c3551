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
