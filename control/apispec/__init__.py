"""The API defined once: routes declared with pydantic models, served and documented from that.

See docs/architecture.md ("Adding an API route").
"""

from control.apispec.document import openapi_document
from control.apispec.models import Error, JsonInt, ParametersModel, RequestModel, ResponseModel
from control.apispec.routes import (
    API_ROUTES_KEY,
    ApiRoutes,
    NotFound,
    RawResponse,
    Route,
    RouteTable,
)
from control.apispec.security import (
    API_KEY,
    PUBLIC,
    Security,
    SecurityScheme,
    bearer_token,
    is_api_key,
    unauthorized,
)

__all__ = [
    "API_KEY",
    "API_ROUTES_KEY",
    "PUBLIC",
    "ApiRoutes",
    "Error",
    "JsonInt",
    "NotFound",
    "ParametersModel",
    "RawResponse",
    "RequestModel",
    "ResponseModel",
    "Route",
    "RouteTable",
    "Security",
    "SecurityScheme",
    "bearer_token",
    "is_api_key",
    "openapi_document",
    "unauthorized",
]
