"""Errors answered as JSON bodies shaped like Langfuse's: `{"message": ..., "error": ...}`."""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.responses import JSONResponse


class ApiError(Exception):
    """An error the client caused or must know about; `message` says what to do about it."""

    status_code = 500
    kind = "InternalServerError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def response(self) -> JSONResponse:
        return error_response(self.status_code, self.message, self.kind)


class BadRequest(ApiError):
    status_code = 400
    kind = "InvalidRequestError"


class Unauthorized(ApiError):
    status_code = 401
    kind = "Unauthorized"


class NotFound(ApiError):
    status_code = 404
    kind = "LangfuseNotFoundError"


class MethodNotAllowed(ApiError):
    status_code = 405
    kind = "MethodNotAllowedError"


class PayloadTooLarge(ApiError):
    status_code = 413
    kind = "PayloadTooLargeError"


class UnsupportedMediaType(ApiError):
    status_code = 415
    kind = "UnsupportedMediaTypeError"


def _finite(value: Any) -> Any:
    """Replace NaN and infinities (not JSON) by None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


class Json(JSONResponse):
    """JSON that never fails on NaN/Infinity (they become null), compact and UTF-8."""

    def render(self, content: Any) -> bytes:
        try:
            text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        except ValueError:
            text = json.dumps(_finite(content), ensure_ascii=False, separators=(",", ":"))
        return text.encode("utf-8")


def error_response(status_code: int, message: str, kind: str) -> JSONResponse:
    return Json({"message": message, "error": kind}, status_code=status_code)
