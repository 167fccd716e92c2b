"""The proxy's paths in the OpenAPI document: what agents call, with the headers the router reads.

Requests under ``/openai/`` never reach FastAPI (``routes_api.ProxyDispatch`` hands them to the proxy
first), so these endpoints only describe them: the path, the bearer token (``routes/use`` on the
route's namespace), the ``X-Kaizen-*`` headers and the body's shape. Their bodies never run. The
document, clients generated from it and the fuzzer (tests/security/test_fuzz.py) then see the same
surface an agent does.

(No ``from __future__ import annotations`` here: FastAPI reads the endpoint annotations at runtime.)
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

router = APIRouter(prefix="/openai", tags=["router"])
_bearer = HTTPBearer(description="A Kaizen token (kz2.) or a ServiceAccount token with routes/use")

Namespace = Annotated[str, Path(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", max_length=63)]
Route = Annotated[str, Path(pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$", max_length=253)]
RequestId = Annotated[
    str | None,
    Header(
        alias="X-Kaizen-Request-Id",
        pattern=r"^[A-Za-z0-9._:-]{1,128}$",
        description="Your id for this call (echoed back; feedback can name it). Default: generated.",
    ),
]
Unit = Annotated[
    str | None,
    Header(
        alias="X-Kaizen-Unit",
        max_length=256,
        description="The unit this call belongs to (wins over User/Session)",
    ),
]
User = Annotated[
    str | None,
    Header(alias="X-Kaizen-User", max_length=256, description="The user a User-unit route is sticky on"),
]
Session = Annotated[
    str | None,
    Header(
        alias="X-Kaizen-Session", max_length=256, description="The session a Session-unit route is sticky on"
    ),
]
Variant = Annotated[
    str | None,
    Header(
        alias="X-Kaizen-Variant", max_length=63, description="Pin one variant (for replays and debugging)"
    ),
]


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


_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"description": "The serving variant's answer; X-Kaizen-Variant and X-Kaizen-Request-Id name it"},
    401: {"description": "No valid token"},
    403: {"description": "The caller may not use routes in this namespace"},
    404: {"description": "No such route"},
    413: {"description": "Body over the proxy's limit"},
}


@router.post("/{namespace}/{route}/v1/chat/completions", responses=_ANSWERS, dependencies=[Depends(_bearer)])
def chat_completions(
    namespace: Namespace,
    route: Route,
    body: ChatRequest,
    request_id: RequestId = None,
    unit: Unit = None,
    user: User = None,
    session: Session = None,
    variant: Variant = None,
) -> dict[str, Any]:
    """Answered by the router: the route's champion or the challenger its experiment assigns."""
    raise NotImplementedError("served by the proxy (routes_api.ProxyDispatch), never by FastAPI")


@router.post("/{namespace}/{route}/v1/completions", responses=_ANSWERS, dependencies=[Depends(_bearer)])
def completions(
    namespace: Namespace,
    route: Route,
    body: CompletionRequest,
    request_id: RequestId = None,
    unit: Unit = None,
    user: User = None,
    session: Session = None,
    variant: Variant = None,
) -> dict[str, Any]:
    """Answered by the router, as ``chat/completions``."""
    raise NotImplementedError("served by the proxy (routes_api.ProxyDispatch), never by FastAPI")
