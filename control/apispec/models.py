"""Base classes for the API's pydantic models, and the error body every error response has."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def _integral(value: object) -> object:
    return int(value) if isinstance(value, float) and value.is_integer() else value


# An integer as JSON Schema means it: 600 and 600.0 are the same number (not "600", not true).
JsonInt = Annotated[int, BeforeValidator(_integral)]


class RequestModel(BaseModel):
    """A request body: exact JSON types (no "600" for 600, no true for 1), no unknown fields."""

    model_config = ConfigDict(strict=True, extra="forbid")


class ParametersModel(BaseModel):
    """Path or query parameters. They arrive as text, so numbers are read from their digits."""

    model_config = ConfigDict(extra="ignore")


class ResponseModel(BaseModel):
    """A response body: exactly the declared fields are sent, every one of them always."""

    model_config = ConfigDict(extra="ignore", json_schema_serialization_defaults_required=True)


class ErrorDetail(ResponseModel):
    code: str = Field(
        description="Stable, machine-readable reason.",
        examples=["bad_json", "invalid_request", "unauthorized", "not_found", "internal_error"],
    )
    message: str = Field(description="What went wrong, in English, for developers.")


class Error(ResponseModel):
    """Every error: `{"error": {"code": ..., "message": ...}}`."""

    error: ErrorDetail
