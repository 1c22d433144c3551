"""A room: the participants of one counter conversation, and who receives whose tracks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from sfu.clock import now_ms
from sfu.config import SfuConfig
from sfu.errors import SignallingError
from sfu.metrics import MediaCounters, add_downtrack, participant_counters
from sfu.participant import Participant, SendMessage
from sfu.recording_tap import RecordingTap
from sfu.speaker import ActiveSpeakerDetector

logger = logging.getLogger(__name__)

SPEAKER_POLL_MS = 250


class Room:
    """Owns its participants and the background tasks it spawns for them."""

    def __init__(
        self,
        room_id: str,
        config: SfuConfig,
        on_empty: Callable[[Room], None],
        finished: MediaCounters | None = None,
    ) -> None:
        self.id = room_id
        self._finished = finished if finished is not None else MediaCounters()
        self.config = config
        self.participants: dict[str, Participant] = {}
        self._on_empty = on_empty
        self._tasks: set[asyncio.Task[None]] = set()
        self.speaker = ActiveSpeakerDetector()
        self._speaker_task: asyncio.Task[None] | None = None
        self.recording: RecordingTap | None = None

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run a coroutine in a task the room keeps until it ends (and cancels on close)."""
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("room task failed", exc_info=task.exception())

    def find_identity(self, identity: str) -> Participant | None:
        for participant in self.participants.values():
            if participant.identity == identity and not participant.closed:
                return participant
        return None

    async def join(self, identity: str, name: str, role: str, send: SendMessage) -> Participant:
        previous = self.find_identity(identity)
        if previous is not None:
            await previous.send(
                SignallingError(
                    "replaced", "je bent in een ander venster verder gegaan", close_code=4409
                ).to_message()
            )
            await previous.close("replaced", 4409)
        active = [p for p in self.participants.values() if not p.closed]
        if len(active) >= self.config.max_participants_per_room:
            raise SignallingError("room_full", "this room is full", close_code=4429)
        participant = Participant(self, identity, name, role, send, self.config)
        await participant.prepare()
        self.participants[participant.id] = participant
        if self._speaker_task is None:
            self._speaker_task = asyncio.create_task(self._watch_speakers())
        others = [p.describe() for p in active if p is not participant]
        await participant.send(
            {
                "type": "joined",
                "room": self.id,
                "participant": participant.describe(),
                "participants": others,
                "ice_servers": [],
            }
        )
        if self.speaker.active is not None:
            await participant.send(
                {"type": "active_speaker", "participant_id": self.speaker.active}
            )
        if self.recording is not None:
            await participant.send(self._recording_message())
        await self.broadcast(
            {"type": "participant_joined", "participant": participant.describe()},
            exclude=participant,
        )
        return participant

    async def publications_added(self, publisher: Participant) -> None:
        """The publisher's tracks are known: subscribe everybody to everybody."""
        for other in list(self.participants.values()):
            # Someone whose own offer has not come yet gets these tracks when it does: its m-lines
            # must come first in its session description.
            if other is publisher or other.closed or not other.answered:
                continue
            for publication in publisher.publications.values():
                other.subscribe(publication)
            for publication in other.publications.values():
                publisher.subscribe(publication)
            await other.renegotiate()
        await publisher.renegotiate()
        if self.recording is not None:
            for publication in publisher.publications.values():
                self.recording.add_publication(publication, publisher)
        await self.broadcast(
            {"type": "participant_updated", "participant": publisher.describe()},
            exclude=publisher,
        )

    async def remove(self, participant: Participant, reason: str) -> None:
        if self.participants.get(participant.id) is not participant:
            return
        del self.participants[participant.id]
        self._finished.add(participant_counters(participant))
        self.speaker.remove(participant.id)
        if self.recording is not None:
            self.recording.remove_participant(participant)
        for other in list(self.participants.values()):
            changed = False
            for downtrack in list(other.downtracks.values()):
                if downtrack.publication.publisher is participant:
                    add_downtrack(self._finished, downtrack)  # counters never go down
                    other.unsubscribe(downtrack)
                    changed = True
            if changed:
                await other.renegotiate()
        for downtrack in list(participant.downtracks.values()):
            participant.unsubscribe(downtrack)
        await self.broadcast(
            {"type": "participant_left", "participant_id": participant.id, "reason": reason},
            exclude=participant,
        )
        if not self.participants:
            await self._stop_speaker_task()
            await self._stop_recording_tap()
            self._on_empty(self)

    # -- recording ---------------------------------------------------------------------------

    def _recording_message(self) -> dict[str, object]:
        tap = self.recording
        return {
            "type": "recording",
            "active": tap is not None,
            "recording_id": tap.recording_id if tap is not None else None,
        }

    async def set_recording(self, recording_id: str | None, port: int = 0) -> None:
        """Start sending this room's media to the recorder (or stop: None); tells everyone."""
        tap = self.recording
        if tap is not None and tap.recording_id == recording_id and tap.address[1] == port:
            return
        await self._stop_recording_tap()
        if recording_id is not None:
            tap = RecordingTap(self.id, recording_id, port)
            await tap.start()
            self.recording = tap
            for participant in self.participants.values():
                if participant.closed:
                    continue
                for publication in participant.publications.values():
                    tap.add_publication(publication, participant)
        await self.broadcast(self._recording_message(), exclude=None)

    async def _stop_recording_tap(self) -> None:
        tap = self.recording
        self.recording = None
        if tap is not None:
            await tap.close()

    async def _watch_speakers(self) -> None:
        while True:
            await asyncio.sleep(SPEAKER_POLL_MS / 1000)
            changed, speaker = self.speaker.poll(now_ms())
            if changed:
                await self.broadcast(
                    {"type": "active_speaker", "participant_id": speaker}, exclude=None
                )

    async def _stop_speaker_task(self) -> None:
        task = self._speaker_task
        self._speaker_task = None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def broadcast(self, message: dict[str, object], exclude: Participant | None) -> None:
        for participant in list(self.participants.values()):
            if participant is not exclude and not participant.closed:
                await participant.send(message)

    def snapshot(self) -> dict[str, object]:
        participants = []
        for participant in self.participants.values():
            described = participant.describe()
            tracks = []
            for publication in participant.publications.values():
                track = publication.describe()
                track["packets_in"] = publication.packets_received
                track["bytes_in"] = publication.bytes_received
                track["subscribers"] = len(publication.downtracks)
                tracks.append(track)
            described["tracks"] = tracks
            described["connection"] = participant.transport.state
            participants.append(described)
        return {"room": self.id, "participants": participants}

    async def close(self) -> None:
        for participant in list(self.participants.values()):
            await participant.close("server_shutdown", 1001)
        await self._stop_speaker_task()
        await self._stop_recording_tap()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
