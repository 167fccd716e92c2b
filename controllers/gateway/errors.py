"""The gateway's one error shape, ``{"error": ..., "problems": [{"field", "message"}]}``, and its handlers.

Agents and people read the same body: ``error`` says what went wrong in a sentence, ``problems`` names
each offending field (``runs[3].signals.testsPassed``), so a client can point at the bad input without
parsing prose. Validation errors (422), refused calls (``ApiError``) and an unreachable store (503
with ``Retry-After``, nothing written) all answer in it.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from controllers.gateway.metrics import Metrics
from controllers.store.db import StoreUnavailable

UNAVAILABLE = "the experience store is unavailable; nothing was written, retry later"


class ApiError(Exception):
    """A request the gateway refuses, answered as ``status`` with the error shape and ``headers``."""

    def __init__(
        self,
        status: int,
        message: str,
        problems: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.problems, self.headers = (
            status,
            message,
            problems or [],
            headers or {},
        )


def field_path(location: tuple[Any, ...] | list[Any]) -> str:
    """('body', 'runs', 3, 'signals', 'testsPassed') -> 'runs[3].signals.testsPassed'."""
    path = ""
    for part in location:
        if part in ("body", "header", "query", "path") and not path:
            continue
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


def invalid_request(problems: list[dict[str, str]], summary: str) -> ApiError:
    """A 422 whose sentence lists the problems (``summary``, already joined)."""
    return ApiError(422, f"invalid request: {summary}", problems)


def install_error_handlers(app: FastAPI, metrics: Metrics, retry_after_seconds: int) -> None:
    """Answer ``ApiError``, validation errors and ``StoreUnavailable`` in the gateway's error shape."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, error: ApiError) -> JSONResponse:
        return JSONResponse(
            {"error": error.message, "problems": error.problems},
            status_code=error.status,
            headers=error.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [{"field": field_path(e["loc"]), "message": e["msg"]} for e in error.errors()]
        summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:5])
        return await _api_error(request, invalid_request(problems, summary))

    @app.exception_handler(StoreUnavailable)
    async def _unavailable(_: Request, error: StoreUnavailable) -> JSONResponse:
        metrics.unavailable.inc()
        return JSONResponse(
            {"error": UNAVAILABLE, "problems": []},
            status_code=503,
            headers={"Retry-After": str(retry_after_seconds)},
        )
