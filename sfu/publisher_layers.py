"""Which simulcast layers a publisher is asked to send: those its subscribers want (pure).

Layers nobody wants for a while are paused at the publisher (the page sets the encoding
inactive) and resumed when someone wants them again. The lowest layer always stays on, so a
newcomer sees a picture at once.
"""

from __future__ import annotations

from collections.abc import Iterable

from sfu.publication import Publication

LAYER_PAUSE_AFTER_MS = 10000


class PublisherLayers:
    """Remembers since when each layer of each publication has been unwanted."""

    def __init__(self, pause_after_ms: int = LAYER_PAUSE_AFTER_MS) -> None:
        self._pause_after_ms = pause_after_ms
        self._unwanted_since: dict[tuple[str, int], int] = {}

    def update(self, publications: Iterable[Publication], now: int) -> list[Publication]:
        """Set each publication's `active_layers`; returns the publications whose set changed."""
        changed = []
        for publication in publications:
            if not publication.rids:
                continue
            wanted = {0}
            for downtrack in publication.downtracks:
                wanted.add(downtrack.wanted_layer)
                wanted.add(downtrack.current_layer)
            active = dict(publication.active_layers)
            for layer, rid in enumerate(publication.rids):
                key = (publication.mid, layer)
                if layer in wanted:
                    self._unwanted_since.pop(key, None)
                    active[rid] = True
                else:
                    since = self._unwanted_since.setdefault(key, now)
                    if now - since >= self._pause_after_ms:
                        active[rid] = False
            if active != publication.active_layers:
                publication.active_layers = active
                changed.append(publication)
        return changed
