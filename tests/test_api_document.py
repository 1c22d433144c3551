"""The OpenAPI document is generated from the declared routes: nothing served goes undocumented."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from control.api import VISIBLE_CHARACTER
from control.apispec import (
    API_KEY,
    API_ROUTES_KEY,
    PUBLIC,
    NotFound,
    ParametersModel,
    RequestModel,
    ResponseModel,
    Route,
    RouteTable,
    openapi_document,
)
from control.apispec.routes import declare
from control.app import create_app
from control.tokens import clean_name, verify_join_token
from tests.control_fakes import TOKEN_SECRET, FakeSfu, Harness, make_settings, running_app

# Served, but not HTTP API: the pages, their files and stylesheet, and the signalling WebSocket.
# A new route fails test_every_served_route_is_documented until it is declared with
# control.apispec (and so documented) or added here.
NOT_API = {
    ("GET", "/"),
    ("GET", "/call"),
    ("GET", "/static"),
    ("GET", "/theme/theme.css"),
    ("GET", "/rtc"),
}


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_app(tmp_path) as h:
        yield h


def _served(app: web.Application) -> set[tuple[str, str]]:
    routes = {(route.method, route.resource.canonical) for route in app.router.routes()}
    # aiohttp answers HEAD wherever it answers GET; that is not an operation of its own.
    return {(m, p) for m, p in routes if not (m == "HEAD" and ("GET", p) in routes)}


def _documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item}


async def _document(harness: Harness) -> dict[str, Any]:
    response = await harness.client.get("/api/v1/openapi.json")
    assert response.status == 200
    document: dict[str, Any] = await response.json()
    return document


def _routes(harness: Harness) -> list[Route]:
    return harness.client.server.app[API_ROUTES_KEY].routes


async def test_every_served_route_is_documented_or_explicitly_not_api(harness: Harness) -> None:
    served = _served(harness.client.server.app)
    documented = _documented(await _document(harness))
    assert served - NOT_API == documented
    assert NOT_API <= served, "an exclusion that is no longer served: remove it from NOT_API"


async def test_the_operations_and_status_pages_are_documented(harness: Harness) -> None:
    documented = _documented(await _document(harness))
    assert {("GET", "/healthz"), ("GET", "/metrics"), ("GET", "/api/v1/openapi.json")} <= (
        documented
    )


async def test_the_served_document_is_the_one_generated_from_the_routes(harness: Harness) -> None:
    from control.api import API_INFO

    generated = openapi_document(_routes(harness), API_INFO)
    assert await _document(harness) == json.loads(json.dumps(generated))


async def test_every_operation_documents_its_errors_with_the_error_schema(
    harness: Harness,
) -> None:
    document = await _document(harness)
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert "500" in responses, (method, path)
            assert [s for s in responses if s.startswith("2")], (method, path)
            for status, response in responses.items():
                assert response["description"], (method, path, status)
                if int(status) >= 400:
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}
            if operation["security"]:
                assert "401" in responses, (method, path)
            if "{" in path:
                assert "404" in responses, (method, path)
            if "requestBody" in operation:
                assert {"400", "413"} <= set(responses), (method, path)


async def test_public_operations_say_so_and_the_others_name_their_schemes(
    harness: Harness,
) -> None:
    document = await _document(harness)
    schemes = document["components"]["securitySchemes"]
    public = set()
    for path, item in document["paths"].items():
        for operation in item.values():
            if not operation["security"]:
                public.add(path)
            for requirement in operation["security"]:
                assert set(requirement) <= set(schemes)
    assert public == {"/healthz", "/api/v1/openapi.json"}


def _example(schema: dict[str, Any]) -> Any:
    """The first example of a property (of its first kind, when it may be one of several)."""
    examples = schema.get("examples") or schema.get("anyOf", [{}])[0].get("examples")
    assert examples, f"no example in {schema}"
    return examples[0]


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    name = schema["$ref"].rsplit("/", 1)[-1]
    resolved: dict[str, Any] = document["components"]["schemas"][name]
    return resolved


def _wrong_type(schema: dict[str, Any]) -> Any:
    """A JSON value that the property's schema does not allow, whatever its type."""
    text = json.dumps(schema)
    if '"type": "string"' in text or '"$ref"' in text or '"type": "object"' in text:
        return [12345]
    return "not-a-number"


def _body_cases() -> list[tuple[str, str]]:
    app = create_app(make_settings(Path("/nonexistent")), FakeSfu())
    return [
        (route.method, route.openapi_path)
        for route in app[API_ROUTES_KEY].routes
        if route.body is not None
    ]


