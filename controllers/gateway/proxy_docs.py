"""The proxy's paths in the OpenAPI document: what agents call, with the headers the router reads.

Requests under ``/openai/`` never reach FastAPI (``routes_api.ProxyDispatch`` hands them to the proxy
first), so there is no FastAPI endpoint to describe them. ``document`` adds their path items to the
app's OpenAPI document instead: the path, the bearer token (``routes/use`` on the route's namespace),
the ``X-Kaizen-*`` headers, the body's shape and the answers; and ``GET .../v1/models``, the list of
the one model a client should send (the route's name). The document, clients generated from
it and the fuzzer (tests/security/test_fuzz.py) then see the same surface an agent does.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

NAMESPACE = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
ROUTE = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"
HEADERS = (
    (
        "X-Kaizen-Request-Id",
        r"^[A-Za-z0-9._:-]{1,128}$",
        "Your id for this call (echoed back; feedback can name it)",
    ),
    ("X-Kaizen-Unit", None, "The unit this call belongs to (wins over User and Session)"),
    ("X-Kaizen-User", None, "The user a User-unit route is sticky on"),
    ("X-Kaizen-Session", None, "The session a Session-unit route is sticky on"),
    ("X-Kaizen-Variant", None, "Pin one variant (for replays and debugging)"),
)
ANSWERS = {
    "200": "The serving variant's answer; X-Kaizen-Variant and X-Kaizen-Request-Id name it",
    "401": "No valid token",
    "403": "The caller may not use routes in this namespace",
    "404": "No such route (a route is named after its LearningPolicy, and the operator writes it)",
    "413": "Body over the proxy's limit (KAIZEN_PROXY_MAX_BODY_BYTES)",
}


class Model(BaseModel):
    """One model a client may send: the route's name (``proxy_replies.model_list``)."""

    id: str
    object: str = "model"
    created: int = 0
    owned_by: str = "kaizen"


class ModelList(BaseModel):
    """OpenAI's model list: the route's name alone (the router, not ``model``, picks the variant)."""

    object: str = "list"
    data: list[Model]


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: Any = None


class ChatRequest(BaseModel):
    """An OpenAI chat completion request; fields beyond these are passed upstream untouched."""

    model_config = ConfigDict(extra="allow")
    model: str | None = None
    messages: list[Message] = Field(min_length=1)
    stream: bool = False


class CompletionRequest(BaseModel):
    """An OpenAI (legacy) completion request; fields beyond these are passed upstream untouched."""

    model_config = ConfigDict(extra="allow")
    model: str | None = None
    prompt: str | list[str]
    stream: bool = False


def _parameters() -> list[dict[str, Any]]:
    path = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "pattern": pattern}}
        for name, pattern in (("namespace", NAMESPACE), ("route", ROUTE))
    ]
    headers = [
        {
            "name": name,
            "in": "header",
            "required": False,
            "description": description,
            "schema": {"type": "string", "maxLength": 256, **({"pattern": pattern} if pattern else {})},
        }
        for name, pattern, description in HEADERS
    ]
    return path + headers


def _operation(model: type[BaseModel], summary: str, components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema
    return {
        "post": {
            "tags": ["router"],
            "summary": summary,
            "parameters": _parameters(),
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
                },
            },
            "responses": {code: {"description": text} for code, text in ANSWERS.items()},
            "security": [{"HTTPBearer": []}],
        }
    }


def _models(components: dict[str, Any]) -> dict[str, Any]:
    """``GET .../v1/models``: the path parameters, the bearer token, and the list's shape."""
    schema = ModelList.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(schema.pop("$defs", {}))
    components[ModelList.__name__] = schema
    answers: dict[str, Any] = {code: {"description": text} for code, text in ANSWERS.items() if code != "413"}
    answers["200"] = {
        "description": "The route's name as the one model to send (OpenAI's list shape)",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ModelList"}}},
    }
    return {
        "get": {
            "tags": ["router"],
            "summary": "The models a client may send: the route's name (its LearningPolicy's)",
            "parameters": _parameters()[:2],
            "responses": answers,
            "security": [{"HTTPBearer": []}],
        }
    }


def document(app: FastAPI) -> None:
    """Make ``app.openapi()`` describe the proxy's paths beside the API's own."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = build()
            components = spec.setdefault("components", {}).setdefault("schemas", {})
            spec.setdefault("components", {}).setdefault("securitySchemes", {}).setdefault(
                "HTTPBearer", {"type": "http", "scheme": "bearer"}
            )
            base = "/openai/{namespace}/{route}/v1"
            spec["paths"][f"{base}/chat/completions"] = _operation(
                ChatRequest,
                "Answered by the router: the champion or the variant the experiment assigns",
                components,
            )
            spec["paths"][f"{base}/completions"] = _operation(
                CompletionRequest, "Answered by the router, as chat/completions", components
            )
            spec["paths"][f"{base}/models"] = _models(components)
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
