"""Prometheus metrics of one served model, shared by HTTP and gRPC (each answer counted by its HTTP status, a
gRPC answer by its HTTP equivalent: :mod:`ddzoo.serve.status`)."""

from __future__ import annotations

from ddzoo.serve import require_serve_extra

require_serve_extra()

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from ddzoo.serve.status import Refusal

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5)
MEDIA_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """The metrics of model ``name`` (their own registry).

    ``ddzoo_requests`` counts every answer to an infer request and every refusal on any route of either
    protocol (401, 404, 405 ... by status); ``ddzoo_request_failures`` counts the refusals by reason.
    """

    def __init__(self, name: str):
        self.name = name
        self.registry = CollectorRegistry()
        self.requests = Counter("ddzoo_requests", "Inference requests answered", ["model", "code"],
                                registry=self.registry)
        self.failures = Counter("ddzoo_request_failures", "Inference requests that failed", ["model", "reason"],
                                registry=self.registry)
        histogram = {"labelnames": ["model"], "registry": self.registry}
        self.queue = Histogram("ddzoo_queue_seconds", "Time a request waited for its batch", buckets=LATENCY_BUCKETS,
                               **histogram).labels(name)
        self.compute = Histogram("ddzoo_compute_seconds", "Backend time per batch", buckets=LATENCY_BUCKETS,
                                 **histogram).labels(name)
        self.latency = Histogram("ddzoo_request_seconds", "End-to-end request time", buckets=LATENCY_BUCKETS,
                                 **histogram).labels(name)
        self.batch = Histogram("ddzoo_batch_size", "Images per backend call",
                               buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512), **histogram).labels(name)
        self._by_code: dict = {}  # status -> counter child

    def count(self, status: int, reason: str | None = None) -> None:
        """One answer: its (HTTP-equivalent) status, and the failure reason of a refusal."""
        if status not in self._by_code:
            self._by_code[status] = self.requests.labels(self.name, str(status))
        self._by_code[status].inc()
        if reason:
            self.failures.labels(self.name, reason).inc()

    def refused(self, refusal: Refusal) -> Refusal:
        """Count ``refusal``; returns it."""
        self.count(refusal.status, refusal.reason)
        return refusal

    def observe_batch(self, size: int, waits: list[float], seconds: float) -> None:
        """One backend call: its images, each request's wait for it, its compute time."""
        self.batch.observe(size)
        self.compute.observe(seconds)
        for wait in waits:
            self.queue.observe(wait)

    def exposition(self) -> bytes:
        """The text ``/metrics`` answers."""
        return generate_latest(self.registry)