def _request_path(operation: dict[str, Any], path: str) -> str:
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "path":
            path = path.replace(f"{{{parameter['name']}}}", _example(parameter["schema"]))
    return path


@pytest.mark.parametrize(("method", "path"), _body_cases())
async def test_every_request_body_rejects_bad_input_with_the_error_shape(
    harness: Harness, method: str, path: str
) -> None:
    document = await _document(harness)
    operation = document["paths"][path][method.lower()]
    schema = _resolve(document, operation["requestBody"]["content"]["application/json"]["schema"])
    properties: dict[str, Any] = schema["properties"]
    assert schema.get("additionalProperties") is False
    # A body made of the documented examples is what the route's model accepts ...
    valid = {name: _example(prop) for name, prop in properties.items()}
    route = next(r for r in _routes(harness) if (r.method, r.openapi_path) == (method, path))
    assert route.body is not None
    route.body.model_validate(valid)
    url = _request_path(operation, path)
    # ... and any one property of a wrong type, or one unknown property, is refused naming it.
    bad_bodies = [({**valid, name: _wrong_type(prop)}, name) for name, prop in properties.items()]
    bad_bodies.append(({**valid, "colour": "blauw"}, "colour"))
    for body, field in bad_bodies:
        response = await harness.client.request(method, url, json=body, headers=harness.auth)
        assert response.status == 400, (body, await response.text())
        answer = await response.json()
        assert set(answer) == {"error"} and set(answer["error"]) == {"code", "message"}
        assert answer["error"]["code"] == "invalid_request"
        assert field in answer["error"]["message"]
    for name in schema.get("required", []):
        body = {k: v for k, v in valid.items() if k != name}
        response = await harness.client.request(method, url, json=body, headers=harness.auth)
        assert response.status == 400
        assert f"{name} is required" == (await response.json())["error"]["message"]


async def test_a_path_parameter_that_does_not_fit_is_a_404_with_the_declared_code(
    harness: Harness,
) -> None:
    checked = 0
    for route in _routes(harness):
        if route.path_params is None:
            continue
        markers = {
            name: marker
            for name, info in route.path_params.model_fields.items()
            for marker in info.metadata
            if isinstance(marker, NotFound)
        }
        for name in route.path_params.model_fields:
            url = route.openapi_path
            for other in route.path_params.model_fields:
                value = "not valid!" if other == name else _example_value(route, other)
                url = url.replace(f"{{{other}}}", value)
            response = await harness.client.request(route.method, url, headers=harness.auth)
            assert response.status == 404, url
            assert (await response.json())["error"]["code"] == markers[name].code
            checked += 1
    assert checked >= 5


def _example_value(route: Route, name: str) -> str:
    assert route.path_params is not None
    schema = route.path_params.model_json_schema()["properties"][name]
    value: str = schema["examples"][0]
    return value


async def test_a_validation_message_never_repeats_what_the_client_sent(
    harness: Harness,
) -> None:
    await harness.client.post("/api/v1/rooms", json={"id": "balie-1"}, headers=harness.auth)
    secret = "geheim-wachtwoord-8c1f"  # values, and names that are no field names, never return
    bodies = [
        {"identity": secret * 10, "name": "A", "role": "guest"},
        {"identity": "a", "name": "A", "role": secret},
        {"identity": "a", "name": "A", "role": "guest", "ttl": secret},
        {"identity": "a", "name": "A", "role": "guest", secret: 1},
        {"identity": "a", "name": "A", "role": "guest", f"x {secret}": 1},
    ]
    for body in bodies:
        response = await harness.client.post(
            "/api/v1/rooms/balie-1/tokens", json=body, headers=harness.auth
        )
        assert response.status == 400
        message = (await response.json())["error"]["message"]
        assert "geheim" not in message, message


async def test_every_operation_that_needs_credentials_refuses_a_request_without(
    harness: Harness,
) -> None:
    checked = 0
    for route in _routes(harness):
        if route.security.public:
            continue
        url = route.openapi_path
        if route.path_params is not None:
            for name in route.path_params.model_fields:
                url = url.replace(f"{{{name}}}", _example_value(route, name))
        response = await harness.client.request(route.method, url, json={})
        assert response.status == 401, url
        assert (await response.json())["error"]["code"] == "unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        checked += 1
    assert checked >= 7


