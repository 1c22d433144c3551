"""Route declarations: a handler with its models, security and documentation, declared once.

A handler's signature says what the route takes and gives::

    @routes.post("/api/v1/rooms/{room}/tokens", status=201, security=API_KEY, summary="...")
    async def create_token(request: web.Request, path: RoomPath, body: CreateTokenRequest) -> Token:

The parameters ``path``, ``query`` and ``body`` (each optional) are pydantic models; they are
validated before the handler runs. The return annotation is the response model, sent with
`status`; a handler that builds its own response (not JSON, or a document) returns a
``web.StreamResponse`` and declares its media type with `raw`.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Required, TypedDict, TypeVar, Unpack

from aiohttp import web
from pydantic import BaseModel, ValidationError

from control.apispec.errors import describe_validation_error
from control.apispec.security import Security
from control.errors import ApiError, read_json_object

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
ApiHandler = Callable[..., Awaitable[BaseModel | web.StreamResponse]]
H = TypeVar("H", bound=ApiHandler)

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::[^}]*)?\}")
_INPUTS = ("path", "query", "body")


@dataclass(frozen=True, slots=True)
class NotFound:
    """Marks a path parameter: a value that does not fit is a 404 with this code and message."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class RawResponse:
    """A success response the handler builds itself: its media type and schema."""

    media_type: str
    schema: Mapping[str, Any]


@dataclass(frozen=True)
class Route:
    """Everything about one route; the aiohttp handler and the OpenAPI operation come from it."""

    method: Method
    path: str
    handler: ApiHandler
    operation_id: str
    summary: str
    security: Security
    status: int
    returns: str
    response: type[BaseModel] | RawResponse
    body: type[BaseModel] | None = None
    path_params: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    description: str = ""
    tags: tuple[str, ...] = ()
    errors: Mapping[int, str] = field(default_factory=dict)

    @property
    def openapi_path(self) -> str:
        """The path with aiohttp's ``{name:regex}`` written as OpenAPI's ``{name}``."""
        return _PLACEHOLDER.sub(r"{\1}", self.path)

    def error_statuses(self) -> dict[int, str]:
        """Every error status the route can answer, with what it means."""
        found: dict[int, str] = {}
        if self.body is not None:
            found[400] = "Malformed JSON (`bad_json`) or an invalid field (`invalid_request`)."
            found[413] = "The request body is too large (`payload_too_large`)."
        elif self.query is not None:
            found[400] = "An invalid query parameter (`invalid_request`)."
        if not self.security.public:
            found[401] = "Missing or wrong credentials (`unauthorized`)."
            found.update(self.security.errors)
        if self.path_params is not None:
            codes = sorted({marker.code for _, marker in _not_found_markers(self.path_params)})
            found[404] = "No such resource (" + ", ".join(f"`{c}`" for c in codes or ["not_found"])
            found[404] += ")."
        found.update(self.errors)
        found[500] = "Unexpected server error (`internal_error`)."
        return dict(sorted(found.items()))

    def endpoint(self) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """The aiohttp handler: security, then path, query and body, then the handler."""

        async def endpoint(request: web.Request) -> web.StreamResponse:
            if self.security.check is not None:
                await self.security.check(request)
            inputs: dict[str, BaseModel] = {}
            if self.path_params is not None:
                inputs["path"] = _read_path(self.path_params, request)
            if self.query is not None:
                inputs["query"] = _read_query(self.query, request)
            if self.body is not None:
                inputs["body"] = _validate(self.body, await read_json_object(request))
            result = await self.handler(request, **inputs)
            if isinstance(result, web.StreamResponse):
                return result
            if not isinstance(self.response, type) or not isinstance(result, self.response):
                raise TypeError(f"{self.operation_id} returned {type(result).__name__}")
            return web.json_response(result.model_dump(mode="json"), status=self.status)

        endpoint.__name__ = getattr(self.handler, "__name__", self.operation_id)
        return endpoint


def _validate(model: type[BaseModel], value: object) -> BaseModel:
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise ApiError(400, "invalid_request", describe_validation_error(exc)) from None


def _read_path(model: type[BaseModel], request: web.Request) -> BaseModel:
    try:
        return model.model_validate(dict(request.match_info))
    except ValidationError as exc:
        failed = {str(error["loc"][0]) for error in exc.errors() if error["loc"]}
        for name, marker in _not_found_markers(model):
            if name in failed:
                raise ApiError(404, marker.code, marker.message) from None
        raise ApiError(404, "not_found", "not found") from None


def _read_query(model: type[BaseModel], request: web.Request) -> BaseModel:
    values: dict[str, object] = {}
    for name, info in model.model_fields.items():
        key = info.alias or name
        if key in request.query:
            many = typing.get_origin(info.annotation) is list
            values[key] = request.query.getall(key) if many else request.query[key]
    return _validate(model, values)


