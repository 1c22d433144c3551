"""Which incoming layer a subscriber gets, and when it may switch (pure, no I/O).

Layers are numbered from 0 (lowest). `preferred_layer` is what the subscriber's screen could use,
`target_layer` what the allocator decided (NO_LAYER: paused), `current_layer` what is forwarded now.
A video subscriber can only start or switch on a keyframe of the target layer; until then the
current layer keeps flowing.
"""

from __future__ import annotations

from sfu.drop_reason import DropReason

NO_LAYER = -1


class LayerSelector:
    __slots__ = ("current_layer", "needs_keyframe", "preferred_layer", "target_layer")

    def __init__(self, *, needs_keyframe: bool, preferred_layer: int = 0) -> None:
        self.needs_keyframe = needs_keyframe
        self.preferred_layer = preferred_layer
        self.target_layer = preferred_layer
        self.current_layer = NO_LAYER

    @property
    def waiting_for_keyframe(self) -> bool:
        return (
            self.needs_keyframe
            and self.target_layer != NO_LAYER
            and self.current_layer != self.target_layer
        )

    def set_target(self, layer: int) -> None:
        self.target_layer = layer

    def reset(self) -> None:
        """Start over (e.g. the publisher restarted): wait for a keyframe again."""
        self.current_layer = NO_LAYER

    def select(self, layer: int, is_keyframe: bool) -> DropReason:
        """Decide for one packet of `layer`. DropReason.NONE means forward it."""
        target = self.target_layer
        if target == NO_LAYER:
            self.current_layer = NO_LAYER
            return DropReason.PAUSED
        current = self.current_layer
        if layer == current:
            return DropReason.NONE
        if layer == target and (is_keyframe or not self.needs_keyframe):
            self.current_layer = layer
            return DropReason.NONE
        if current == NO_LAYER:
            return DropReason.WAITING_FOR_KEYFRAME
        return DropReason.LAYER_NOT_SELECTED
