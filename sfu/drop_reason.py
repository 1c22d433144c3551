"""Why a packet was not forwarded to a subscriber."""

from __future__ import annotations

import enum


class DropReason(enum.IntEnum):
    NONE = 0
    WAITING_FOR_KEYFRAME = 1
    PADDING_ONLY = 2
    TOO_OLD = 3
    LAYER_NOT_SELECTED = 4
    TRANSPORT_NOT_READY = 5
    UNKNOWN_STREAM = 6
    MALFORMED = 7
    PAUSED = 8
    RETRANSMIT_LIMIT = 9
