"""``zoo serve``: KServe v2 inference over HTTP with dynamic batching (the ``serve`` extra)."""

from __future__ import annotations

from ddzoo.optional import require

SERVE_MODULES = ("starlette", "uvicorn", "prometheus_client", "orjson", "grpc", "tritonclient.grpc")


def require_serve_extra() -> None:
    """Raise :class:`~ddzoo.errors.MissingDependencyError` naming ``ddzoo[serve]`` if a server package is missing."""
    for module in SERVE_MODULES:
        require(module, "zoo serve", extra="serve")
