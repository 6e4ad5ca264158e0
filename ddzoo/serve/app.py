"""``zoo serve``: a KServe v2 / Triton-protocol service over one verified artifact on uvicorn.

:mod:`.service` the served model (loading, availability, batcher, metrics), :mod:`.http` its HTTP app,
:mod:`.grpc` its gRPC server, :mod:`.status` the one table of refusals for both, :mod:`.metadata` the model as
both describe it. Here: which artifact to serve, and the server's lifecycle (on shutdown uvicorn stops accepting
connections, in-flight requests finish, then the batcher drains).
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

from ddzoo.serve import require_serve_extra

require_serve_extra()  # before the imports below: a missing extra is one line naming the install, not a traceback

from ddzoo.errors import ModelLoadError
from ddzoo.package import read_config, read_verification
from ddzoo.serve.http import HttpApp
from ddzoo.serve.service import ModelService, ServeSettings
from ddzoo.serve.status import log


def create_app(load, name: str, settings: ServeSettings = ServeSettings(), on_load_failure=None) -> HttpApp:
    """The ASGI app serving model ``name``; ``load()`` returns ``(runner, metadata)`` (called at startup).

    If ``load`` fails, ``/v2/health/ready`` answers 503 with the failure and ``on_load_failure(message)`` is
    called (``zoo serve`` stops the server and prints it as its one error line); without that callback the
    failure is logged at once instead.
    """
    return HttpApp(ModelService(load, name, settings, on_load_failure))


def choose_artifact(package: Path, *, artifact: str | None = None, backend: str = "auto",
                    allow_unverified: bool = False) -> str:
    """The artifact to serve: ``artifact`` if given, else :func:`~ddzoo.runtime.choose_artifact`'s for
    ``backend`` (a TensorRT engine for this GPU, else ``model.onnx``); refuses one without a passing
    verification for its bytes unless ``allow_unverified``."""
    from ddzoo.runtime import check_backend
    from ddzoo.runtime import choose_artifact as runtime_choice
    from ddzoo.verification import require_passing

    check_backend(backend)
    if artifact is None:
        artifact = runtime_choice(package, backend=backend)
    if not allow_unverified:
        require_passing(package, [artifact])
    return artifact


def open_artifact(package: Path, artifact: str, *, spin_wait: bool = True):
    """``(runner, metadata)`` for a served artifact; the metadata carries its verification record."""
    from ddzoo.records import ArtifactRecord
    from ddzoo.runtime import open_runner

    runner = open_runner(package / artifact, spin_wait=spin_wait)
    found = read_verification(package)["records"].get(artifact)
    record = ArtifactRecord.from_json(found, f"{package}: {artifact}") if found else None
    metadata = {"artifact": artifact, **runner.describe(), "verified": bool(record and record.gate.passed),
                "sha256": record.sha256 if record else "", "clean_accuracy": record.clean.accuracy if record else None,
                "rho2": record.headline_rho2 if record else None}
    return runner, metadata


class _Server:
    """uvicorn's server, exiting normally after a clean drain on SIGTERM/SIGINT (uvicorn re-raises the signal,
    which makes the exit status 143)."""

    @staticmethod
    def make(config):
        import uvicorn

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self):
                with super().capture_signals():
                    yield
                    self._captured_signals.clear()  # drained: nothing to re-raise

        return Server(config)


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(model: str | Path, name: str | None = None, *, host: str = "127.0.0.1", port: int = 8000,
          artifact: str | None = None, backend: str = "auto", allow_unverified: bool = False,
          settings: ServeSettings = ServeSettings()) -> None:
    """Serve ``model`` (a package folder, or a model name to pull) as ``name`` (default: the package's) until
    interrupted (graceful: in-flight requests finish).

    Raises:
        ModelLoadError: the artifact could not be loaded (the server stops at once).
    """
    import uvicorn

    from ddzoo.zoo import resolve_package

    package, model_name = resolve_package(model)
    name = name or model_name
    classes = len(read_config(package)["classes"])
    artifact = choose_artifact(package, artifact=artifact, backend=backend, allow_unverified=allow_unverified)
    if settings.api_key is None and not _is_loopback(host):
        log(f"warning: serving on {host} without an API key: anyone who can reach port {port} can use the "
             "model; pass --api-key or set ZOO_API_KEY")

    def load():
        # onnxruntime's threads spin only without batching: between batches the HTTP path needs the cores
        runner, metadata = open_artifact(package, artifact, spin_wait=settings.max_batch == 1)
        grpc = f" and grpc://{host}:{settings.grpc_port}" if settings.grpc_port else ""
        print(f"serving {name} from {package / metadata['artifact']} on {metadata['backend']} "
              f"({metadata['provider']}, {metadata['precision']}) at http://{host}:{port}{grpc}", flush=True)
        return runner, {**metadata, "classes": classes}

    failures: list[str] = []

    def stop(message: str) -> None:
        failures.append(message)
        server.should_exit = True

    if settings.grpc_port is not None:
        settings = dataclasses.replace(settings, grpc_host=host)
    app = create_app(load, name, settings, on_load_failure=stop)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, proxy_headers=False,
                            timeout_graceful_shutdown=settings.timeout_s)
    server = _Server.make(config)
    server.run()
    if failures:
        raise ModelLoadError(f"{package / artifact}: {failures[0]}; check the package ('zoo verify') or choose "
                             "another --artifact / --backend")


__all__ = ["ServeSettings", "choose_artifact", "create_app", "open_artifact", "serve"]
