"""Which SFU worker a room lives on (pure).

Each room lives on one worker; a new room goes to the worker with the fewest participants among
the workers that are up. When a worker goes down, its rooms are forgotten, so their participants,
who reconnect by themselves, land on a worker that is up.
"""

from __future__ import annotations


class Placement:
    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError("at least one worker")
        self._up = [True] * workers
        self._rooms: dict[str, int] = {}
        self._participants = [0] * workers

    @property
    def workers(self) -> int:
        return len(self._up)

    def worker_for(self, room: str) -> int | None:
        """The room's worker; None when no worker is up."""
        worker = self._rooms.get(room)
        if worker is not None and self._up[worker]:
            return worker
        candidates = [index for index, up in enumerate(self._up) if up]
        if not candidates:
            return None
        worker = min(candidates, key=lambda index: (self._participants[index], index))
        self._rooms[room] = worker
        return worker

    def joined(self, worker: int) -> None:
        self._participants[worker] += 1

    def left(self, worker: int, room: str) -> None:
        self._participants[worker] = max(0, self._participants[worker] - 1)
        if self._participants[worker] == 0 or not self._up[worker]:
            return
        # A room stays placed while anyone might still be in it; the worker tells when it empties.

    def room_empty(self, room: str) -> None:
        self._rooms.pop(room, None)

    def down(self, worker: int) -> list[str]:
        """The worker stopped: forget its rooms (returned) and its participants."""
        self._up[worker] = False
        self._participants[worker] = 0
        rooms = [room for room, index in self._rooms.items() if index == worker]
        for room in rooms:
            del self._rooms[room]
        return rooms

    def up(self, worker: int) -> None:
        self._up[worker] = True

    def is_up(self, worker: int) -> bool:
        return self._up[worker]

    def load(self) -> list[int]:
        return list(self._participants)
