"""Serving errors as TensorFlow Serving reports them: a canonical status and its HTTP code.

TF Serving's REST layer maps gRPC status codes to HTTP (tensorflow_serving/model_servers/
http_server.cc, ToHTTPStatusCode); the body is always `{"error": "<message>"}`.
"""
from __future__ import annotations

import re

# An absolute POSIX path (two components or more), as it appears in OS and TF error messages.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s'\"/:]+/)+[^\s'\":,;)]*")

# Canonical status -> HTTP code, as TF Serving's REST API maps them.
HTTP_CODES = {
    "INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "NOT_FOUND": 404, "METHOD_NOT_ALLOWED": 405, "LENGTH_REQUIRED": 411, "PAYLOAD_TOO_LARGE": 413,
    "RESOURCE_EXHAUSTED": 429, "INTERNAL": 500, "UNIMPLEMENTED": 501, "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
    # HTTP-level refusals TF Serving has no canonical status for (it neither times out slow clients
    # nor decodes Content-Encoding): 4xx, because the client, not the server, is at fault.
    "REQUEST_TIMEOUT": 408, "UNSUPPORTED_MEDIA_TYPE": 415,
}


class ServingError(Exception):
    """An error answered to the client as `{"error": message}` with `http_code`."""
    status = "INTERNAL"

    def __init__(self, message: str, allow: str = None):
        super().__init__(message)
        self.message = message
        self.allow = allow  # the Allow header of a 405

    @property
    def http_code(self) -> int:
        return HTTP_CODES[self.status]


def _error(status: str) -> type:
    return type("".join(p.title() for p in status.split("_")), (ServingError,), {"status": status})


InvalidArgument = _error("INVALID_ARGUMENT")
FailedPrecondition = _error("FAILED_PRECONDITION")
NotFound = _error("NOT_FOUND")
MethodNotAllowed = _error("METHOD_NOT_ALLOWED")
LengthRequired = _error("LENGTH_REQUIRED")
PayloadTooLarge = _error("PAYLOAD_TOO_LARGE")
ResourceExhausted = _error("RESOURCE_EXHAUSTED")
Internal = _error("INTERNAL")
Unimplemented = _error("UNIMPLEMENTED")
Unavailable = _error("UNAVAILABLE")
DeadlineExceeded = _error("DEADLINE_EXCEEDED")
RequestTimeout = _error("REQUEST_TIMEOUT")
UnsupportedMediaType = _error("UNSUPPORTED_MEDIA_TYPE")
Unauthenticated = _error("UNAUTHENTICATED")
PermissionDenied = _error("PERMISSION_DENIED")


def redact_paths(text: str) -> str:
    """`text` with absolute file paths replaced by `<path>`: error bodies must not map the server's disk."""
    return _ABSOLUTE_PATH.sub("<path>", text)
