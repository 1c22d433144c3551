"""OpenAPI 3.1 description of the admin API (hand-written, served at /api/v1/openapi.json)."""

from __future__ import annotations

import copy
from typing import Any

from control.tokens import (
    DEFAULT_TTL_SECONDS,
    MAX_IDENTITY_LENGTH,
    MAX_NAME_LENGTH,
    MAX_TTL_SECONDS,
    MIN_TTL_SECONDS,
    ROLES,
)

_ROOM_ID_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _json(description: str, schema_ref: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}},
    }


_ROOM_PARAMETER: dict[str, Any] = {
    "name": "room",
    "in": "path",
    "required": True,
    "description": "Room id.",
    "schema": {"type": "string", "pattern": _ROOM_ID_PATTERN},
}

_COMMON_ERRORS: dict[str, Any] = {
    "400": _error("Malformed JSON (`bad_json`) or an invalid field (`invalid_request`)."),
    "401": _error("Missing or wrong API key (`unauthorized`)."),
    "500": _error("Unexpected server error (`internal_error`)."),
}

_DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Digitale Balie admin API",
        "version": "1.0.0",
        "description": (
            "Create rooms and join links for the Digitale Balie video counter. Every request "
            "except this document needs `Authorization: Bearer <API key>`. Errors are returned "
            'as `{"error": {"code": ..., "message": ...}}`.'
        ),
        "license": {"name": "EUPL-1.2", "identifier": "EUPL-1.2"},
    },
    "security": [{"bearerAuth": []}],
    "paths": {
        "/api/v1/rooms": {
            "post": {
                "operationId": "createRoom",
                "summary": "Create a room",
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/CreateRoomRequest"}
                        }
                    },
                },
                "responses": {
                    "201": _json("The room was created.", "Room"),
                    **_COMMON_ERRORS,
                    "409": _error("A room with this id already exists (`room_exists`)."),
                },
            }
        },
        "/api/v1/rooms/{room}": {
            "parameters": [_ROOM_PARAMETER],
            "get": {
                "operationId": "getRoom",
                "summary": "A room and the participants currently in it",
                "description": (
                    "Rooms that were never created through the API but that someone joined with a "
                    "valid token are returned with `name` and `created_at` null."
                ),
                "responses": {
                    "200": _json("The room.", "RoomWithParticipants"),
                    "401": _COMMON_ERRORS["401"],
                    "404": _error("No such room (`room_not_found`)."),
                    "500": _COMMON_ERRORS["500"],
                },
            },
        },
        "/api/v1/rooms/{room}/tokens": {
            "parameters": [_ROOM_PARAMETER],
            "post": {
                "operationId": "createJoinToken",
                "summary": "Create a join token and link for one person",
                "description": (
                    "The room must have been created with `POST /api/v1/rooms`. The token is put "
                    "in the fragment of `join_url`, so browsers never send it to a server."
                ),
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/CreateTokenRequest"}
                        }
                    },
                },
                "responses": {
                    "201": _json("The token and join link.", "JoinToken"),
                    **_COMMON_ERRORS,
                    "404": _error("No such room (`room_not_found`)."),
                },
            },
        },
        "/api/v1/rooms/{room}/recordings": {
            "parameters": [_ROOM_PARAMETER],
            "post": {
                "operationId": "startRecording",
                "summary": "Start recording the call in this room",
                "description": (
                    "Needs the resident's consent unless the room's case type makes recording "
                    "mandatory. Allowed with the API key or the join token of the employee in this "
                    "room. Every participant's page shows that the call is being recorded."
                ),
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/StartRecordingRequest"}
                        }
                    },
                },
                "responses": {
                    "201": _json("The recording runs.", "Recording"),
                    **_COMMON_ERRORS,
                    "403": _error("A join token of someone other than this room's employee."),
                    "404": _error("No such room (`room_not_found`)."),
                    "409": _error("The room is being recorded already (`recording_active`)."),
                    "422": _error("Consent is needed and missing (`consent_required`)."),
                    "503": _error("The recorder is not available (`recorder_unavailable`)."),
                },
            },
        },
        "/api/v1/rooms/{room}/recordings/{recording}/stop": {
            "parameters": [
                _ROOM_PARAMETER,
                {
                    "name": "recording",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "pattern": "^rec_[a-z0-9]{16}$"},
                },
            ],
            "post": {
                "operationId": "stopRecording",
                "summary": "Stop a recording (stopping twice is harmless)",
                "responses": {
                    "200": _json("The recording, stopped, with its final manifest.", "Recording"),
                    "401": _COMMON_ERRORS["401"],
                    "403": _error("A join token of someone other than this room's employee."),
                    "404": _error("No such recording in this room (`recording_not_found`)."),
                },
            },
        },
        "/api/v1/recordings/{recording}": {
            "parameters": [
                {
                    "name": "recording",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "pattern": "^rec_[a-z0-9]{16}$"},
                }
            ],
            "get": {
                "operationId": "getRecording",
                "summary": "A recording: state, consent, segments and manifest",
                "responses": {
                    "200": _json("The recording.", "Recording"),
                    "401": _COMMON_ERRORS["401"],
                    "403": _error("A join token of someone other than this room's employee."),
                    "404": _error("No recording with this id (`recording_not_found`)."),
                },
            },
        },
        "/api/v1/openapi.json": {
            "get": {
                "operationId": "getOpenApi",
                "summary": "This document",
                "security": [],
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1 document.",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
    },
    "components": {
        "securitySchemes": {
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "description": "The API key from BALIE_API_KEY or <data dir>/secrets/api_key.",
            }
        },
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {
                            "code": {
                                "type": "string",
                                "examples": [
                                    "bad_json",
                                    "invalid_request",
                                    "unauthorized",
                                    "room_not_found",
                                    "room_exists",
                                    "not_found",
                                    "method_not_allowed",
                                    "internal_error",
                                ],
                            },
                            "message": {"type": "string"},
                        },
                    }
                },
            },
            "StartRecordingRequest": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "consent": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["given_by", "statement"],
                        "properties": {
                            "given_by": {"type": "string", "minLength": 1, "maxLength": 200},
                            "statement": {"type": "string", "minLength": 1, "maxLength": 2000},
                        },
                    }
                },
            },
            "Recording": {
                "type": "object",
                "required": ["id", "room", "state", "started_at", "basis", "segments"],
                "properties": {
                    "id": {"type": "string"},
                    "room": {"type": "string"},
                    "state": {"type": "string", "enum": ["recording", "stopped"]},
                    "started_at": {"type": "string", "format": "date-time"},
                    "stopped_at": {"type": ["string", "null"], "format": "date-time"},
                    "stop_reason": {"type": ["string", "null"]},
                    "basis": {"type": "string", "enum": ["consent", "mandatory"]},
                    "case_type": {"type": ["string", "null"]},
                    "consent": {"type": ["object", "null"]},
                    "segments": {"type": "array", "items": {"type": "object"}},
                    "manifest": {
                        "type": ["object", "null"],
                        "description": "The archive manifest (docs/recording.md).",
                    },
                },
            },
            "CreateRoomRequest": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "id": {
                        "type": "string",
                        "pattern": _ROOM_ID_PATTERN,
                        "description": "Room id; generated when absent.",
                    },
                    "name": {
                        "type": ["string", "null"],
                        "minLength": 1,
                        "maxLength": MAX_NAME_LENGTH,
                        "description": "Display name of the room.",
                    },
                    "case_type": {
                        "type": ["string", "null"],
                        "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$",
                        "description": (
                            "What the conversation is about; some case types are recorded by "
                            "law (no consent needed)."
                        ),
                    },
                },
            },
            "Room": {
                "type": "object",
                "required": ["id", "name", "created_at"],
                "properties": {
                    "id": {"type": "string", "pattern": _ROOM_ID_PATTERN},
                    "name": {"type": ["string", "null"]},
                    "case_type": {"type": ["string", "null"]},
                    "created_at": {
                        "type": ["string", "null"],
                        "format": "date-time",
                        "description": "ISO 8601, UTC.",
                    },
                },
            },
            "Participant": {
                "type": "object",
                "required": ["id", "name", "role", "tracks"],
                "properties": {
                    "id": {"type": "string", "description": "Opaque per-session id."},
                    "name": {"type": "string"},
                    "role": {"type": "string", "enum": list(ROLES)},
                    "tracks": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["id", "kind", "muted"],
                            "properties": {
                                "id": {"type": "string"},
                                "kind": {"type": "string", "enum": ["audio", "video"]},
                                "muted": {"type": "boolean"},
                                "packets_in": {"type": "integer"},
                                "bytes_in": {"type": "integer"},
                            },
                        },
                    },
                },
            },
            "RoomWithParticipants": {
                "allOf": [
                    {"$ref": "#/components/schemas/Room"},
                    {
                        "type": "object",
                        "required": ["participants"],
                        "properties": {
                            "participants": {
                                "type": "array",
                                "items": {"$ref": "#/components/schemas/Participant"},
                            }
                        },
                    },
                ]
            },
            "CreateTokenRequest": {
                "type": "object",
                "required": ["identity", "name", "role"],
                "additionalProperties": False,
                "properties": {
                    "identity": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": MAX_IDENTITY_LENGTH,
                        "description": (
                            "Who this is, for your own records; never shown to other participants. "
                            "A new join with the same identity replaces the old one."
                        ),
                    },
                    "name": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": MAX_NAME_LENGTH,
                        "description": "Name shown to the other participants.",
                    },
                    "role": {"type": "string", "enum": list(ROLES)},
                    "ttl": {
                        "type": "integer",
                        "minimum": MIN_TTL_SECONDS,
                        "maximum": MAX_TTL_SECONDS,
                        "default": DEFAULT_TTL_SECONDS,
                        "description": "How long the token is valid, in seconds.",
                    },
                },
            },
            "JoinToken": {
                "type": "object",
                "required": ["token", "join_url", "expires_at"],
                "properties": {
                    "token": {"type": "string", "description": "HS256 JWT."},
                    "join_url": {
                        "type": "string",
                        "format": "uri",
                        "description": "`<base url>/call#token=<token>`.",
                    },
                    "expires_at": {"type": "string", "format": "date-time"},
                },
            },
        },
    },
}


def openapi_document() -> dict[str, Any]:
    """A fresh copy of the document (callers may change it)."""
    return copy.deepcopy(_DOCUMENT)