def _not_found_markers(model: type[BaseModel]) -> Iterator[tuple[str, NotFound]]:
    for name, info in model.model_fields.items():
        for marker in info.metadata:
            if isinstance(marker, NotFound):
                yield name, marker


def _camel(name: str) -> str:
    first, *rest = name.strip("_").split("_")
    return first + "".join(part.capitalize() for part in rest)


class RouteOptions(TypedDict, total=False):
    """What a route declaration says besides method, path and handler."""

    summary: Required[str]
    security: Required[Security]
    status: int  # the success status (200)
    returns: str  # what the success response is (the response model's docstring)
    raw: RawResponse  # for a handler that returns its own web.StreamResponse
    operation_id: str  # (the handler's name in camelCase)
    description: str
    tags: tuple[str, ...]
    errors: Mapping[int, str]  # error statuses the handler raises, besides the automatic ones


def declare(
    method: Method, path: str, handler: ApiHandler, **options: Unpack[RouteOptions]
) -> Route:
    """A `Route` from a handler's signature; raises TypeError when it does not fit the path."""
    hints = typing.get_type_hints(handler)
    parameters = list(inspect.signature(handler).parameters)
    if not parameters or parameters[0] != "request":
        raise TypeError(f"{handler.__name__}: the first parameter must be `request`")
    inputs: dict[str, type[BaseModel]] = {}
    for name in parameters[1:]:
        model = hints.get(name)
        if name not in _INPUTS or not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise TypeError(f"{handler.__name__}: {name!r} is not one of path/query/body: a model")
        inputs[name] = model
    placeholders = set(_PLACEHOLDER.findall(path))
    path_model = inputs.get("path")
    declared = set(path_model.model_fields) if path_model is not None else set()
    if placeholders != declared:
        raise TypeError(f"{handler.__name__}: path parameters {placeholders} but model {declared}")
    returned = hints.get("return")
    raw = options.get("raw")
    status = options.get("status", 200)
    response: type[BaseModel] | RawResponse
    if isinstance(returned, type) and issubclass(returned, BaseModel) and raw is None:
        response = returned
    elif (
        raw is not None and isinstance(returned, type) and issubclass(returned, web.StreamResponse)
    ):
        response = raw
    else:
        raise TypeError(f"{handler.__name__}: return a model, or a web.StreamResponse with `raw`")
    if not 200 <= status < 300:
        raise TypeError(f"{handler.__name__}: the success status must be 2xx")
    # The model's own docstring (not one it inherits) says what the response is.
    model_doc = response.__doc__ if isinstance(response, type) else None
    return Route(
        method=method,
        path=path,
        handler=handler,
        operation_id=options.get("operation_id") or _camel(handler.__name__),
        summary=options["summary"],
        security=options["security"],
        status=status,
        returns=options.get("returns") or (model_doc or "Success.").strip().splitlines()[0],
        response=response,
        body=inputs.get("body"),
        path_params=path_model,
        query=inputs.get("query"),
        description=options.get("description", ""),
        tags=options.get("tags", ()),
        errors=dict(options.get("errors", {})),
    )


class RouteTable:
    """The routes of one part of the API, declared with the decorators below."""

    def __init__(self, *, tag: str | None = None) -> None:
        self.routes: list[Route] = []
        self._tags = (tag,) if tag else ()

    def route(self, method: Method, path: str, **options: Unpack[RouteOptions]) -> Callable[[H], H]:
        """Declare `method path` for the decorated handler (options: see `declare`)."""

        def register(handler: H) -> H:
            options.setdefault("tags", self._tags)
            self.routes.append(declare(method, path, handler, **options))
            return handler

        return register

    def get(self, path: str, **options: Unpack[RouteOptions]) -> Callable[[H], H]:
        return self.route("GET", path, **options)

    def post(self, path: str, **options: Unpack[RouteOptions]) -> Callable[[H], H]:
        return self.route("POST", path, **options)

    def put(self, path: str, **options: Unpack[RouteOptions]) -> Callable[[H], H]:
        return self.route("PUT", path, **options)

    def patch(self, path: str, **options: Unpack[RouteOptions]) -> Callable[[H], H]:
        return self.route("PATCH", path, **options)

    def delete(self, path: str, **options: Unpack[RouteOptions]) -> Callable[[H], H]:
        return self.route("DELETE", path, **options)

    def add_to(self, app: web.Application) -> None:
        """Serve these routes in `app` and list them in its OpenAPI document."""
        registry = app.get(API_ROUTES_KEY)
        if registry is None:
            registry = app[API_ROUTES_KEY] = ApiRoutes()
        for route in self.routes:
            if route.method == "GET":
                app.router.add_get(route.path, route.endpoint())
            else:
                app.router.add_route(route.method, route.path, route.endpoint())
            registry.routes.append(route)


class ApiRoutes:
    """Every declared route of an application, in the order they were added."""

    def __init__(self) -> None:
        self.routes: list[Route] = []
        self.cache: dict[str, Any] = {}


API_ROUTES_KEY = web.AppKey("api_routes", ApiRoutes)
