"""Recording a call through the API: the SFU, the recorder process and the files it leaves.

Real parts: a server with its recorder process, synthetic participants sending real pre-encoded
VP8 and Opus over WebRTC, ffprobe and ffmpeg on the exported file.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys

import aiohttp
import pytest

from control.appkeys import RECORDINGS_KEY
from control.recorder_process import RecorderProcess
from loadtest.media import load_media
from loadtest.participant import SyntheticParticipant
from recorder.export import export_recording
from recorder.manifest import verify_hashes
from tests.media_files import decode_errors, ffprobe
from tests.servers import running_server
from tests.test_sfu_call import wait_for

pytestmark = pytest.mark.media

CONSENT = {"consent": {"given_by": "inwoner-1", "statement": "Ik vind opnemen goed."}}


async def api(session, method, url, token, body=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with session.request(method, url, json=body, headers=headers) as response:
        return response.status, await response.json()


async def call_of_two(server, room, media):
    employee = SyntheticParticipant(
        server.base_url, server.token(room, "medewerker-1", role="employee"), media=media
    )
    resident = SyntheticParticipant(server.base_url, server.token(room, "inwoner-1"), media=media)
    await employee.join()
    await resident.join()
    await asyncio.wait_for(employee.connected.wait(), 10)
    await asyncio.wait_for(resident.connected.wait(), 10)
    return employee, resident


async def test_a_call_is_recorded_with_consent_and_exports_to_a_playable_file(tmp_path):
    media = load_media()
    async with running_server(tmp_path / "data", recording=True) as server:
        key = server.settings.api_key
        async with aiohttp.ClientSession() as http:
            status, _ = await api(
                http, "POST", f"{server.base_url}/api/v1/rooms", key, {"id": "r1"}
            )
            assert status == 201
            employee, resident = await call_of_two(server, "r1", media)
            try:
                url = f"{server.base_url}/api/v1/rooms/r1/recordings"
                # Without consent (and no mandatory case type): refused, nothing recorded.
                status, body = await api(http, "POST", url, key, {})
                assert status == 422 and body["error"]["code"] == "consent_required"
                # A resident cannot start one; an employee of another room neither.
                status, body = await api(
                    http, "POST", url, server.token("r1", "inwoner-1"), CONSENT
                )
                assert status == 403 and body["error"]["code"] == "forbidden"
                other = server.token("elders", "medewerker-2", role="employee")
                status, _ = await api(http, "POST", url, other, CONSENT)
                assert status == 403
                status, body = await api(http, "POST", url, "nonsense", CONSENT)
                assert status == 401
                status, body = await api(
                    http, "POST", url, key, {"consent": {"given_by": "", "statement": "x"}}
                )
                assert status == 400 and body["error"]["code"] == "invalid_request"

                # The employee starts it with their own join token.
                employee_token = server.token("r1", "medewerker-1", role="employee")
                status, started = await api(http, "POST", url, employee_token, CONSENT)
                assert status == 201, started
                recording_id = started["id"]
                assert started["state"] == "recording"
                assert started["consent"]["given_by"] == "inwoner-1"
                status, body = await api(http, "POST", url, key, CONSENT)
                assert status == 409 and body["error"]["code"] == "recording_active"
                for participant in (employee, resident):
                    await wait_for(
                        lambda p=participant: (
                            {
                                "type": "recording",
                                "active": True,
                                "recording_id": recording_id,
                            }
                            in p.messages
                        ),
                        3,
                        "the page is told",
                    )
                await asyncio.sleep(5)
                stop_url = f"{url}/{recording_id}/stop"
                status, stopped = await api(http, "POST", stop_url, employee_token)
                assert status == 200 and stopped["state"] == "stopped"
                status, again = await api(http, "POST", stop_url, key)
                assert status == 200 and again["state"] == "stopped"
                status, described = await api(
                    http, "GET", f"{server.base_url}/api/v1/recordings/{recording_id}", key
                )
                assert status == 200
                status, _ = await api(
                    http, "GET", f"{server.base_url}/api/v1/recordings/rec_0000000000000000", key
                )
                assert status == 404
                status, _ = await api(
                    http,
                    "GET",
                    f"{server.base_url}/api/v1/recordings/{recording_id}",
                    server.token("r1", "inwoner-1"),
                )
                assert status == 403
            finally:
                await resident.close()
                await employee.close()

        manifest = described["manifest"]
        assert manifest["state"] == "stopped"
        assert manifest["consent"]["statement"] == "Ik vind opnemen goed."
        assert {p["role"] for p in manifest["participants"]} == {"employee", "resident"}
        assert sorted(t["kind"] for t in manifest["tracks"]) == ["audio", "audio", "video", "video"]
        assert manifest["segments"] and all(s["sha256"] for s in manifest["segments"])
        directory = server.settings.data_dir / "recordings" / recording_id
        assert verify_hashes(manifest, directory) == []
        # Nothing is stored in the clear.
        for segment in directory.glob("segment-*"):
            assert b"VP8" not in segment.read_bytes()[:4096]

        exported = tmp_path / "export.mkv"
        data_dir = str(server.settings.data_dir)
        result = await asyncio.to_thread(
            subprocess.run,
            [
                *(sys.executable, "-m", "control.cli", "recording", "export", recording_id),
                *("--out", str(exported), "--data-dir", data_dir),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        probe = ffprobe(exported)
        codecs = sorted(s["codec_name"] for s in probe["streams"])
        assert codecs == ["opus", "opus", "vp8", "vp8"]
        assert 4.0 <= float(probe["format"]["duration"]) <= 7.0
        assert decode_errors(exported) == ""


async def test_a_killed_recorder_is_restarted_and_the_recording_continues_in_a_new_segment(
    tmp_path,
):
    media = load_media()
    async with running_server(tmp_path / "data", recording=True) as server:
        key = server.settings.api_key
        assert server.app is not None
        recordings = server.app[RECORDINGS_KEY]
        recorder = recordings.recorder
        assert isinstance(recorder, RecorderProcess)
        async with aiohttp.ClientSession() as http:
            await api(http, "POST", f"{server.base_url}/api/v1/rooms", key, {"id": "r2"})
            employee, resident = await call_of_two(server, "r2", media)
            try:
                url = f"{server.base_url}/api/v1/rooms/r2/recordings"
                status, started = await api(http, "POST", url, key, CONSENT)
                assert status == 201
                recording_id = started["id"]
                directory = server.settings.data_dir / "recordings" / recording_id
                await asyncio.sleep(3)
                first_pid = recorder.pid
                assert first_pid is not None
                os.kill(first_pid, signal.SIGKILL)
                await wait_for(
                    lambda: recorder.pid != first_pid and recorder.restarts == 1,
                    15,
                    "the recorder is restarted",
                )
                await wait_for(
                    lambda: len(list(directory.glob("segment-*"))) >= 2, 10, "a new segment"
                )
                # The call went on: the resident still receives the employee's video.
                video = next(s for s in resident.streams.values() if s.kind == "video")
                before = video.packets
                await asyncio.sleep(3)
                assert video.packets > before + 30
                status, _ = await api(http, "POST", f"{url}/{recording_id}/stop", key)
                assert status == 200
            finally:
                await resident.close()
                await employee.close()

    segments = sorted(directory.glob("segment-*"))
    assert len(segments) >= 2
    # The segment the killed recorder was writing decodes on its own without errors.
    first = tmp_path / "first.mkv"
    single = tmp_path / "single"
    single.mkdir()
    os.link(segments[0], single / segments[0].name)
    export_recording(single, bytes.fromhex(server.settings.recording_key), first)
    assert decode_errors(first) == ""
    assert float(ffprobe(first)["format"]["duration"]) >= 1.5
    # The whole recording: both segments on one timeline, every hash right.
    whole = tmp_path / "whole.mkv"
    export_recording(directory, bytes.fromhex(server.settings.recording_key), whole)
    assert decode_errors(whole) == ""
    assert float(ffprobe(whole)["format"]["duration"]) >= 5.0
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["recorder_restarts"] == 1
    assert verify_hashes(manifest, directory) == []


async def test_a_mandatory_case_type_is_recorded_without_consent(tmp_path):
    async with running_server(tmp_path / "data", recording=True) as server:
        server.settings.mandatory_recording_case_types = frozenset({"huwelijk"})
        server.app[RECORDINGS_KEY].mandatory_case_types = frozenset({"huwelijk"})
        key = server.settings.api_key
        async with aiohttp.ClientSession() as http:
            body = {"id": "r3", "case_type": "huwelijk"}
            status, room = await api(http, "POST", f"{server.base_url}/api/v1/rooms", key, body)
            assert status == 201 and room["case_type"] == "huwelijk"
            url = f"{server.base_url}/api/v1/rooms/r3/recordings"
            status, started = await api(http, "POST", url, key, {})
            assert status == 201, started
            assert started["basis"] == "mandatory" and started["consent"] is None
            status, _ = await api(http, "POST", f"{url}/{started['id']}/stop", key)
            assert status == 200
            status, body = await api(
                http, "POST", f"{server.base_url}/api/v1/rooms/nergens/recordings", key, CONSENT
            )
            assert status == 404 and body["error"]["code"] == "room_not_found"


async def test_a_room_on_a_worker_process_is_recorded_too(tmp_path):
    media = load_media()
    async with running_server(tmp_path / "data", recording=True, workers=2) as server:
        key = server.settings.api_key
        async with aiohttp.ClientSession() as http:
            await api(http, "POST", f"{server.base_url}/api/v1/rooms", key, {"id": "r4"})
            employee, resident = await call_of_two(server, "r4", media)
            try:
                url = f"{server.base_url}/api/v1/rooms/r4/recordings"
                status, started = await api(http, "POST", url, key, CONSENT)
                assert status == 201
                await wait_for(
                    lambda: (
                        {"type": "recording", "active": True, "recording_id": started["id"]}
                        in resident.messages
                    ),
                    5,
                    "the page on the worker is told",
                )
                await asyncio.sleep(3)
                status, stopped = await api(http, "POST", f"{url}/{started['id']}/stop", key)
                assert status == 200
            finally:
                await resident.close()
                await employee.close()
    manifest = stopped["manifest"]
    assert len(manifest["tracks"]) == 4
    directory = server.settings.data_dir / "recordings" / started["id"]
    exported = tmp_path / "worker.mkv"
    report = export_recording(directory, bytes.fromhex(server.settings.recording_key), exported)
    assert report.duration_s >= 2.0
    assert decode_errors(exported) == ""


async def test_recordings_left_open_by_a_stopped_server_are_ended_when_it_starts_again(tmp_path):
    from control.recordings import RecordingRecord, RecordingStore

    data_dir = tmp_path / "data"
    store = RecordingStore(data_dir)
    record = RecordingRecord(
        id="rec_00000000000000aa",
        room="r5",
        state="recording",
        started_at="2026-11-23T10:00:00Z",
        started_by="api",
        case_type=None,
        consent={"given_by": "inwoner-1", "statement": "ja", "given_at": "2026-11-23T10:00:00Z"},
        basis="consent",
        port=9,
        started_unix_s=1_795_000_000.0,
    )
    store.save(record)
    async with running_server(data_dir, recording=True) as server:
        async with aiohttp.ClientSession() as http:
            status, described = await api(
                http,
                "GET",
                f"{server.base_url}/api/v1/recordings/{record.id}",
                server.settings.api_key,
            )
    assert status == 200
    assert described["state"] == "stopped" and described["stop_reason"] == "server_restart"
    assert described["manifest"]["consent"]["given_by"] == "inwoner-1"
    assert described["manifest"]["state"] == "stopped"


async def test_a_late_joiner_and_an_early_leaver_are_recorded_on_the_shared_timeline(tmp_path):
    media = load_media()
    async with running_server(tmp_path / "data", recording=True) as server:
        key = server.settings.api_key
        async with aiohttp.ClientSession() as http:
            await api(http, "POST", f"{server.base_url}/api/v1/rooms", key, {"id": "r6"})
            employee, resident = await call_of_two(server, "r6", media)
            guest = SyntheticParticipant(
                server.base_url, server.token("r6", "tolk-1", role="guest"), media=media
            )
            try:
                url = f"{server.base_url}/api/v1/rooms/r6/recordings"
                status, started = await api(http, "POST", url, key, CONSENT)
                assert status == 201
                await asyncio.sleep(2.5)
                await guest.join()  # the interpreter comes in late ...
                await asyncio.wait_for(guest.connected.wait(), 10)
                await asyncio.sleep(3)
                await guest.close()  # ... and leaves early
                await asyncio.sleep(2)
                status, stopped = await api(http, "POST", f"{url}/{started['id']}/stop", key)
                assert status == 200
            finally:
                await guest.close()
                await resident.close()
                await employee.close()
    manifest = stopped["manifest"]
    assert {p["role"] for p in manifest["participants"]} == {"employee", "resident", "guest"}
    guest_entry = next(p for p in manifest["participants"] if p["role"] == "guest")
    assert guest_entry["last_seen_unix_s"] is not None  # left before the end
    directory = server.settings.data_dir / "recordings" / started["id"]
    exported = tmp_path / "late.mkv"
    export_recording(directory, bytes.fromhex(server.settings.recording_key), exported)
    assert decode_errors(exported) == ""
    probe = ffprobe(exported)
    videos = [s for s in probe["streams"] if s["codec_name"] == "vp8"]
    assert len(videos) == 3
    starts = sorted(float(s["start_time"]) for s in videos)
    assert starts[-1] >= 2.0, starts  # the late joiner starts where it joined: a gap, no shift
    assert float(probe["format"]["duration"]) >= 7.0


def test_a_restarted_recorder_keeps_the_earlier_runs_tracks_and_people_in_the_manifest(tmp_path):
    from recorder.archive import recording_manifest
    from recorder.manifest import write_manifest
    from recorder.service import ActiveRecording
    from recorder.session import TrackInfo

    record = {
        "id": "rec_00000000000000bb",
        "room": "r7",
        "started_at": "2026-11-23T10:00:00Z",
        "started_unix_s": 1_795_000_000.0,
        "consent": {"given_by": "inwoner-1", "statement": "ja", "given_at": "x"},
        "basis": "consent",
        "port": 9,
    }
    left = TrackInfo(11, "video", "vp8", 90000, 96, "tolk", "guest", "camera")
    earlier = recording_manifest(
        record,
        tmp_path,
        None,
        [left],
        [{"id": "tolk", "role": "guest", "name": "Tolk"}],
        [],
        live=True,
    )
    write_manifest(earlier, tmp_path / "manifest.json")
    # The interpreter left before the crash: the new run never hears of them.
    recording = ActiveRecording(record, tmp_path, bytes(32))
    stayed = TrackInfo(21, "audio", "opus", 48000, 111, "inwoner", "resident", "microphone")
    recording.session.add_track(stayed)
    manifest = recording.write_manifest()
    assert {t["ssrc"] for t in manifest["tracks"]} == {11, 21}
    assert {p["id"] for p in manifest["participants"]} == {"tolk"}
