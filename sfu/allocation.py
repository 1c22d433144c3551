"""Per-subscriber choice of video layers: screen size, downlink estimate, what is flowing (pure).

For each video a subscriber receives, the page reports how large it is shown and whether it is
visible. The allocator turns that, the subscriber's downlink estimate (REMB from its browser) and
its loss into a wanted layer per video (what the publisher should send) and a target layer (the
best layer that is actually flowing now).

Hysteresis: after a downgrade for congestion, no upgrade for a back-off time that doubles with
each congestion (8 s up to 32 s) and resets after a calm minute. Because a browser's REMB stays
near 1.5 x what it receives, an upgrade is also tried ("probing") when the estimate shows clear
headroom over the current rate and there is no loss; if that causes congestion, the next estimate
brings the layer down again and the back-off grows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

NO_LAYER = -1
DEFAULT_LAYER_SIZES = ((320, 180), (640, 360), (1280, 720))
HEADROOM = 1.3  # probe upward when the estimate is this much above the current rate
CONGESTION = 0.9  # congested when a falling estimate is below this share of the current rate
FAR_BELOW = 0.5  # ... or any estimate below this share
LOSS_CONGESTION = 0.1
MIN_BACKOFF_MS = 8000
MAX_BACKOFF_MS = 32000
CALM_RESET_MS = 60000
STEP_PROBING_MS = 15000  # after congestion, probe one layer at a time for this long
LOW_BANDWIDTH_BPS = 200_000


def layer_for_size(
    width: int, height: int, sizes: list[tuple[int, int] | None], layer_count: int
) -> int:
    """The smallest layer that covers the rendered size (within 20 %); the top one otherwise."""
    if layer_count <= 1:
        return 0
    for layer in range(layer_count):
        size = sizes[layer] if layer < len(sizes) else None
        if size is None:
            default = DEFAULT_LAYER_SIZES[min(layer, 2) + max(0, 3 - layer_count)]
            size = default
        if size[0] >= width * 0.8 and size[1] >= height * 0.8:
            return layer
    return layer_count - 1


@dataclass
class VideoDemand:
    """One video a subscriber receives."""

    key: str
    visible: bool
    max_layer: int  # by the rendered size
    bitrates: list[int]  # per layer: measured, or nominal when not flowing
    flowing: list[bool]  # per layer
    current_layer: int = NO_LAYER


@dataclass
class LayerChoice:
    wanted_layer: int  # what this subscriber would like the publisher to send
    target_layer: int  # what to forward now: the best flowing layer at most the wanted one


class BandwidthAllocator:
    """Decides layers for all videos of one subscriber; keeps the hysteresis state."""

    def __init__(self) -> None:
        self._backoff_ms = MIN_BACKOFF_MS
        self._no_upgrade_until_ms = 0
        self._last_congestion_ms = -CALM_RESET_MS
        self._wanted: dict[str, int] = {}
        self.congested = False

    def allocate(
        self,
        estimate_bps: int | None,
        loss_fraction: float,
        audio_bps: int,
        demands: list[VideoDemand],
        now_ms: int,
        estimate_falling: bool = True,
    ) -> dict[str, LayerChoice]:
        if now_ms - self._last_congestion_ms > CALM_RESET_MS:
            self._backoff_ms = MIN_BACKOFF_MS
        visible = [d for d in demands if d.visible and d.max_layer >= 0]
        wanted = {d.key: self._wanted.get(d.key, d.max_layer) for d in visible}
        for demand in visible:
            wanted[demand.key] = min(wanted[demand.key], demand.max_layer)

        def total(layers: dict[str, int]) -> int:
            rates = audio_bps
            for demand in visible:
                layer = layers[demand.key]
                if layer >= 0:
                    rates += demand.bitrates[min(layer, len(demand.bitrates) - 1)]
            return rates

        actual = {
            d.key: d.current_layer if d.current_layer >= 0 else wanted[d.key] for d in visible
        }
        current_total = total(actual)
        # A browser's REMB trails what it receives: below the current rate alone is no sign of
        # congestion, a falling estimate below it (or heavy loss, or far below it) is.
        self.congested = loss_fraction > LOSS_CONGESTION or (
            estimate_bps is not None
            and (
                (estimate_falling and estimate_bps < current_total * CONGESTION)
                or estimate_bps < current_total * FAR_BELOW
            )
        )
        if self.congested:
            budget = int(current_total * (1 - loss_fraction))
            if estimate_bps is not None:
                budget = min(budget, estimate_bps)
            wanted = {key: min(wanted[key], layer) for key, layer in actual.items()}
            self._reduce(wanted, visible, budget, total)
            self._no_upgrade_until_ms = now_ms + self._backoff_ms
            self._backoff_ms = min(MAX_BACKOFF_MS, self._backoff_ms * 2)
            self._last_congestion_ms = now_ms
        elif now_ms >= self._no_upgrade_until_ms:
            recently_congested = now_ms - self._last_congestion_ms < STEP_PROBING_MS
            if recently_congested and estimate_bps is None:
                # Only loss tells about this link: probe one layer at a time.
                upgraded = {d.key: min(d.max_layer, wanted[d.key] + 1) for d in visible}
                if any(layer < 0 for layer in wanted.values()):
                    # Resume a paused video (at its lowest layer) before raising any layer.
                    upgraded = {key: max(0, layer) for key, layer in wanted.items()}
            else:
                upgraded = {d.key: d.max_layer for d in visible}
            if (
                estimate_bps is None
                or total(upgraded) <= estimate_bps
                or (estimate_bps >= current_total * HEADROOM and loss_fraction < 0.02)
            ):
                if recently_congested and any(upgraded[k] > wanted[k] for k in upgraded):
                    # A probe after congestion: give it time to show loss before the next one.
                    self._no_upgrade_until_ms = now_ms + MIN_BACKOFF_MS
                wanted = upgraded
        self._wanted = dict(wanted)

        choices: dict[str, LayerChoice] = {}
        for demand in demands:
            layer = wanted.get(demand.key, NO_LAYER)
            choices[demand.key] = LayerChoice(layer, self._flowing_target(demand, layer))
        return choices

    @staticmethod
    def _reduce(
        wanted: dict[str, int],
        visible: list[VideoDemand],
        budget: int,
        total: Callable[[dict[str, int]], int],
    ) -> None:
        """Lower the highest layers first until the total fits; never below the lowest layer.

        Between equal layers, the video shown smaller gives way first; when even the lowest layers
        do not fit, the videos shown smallest are paused (one video always stays).
        """
        while total(wanted) > budget:
            candidates = [d for d in visible if wanted[d.key] > 0]
            if candidates:
                biggest = max(candidates, key=lambda d: (wanted[d.key], -d.max_layer))
                wanted[biggest.key] -= 1
                continue
            # Even the lowest layers do not fit: pause the videos shown smallest, keeping one.
            running = [d for d in visible if wanted[d.key] == 0]
            if len(running) <= 1:
                return
            smallest = min(running, key=lambda d: (d.max_layer, d.current_layer))
            wanted[smallest.key] = NO_LAYER

    @staticmethod
    def _flowing_target(demand: VideoDemand, wanted_layer: int) -> int:
        if wanted_layer < 0:
            return NO_LAYER
        for layer in range(min(wanted_layer, len(demand.flowing) - 1), -1, -1):
            if demand.flowing[layer]:
                return layer
        for layer in range(len(demand.flowing)):
            if demand.flowing[layer]:
                return layer  # only higher layers flow: better a larger picture than none
        return wanted_layer  # nothing flows yet: wait for the wanted layer

    @property
    def struggling(self) -> bool:
        """Congested although every video is at its lowest layer or paused: audio-only helps."""
        return self.congested and all(layer <= 0 for layer in self._wanted.values())

    def forget(self, key: str) -> None:
        self._wanted.pop(key, None)
