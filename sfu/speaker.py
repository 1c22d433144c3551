"""Who is speaking, from the audio levels publishers put in their packets (RFC 6464; pure).

A level is in -dBov, 0 (loudest) to 127 (silence). A participant speaks when enough of its
packets in the last window were louder than the threshold. The active speaker changes only to
someone clearly speaking more, or when the current one has been quiet for a while.
"""

from __future__ import annotations

from collections import deque

LOUD_DBOV = 50  # packets at least this loud count as speech
WINDOW_MS = 1500
MIN_LOUD_PACKETS = 8  # of about 75 packets in the window
QUIET_RELEASE_MS = 2000
SWITCH_MARGIN = 1.5


class ActiveSpeakerDetector:
    def __init__(self) -> None:
        self._loud: dict[str, deque[int]] = {}
        self.active: str | None = None
        self._active_quiet_since_ms: int | None = None

    def level(self, participant_id: str, level_dbov: int, now_ms: int) -> None:
        """One audio packet's level. Cheap: only loud packets are stored."""
        if level_dbov <= LOUD_DBOV:
            history = self._loud.get(participant_id)
            if history is None:
                history = self._loud[participant_id] = deque()
            history.append(now_ms)

    def remove(self, participant_id: str) -> None:
        self._loud.pop(participant_id, None)
        if self.active == participant_id:
            self.active = None

    def _score(self, participant_id: str, now_ms: int) -> int:
        history = self._loud.get(participant_id)
        if not history:
            return 0
        while history and now_ms - history[0] > WINDOW_MS:
            history.popleft()
        return len(history)

    def poll(self, now_ms: int) -> tuple[bool, str | None]:
        """(changed, active speaker or None)."""
        scores = {pid: self._score(pid, now_ms) for pid in list(self._loud)}
        best = max(scores, key=lambda pid: scores[pid], default=None)
        best_score = scores.get(best, 0) if best is not None else 0
        current = self.active
        current_score = scores.get(current, 0) if current is not None else 0
        if current is not None:
            if current_score >= MIN_LOUD_PACKETS:
                self._active_quiet_since_ms = None
            elif self._active_quiet_since_ms is None:
                self._active_quiet_since_ms = now_ms
        new = current
        if best is not None and best_score >= MIN_LOUD_PACKETS and best != current:
            if current is None or best_score > current_score * SWITCH_MARGIN:
                new = best
        if (
            new == current
            and current is not None
            and self._active_quiet_since_ms is not None
            and now_ms - self._active_quiet_since_ms >= QUIET_RELEASE_MS
        ):
            new = None
        if new != current:
            self.active = new
            self._active_quiet_since_ms = None
            return True, new
        return False, current
