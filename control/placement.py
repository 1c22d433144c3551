"""Which SFU worker a room lives on (pure).

Each room lives on one worker; a new room goes to the worker with the fewest participants among
the workers that are up. A room stays on its worker while anyone holds a place in it (a join under
way or a session) and while the worker still reports it (participants in their reconnect grace
period), so a page that reconnects lands in the same room. When a worker goes down, its rooms are
forgotten, so their participants, who reconnect by themselves, land on a worker that is up.
"""

from __future__ import annotations


class Placement:
    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError("at least one worker")
        self._up = [True] * workers
        self._rooms: dict[str, int] = {}
        self._holders: dict[str, int] = {}  # joins under way and sessions, by room
        self._participants = [0] * workers

    @property
    def workers(self) -> int:
        return len(self._up)

    def worker_for(self, room: str) -> int | None:
        """The room's worker, holding a place in the room; None when no worker is up.

        Every call that returns a worker must be followed by `release(room)` once the join
        failed or the session ended.
        """
        worker = self._rooms.get(room)
        if worker is None or not self._up[worker]:
            candidates = [index for index, up in enumerate(self._up) if up]
            if not candidates:
                return None
            worker = min(candidates, key=lambda index: (self._participants[index], index))
            self._rooms[room] = worker
        self._holders[room] = self._holders.get(room, 0) + 1
        self._participants[worker] += 1
        return worker

    def release(self, room: str) -> None:
        """A join failed or a session ended."""
        held = self._holders.get(room, 0) - 1
        if held > 0:
            self._holders[room] = held
        else:
            self._holders.pop(room, None)
        worker = self._rooms.get(room)
        if worker is not None:
            self._participants[worker] = max(0, self._participants[worker] - 1)

    def reported(self, worker: int, rooms: set[str]) -> None:
        """The rooms a worker has now: forget its rooms nobody holds and it no longer has."""
        for room in [r for r, index in self._rooms.items() if index == worker]:
            if room not in rooms and not self._holders.get(room):
                del self._rooms[room]

    def placed(self, room: str) -> int | None:
        return self._rooms.get(room)

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
