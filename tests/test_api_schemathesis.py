"""schemathesis against a live `balie serve`: no server error, nothing the document does not say.

Every documented operation gets a bounded number of generated requests, valid and invalid ones
(examples, coverage and fuzzing phases), with the API key; each response is checked against the
document: status code, content type, body schema, and that authentication is really enforced.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from common.ports import free_port
from control.api import API_INFO
from control.apispec import API_ROUTES_KEY, openapi_document
from control.app import create_app
from loadtest.processes import stop_process, wait_until_answering
from tests.control_fakes import FakeSfu, make_settings

# A real server with its recorder process: like the media tests, only in the loopback-only
# network namespace (make test).
pytestmark = pytest.mark.media

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "schemathesis-api-key-0123456789abcdef"
MAX_EXAMPLES = 25

CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.negative_data_rejection,
    schemathesis.checks.ignored_auth,
    schemathesis.checks.unsupported_method,
]


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    data_dir = tmp_path_factory.mktemp("schemathesis") / "data"
    log = data_dir.parent / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "control.cli", "serve", "--host", "127.0.0.1"),
                *("--port", str(port), "--rtc-ip", "127.0.0.1", "--workers", "1"),
                *("--data-dir", str(data_dir)),
            ],
            cwd=ROOT,
            env={**os.environ, "BALIE_API_KEY": API_KEY},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(
            process, f"{url}/healthz", 30, "balie serve", detail=lambda: log.read_text()
        )
        with urllib.request.urlopen(f"{url}/api/v1/openapi.json", timeout=5) as response:
            assert json.load(response) == DOCUMENT
        yield url
    finally:
        stop_process(process)
    # Nothing the generated requests did may have made the server log an unhandled error.
    assert "unhandled error" not in log.read_text(), log.read_text()


def _document() -> dict[str, Any]:
    """The document as the code generates it (the live server must serve exactly this one)."""
    app = create_app(make_settings(ROOT / "unused-data-dir"), FakeSfu())
    return openapi_document(app[API_ROUTES_KEY].routes, API_INFO)


# Loaded when the module is collected, before the server runs (schemathesis's lazy fixture
# loading does not work with this pytest); `live_server` checks that the server serves it.
DOCUMENT = json.loads(json.dumps(_document()))
schema = schemathesis.openapi.from_dict(DOCUMENT)
schema.config.generation.update(max_examples=MAX_EXAMPLES)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),  # about generation speed, not the server
)
def test_the_live_api_answers_as_its_document_says(case: Any, live_server: str) -> None:
    case.call_and_validate(
        base_url=live_server,
        headers={"Authorization": f"Bearer {API_KEY}"},
        checks=CHECKS,
        timeout=10,
    )


def test_sequences_of_calls_answer_as_the_document_says(live_server: str, tmp_path: Path) -> None:
    """Links schemathesis infers from the document: create a room, then its tokens, recordings...

    Run by schemathesis's own engine (its command line), which copes with a server whose state
    changes between the generated scenarios; Hypothesis's state machine under pytest does not.
    """
    command = [
        *(str(Path(sys.executable).parent / "st"), "run", f"{live_server}/api/v1/openapi.json"),
        *("--phases", "stateful", "--max-examples", str(MAX_EXAMPLES)),
        *("--checks", ",".join(check.__name__ for check in CHECKS)),
        *("--header", f"Authorization: Bearer {API_KEY}"),
        *("--generation-database", "none", "--no-color"),
    ]
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Stateful" in result.stdout and "API Links:" in result.stdout, result.stdout
