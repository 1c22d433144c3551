"""The OpenAPI 3.1 document, generated from the declared routes and their pydantic models."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from control.apispec.models import Error
from control.apispec.routes import RawResponse, Route

REF_TEMPLATE = "#/components/schemas/{model}"
_ERROR_REF = {"$ref": REF_TEMPLATE.format(model="Error")}


def _schema_of(model: type[BaseModel] | RawResponse, refs: Mapping[Any, Any]) -> dict[str, Any]:
    if isinstance(model, RawResponse):
        return {model.media_type: {"schema": dict(model.schema)}}
    return {"application/json": {"schema": refs[(model, "serialization")]}}


def _parameters(model: type[BaseModel], where: str) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF_TEMPLATE)
    if "$defs" in schema:
        raise TypeError(f"{model.__name__}: parameters must be plain values, not models")
    required = set(schema.get("required", []))
    parameters = []
    for name, field_schema in schema["properties"].items():
        field_schema = {k: v for k, v in field_schema.items() if k != "title"}
        parameter: dict[str, Any] = {
            "name": name,
            "in": where,
            "required": where == "path" or name in required,
        }
        if "description" in field_schema:
            parameter["description"] = field_schema.pop("description")
        parameter["schema"] = field_schema
        parameters.append(parameter)
    return parameters


def _operation(route: Route, refs: Mapping[Any, Any]) -> dict[str, Any]:
    operation: dict[str, Any] = {"operationId": route.operation_id, "summary": route.summary}
    if route.description:
        operation["description"] = route.description
    if route.tags:
        operation["tags"] = list(route.tags)
    parameters = []
    if route.path_params is not None:
        parameters += _parameters(route.path_params, "path")
    if route.query is not None:
        parameters += _parameters(route.query, "query")
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        operation["requestBody"] = {
            # An empty body counts as {}: needed only when the model has required fields.
            "required": any(f.is_required() for f in route.body.model_fields.values()),
            "content": {"application/json": {"schema": refs[(route.body, "validation")]}},
        }
    responses: dict[str, Any] = {
        str(route.status): {
            "description": route.returns,
            "content": _schema_of(route.response, refs),
        }
    }
    for status, meaning in route.error_statuses().items():
        responses[str(status)] = {
            "description": meaning,
            "content": {"application/json": {"schema": _ERROR_REF}},
        }
    operation["responses"] = responses
    # Stated on every operation, so that a public one says so ([]) and nothing is inherited.
    operation["security"] = [{scheme.name: []} for scheme in route.security.schemes]
    return operation


def _models(routes: Iterable[Route]) -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    found: list[tuple[type[BaseModel], JsonSchemaMode]] = [(Error, "serialization")]
    for route in routes:
        if route.body is not None:
            found.append((route.body, "validation"))
        if isinstance(route.response, type):
            found.append((route.response, "serialization"))
    return list(dict.fromkeys(found))


def openapi_document(routes: Sequence[Route], info: Mapping[str, Any]) -> dict[str, Any]:
    """The document for `routes`; raises ValueError when two declare the same operation."""
    refs, definitions = models_json_schema(_models(routes), ref_template=REF_TEMPLATE)
    paths: dict[str, dict[str, Any]] = {}
    schemes: dict[str, Any] = {}
    operation_ids: set[str] = set()
    for route in routes:
        item = paths.setdefault(route.openapi_path, {})
        method = route.method.lower()
        if method in item or route.operation_id in operation_ids:
            raise ValueError(
                f"{route.method} {route.path} ({route.operation_id}) is declared twice"
            )
        operation_ids.add(route.operation_id)
        item[method] = _operation(route, refs)
        for scheme in route.security.schemes:
            schemes[scheme.name] = dict(scheme.definition)
    return {
        "openapi": "3.1.0",
        "info": dict(info),
        "paths": paths,
        "components": {"schemas": definitions.get("$defs", {}), "securitySchemes": schemes},
    }
