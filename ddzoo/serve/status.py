"""How the service answers a request it cannot serve, on both protocols: one table from what went wrong to
the HTTP status, the gRPC status code and the failure reason counted in ``/metrics`` (:mod:`.metrics`).

A request's own fault (:class:`~ddzoo.errors.BadRequestError`: malformed, too many images for ``--max-batch``
...) is 400 / INVALID_ARGUMENT; a full queue or no answer in time is 503 / UNAVAILABLE; anything else is the
backend's failure: 500 / INTERNAL, logged here, and the client is told only that. Messages are bounded
(:func:`~ddzoo.errors.shorten`), so a hostile request cannot make its answer large: gRPC carries the message
in its trailing metadata, which has a hard size limit.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass, field

from ddzoo.errors import BadRequestError, QueueFullError, shorten

MESSAGE_CHARS = 500  # the longest message an answer carries
GRPC_CODES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 404: "NOT_FOUND", 405: "UNIMPLEMENTED",
              413: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}  # HTTP status -> grpc.StatusCode


@dataclass(frozen=True)
class Refusal:
    """A request that gets no logits: its HTTP status, message, failure reason (metrics) and HTTP headers."""

    status: int
    message: str
    reason: str
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "message", shorten(self.message, MESSAGE_CHARS))

    @property
    def grpc_code(self) -> str:
        """The gRPC status code's name (``grpc.StatusCode`` attribute) for this HTTP status."""
        return GRPC_CODES[self.status]


def log(message: str) -> None:
    """One line in the server's log (stderr)."""
    print(f"zoo serve: {message}", file=sys.stderr, flush=True)


def unauthenticated(how: str) -> Refusal:
    """A request without the API key; ``how`` says where the key goes in this protocol."""
    return Refusal(401, f"missing or wrong API key; send {how}", "unauthenticated", {"WWW-Authenticate": "Bearer"})


def method_not_allowed(allowed: str) -> Refusal:
    """A request with the wrong HTTP method (answered without a body)."""
    return Refusal(405, "", "method not allowed", {"Allow": allowed})


def refusal_for(err: BaseException, timeout_s: float) -> Refusal:
    """The answer to a request that failed with ``err`` (while parsing, queueing or computing it)."""
    if isinstance(err, BadRequestError):
        return Refusal(400, str(err), "bad request")
    if isinstance(err, QueueFullError):
        return Refusal(503, f"{err}; retry later", "queue full", {"Retry-After": "1"})
    if isinstance(err, (TimeoutError, asyncio.TimeoutError)):  # distinct types before Python 3.11
        return Refusal(503, f"no answer within {timeout_s:g} s; retry later", "timeout", {"Retry-After": "1"})
    log(f"inference failed: {type(err).__name__}: {shorten((str(err).splitlines() or [''])[0], 300)}")
    return Refusal(500, "inference failed in the backend; the server log has the details", "backend error")
