"""One SFU worker process per core: placement, a worker crash and recovery, metrics."""

from __future__ import annotations

import asyncio
import os
import signal

import aiohttp
import pytest

from loadtest.participant import SyntheticParticipant
from tests.servers import RunningServer, running_server
from tests.test_sfu_call import receiving, wait_for

pytestmark = pytest.mark.media


async def pair(
    server: RunningServer, room: str
) -> tuple[SyntheticParticipant, SyntheticParticipant]:
    a = SyntheticParticipant(server.base_url, server.token(room, f"{room}-a"))
    b = SyntheticParticipant(server.base_url, server.token(room, f"{room}-b"))
    for person in (a, b):
        await person.join()
        await asyncio.wait_for(person.connected.wait(), 15)
    await wait_for(lambda: receiving(a, b, "video") and receiving(b, a, "video"), 10, "media")
    return a, b


async def test_rooms_are_spread_over_the_workers_and_a_crashed_worker_comes_back(tmp_path):
    async with running_server(tmp_path, workers=2) as server:
        remote = server.sfu
        people = []
        try:
            for room in ("r1", "r2", "r3", "r4"):
                people.extend(await pair(server, room))
            placed = {room: remote.placement.placed(room) for room in ("r1", "r2", "r3", "r4")}
            assert sorted(placed.values()) == [0, 0, 1, 1]

            # The room snapshot of a worker reaches the admin API.
            await wait_for(lambda: remote.room_snapshot("r1") is not None, 3, "snapshot")

            victim = placed["r1"]
            other_room = next(room for room, worker in placed.items() if worker != victim)
            survivors = people[2 * list(placed).index(other_room) :][:2]
            before = sum(s.packets for s in survivors[0].streams.values())
            pid = remote.worker_pids()[victim]
            os.kill(pid, signal.SIGKILL)

            # The participants of the crashed worker see their socket close with 1012 ...
            crashed = people[0:2]
            await wait_for(
                lambda: all(p._ws is not None and p._ws.closed for p in crashed), 10, "close"
            )
            assert crashed[0]._ws is not None and crashed[0]._ws.close_code == 1012
            # ... while the call on the other worker goes on.
            await wait_for(
                lambda: sum(s.packets for s in survivors[0].streams.values()) > before + 50,
                5,
                "the other call",
            )
            # Coming back (as the page does by itself), they are in a call again.
            for person in crashed:
                await person.close()
            await wait_for(lambda: remote.worker_pids()[victim] not in (None, pid), 15, "restart")
            again = await pair(server, "r1")
            people.extend(again)
            assert remote.placement.placed("r1") is not None
        finally:
            for person in people:
                await person.close()


async def test_metrics_report_every_worker(tmp_path):
    async with running_server(tmp_path, workers=2) as server:
        people = list(await pair(server, "m1"))
        try:
            await asyncio.sleep(1.5)  # one stats poll
            async with aiohttp.ClientSession() as session:
                async with session.get(
                    f"{server.base_url}/metrics",
                    headers={"Authorization": f"Bearer {server.settings.api_key}"},
                ) as response:
                    text = await response.text()
            for label in ('worker="0"', 'worker="1"', 'worker="control"'):
                assert f"balie_worker_cpu_seconds_total{{{label}}}" in text
            participants = [
                line for line in text.splitlines() if line.startswith("balie_participants{")
            ]
            assert participants and participants[0].endswith(" 2.0")
        finally:
            for person in people:
                await person.close()