async def test_an_integer_written_with_a_zero_fraction_is_that_integer(harness: Harness) -> None:
    # JSON Schema's "integer" admits 900.0; a string or a boolean stays refused.
    await harness.client.post("/api/v1/rooms", json={"id": "balie-1"}, headers=harness.auth)
    token = {"identity": "a", "name": "A", "role": "guest"}
    url = "/api/v1/rooms/balie-1/tokens"
    response = await harness.client.post(url, json={**token, "ttl": 900.0}, headers=harness.auth)
    assert response.status == 201
    claims = verify_join_token(TOKEN_SECRET, (await response.json())["token"])
    assert claims.expires_at - claims.issued_at == 900
    for ttl in (900.5, "900", True):
        response = await harness.client.post(url, json={**token, "ttl": ttl}, headers=harness.auth)
        assert response.status == 400, ttl


@given(st.text(max_size=12))
def test_the_documented_name_pattern_is_what_the_server_checks(name: str) -> None:
    # JSON Schema patterns match anywhere: the name needs one visible character.
    documented = re.search(VISIBLE_CHARACTER, name) is not None
    assert documented == (clean_name(name) != "")


async def test_the_api_key_is_checked_before_the_body_is_read(harness: Harness) -> None:
    response = await harness.client.post("/api/v1/rooms", data=b"{not json")
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "unauthorized"


class _Path(ParametersModel):
    room: str


class _Body(RequestModel):
    name: str


class _Answer(ResponseModel):
    name: str


def test_a_handler_whose_path_parameters_do_not_match_its_path_is_refused() -> None:
    async def rename(request: web.Request, path: _Path, body: _Body) -> _Answer:
        return _Answer(name=body.name)

    with pytest.raises(TypeError, match="path parameters"):
        declare("POST", "/things/{thing}", rename, summary="x", security=API_KEY)
    route = declare("POST", "/things/{room}", rename, summary="x", security=API_KEY)
    assert (route.body, route.path_params, route.response) == (_Body, _Path, _Answer)


def test_a_handler_with_an_undeclared_input_or_no_response_model_is_refused() -> None:
    async def loose(request: web.Request, payload: dict[str, Any]) -> _Answer:
        return _Answer(name="x")

    async def untyped(request: web.Request) -> web.StreamResponse:
        return web.Response()

    with pytest.raises(TypeError, match="path/query/body"):
        declare("POST", "/loose", loose, summary="x", security=PUBLIC)
    with pytest.raises(TypeError, match="raw"):
        declare("GET", "/untyped", untyped, summary="x", security=PUBLIC)


def test_the_same_operation_declared_twice_cannot_be_documented() -> None:
    table = RouteTable()

    @table.get("/twice", summary="x", security=PUBLIC)
    async def first(request: web.Request) -> _Answer:
        return _Answer(name="1")

    @table.get("/twice", summary="y", security=PUBLIC)
    async def second(request: web.Request) -> _Answer:
        return _Answer(name="2")

    with pytest.raises(ValueError, match="declared twice"):
        openapi_document(table.routes, {"title": "t", "version": "1"})


class _Page(ParametersModel):
    limit: int = Field(default=10, ge=1, le=100, description="At most this many.")
    state: list[str] = Field(default_factory=list)


async def test_query_parameters_are_read_validated_and_documented() -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from control.errors import error_middleware

    table = RouteTable()

    @table.get("/things", summary="x", security=PUBLIC)
    async def things(request: web.Request, query: _Page) -> _Answer:
        return _Answer(name=f"{query.limit} {','.join(query.state)}")

    app = web.Application(middlewares=[error_middleware])
    table.add_to(app)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        response = await client.get("/things?limit=5&state=a&state=b&other=1")
        assert await response.json() == {"name": "5 a,b"}
        assert (await (await client.get("/things")).json()) == {"name": "10 "}
        response = await client.get("/things?limit=500")
        assert response.status == 400
        assert (await response.json())["error"]["code"] == "invalid_request"
        assert "limit" in (await response.json())["error"]["message"]
    document = openapi_document(table.routes, {"title": "t", "version": "1"})
    operation = document["paths"]["/things"]["get"]
    assert [(p["name"], p["in"], p["required"]) for p in operation["parameters"]] == [
        ("limit", "query", False),
        ("state", "query", False),
    ]
    assert operation["parameters"][0]["schema"]["maximum"] == 100
    assert "400" in operation["responses"]


async def test_a_handler_returning_another_model_than_declared_is_a_500(tmp_path: Path) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from control.errors import error_middleware

    table = RouteTable()

    class _Other(BaseModel):
        secret: str

    @table.get("/wrong", summary="x", security=PUBLIC)
    async def wrong(request: web.Request) -> _Answer:
        return _Other(secret="verborgen")  # type: ignore[return-value]

    app = web.Application(middlewares=[error_middleware])
    table.add_to(app)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        response = await client.get("/wrong")
        assert response.status == 500
        assert "verborgen" not in await response.text()
