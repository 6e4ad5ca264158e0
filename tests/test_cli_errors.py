"""Every way a hub, an optional dependency, the command line or a bug can fail ends in one line on stderr and
the exit code documented for its kind: 1 error, 2 usage, 3 a failed gate, 4 internal error."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from ddzoo import constants
from ddzoo.cli import main
from ddzoo.errors import (
    CheckpointError,
    HubContentError,
    InvalidArgumentError,
    ModelNotFoundError,
    UnknownNameError,
    VerificationFailedError,
)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens there once the socket is closed


@pytest.mark.parametrize("endpoint", [lambda: f"http://127.0.0.1:{_closed_port()}",
                                      lambda: "http://no-such-host.invalid"])
def test_unreachable_hub_is_one_line(endpoint, monkeypatch, capsys):
    monkeypatch.setattr(constants, "HF_ENDPOINT", endpoint())
    monkeypatch.setattr(constants, "OFFLINE", False)
    assert main(["pull", "not-bundled-model", "--hub", "hf"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "resolving the model" in err and "--offline" in err and "offline=True" not in err


def test_missing_serve_extra_names_the_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "starlette", None)  # import starlette now raises ImportError
    assert main(["serve", "lenet-mnist-dd"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'ddzoo[serve]'" in err


def test_missing_hub_extra_names_the_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    monkeypatch.setattr(constants, "OFFLINE", False)
    assert main(["pull", "not-bundled-model", "--hub", "hf"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'ddzoo[hub]'" in err


def test_an_unexpected_error_is_still_one_line(monkeypatch, capsys):
    import ddzoo.zoo

    def broken(*args, **kwargs):
        raise RuntimeError("something nobody foresaw\nsecond line")

    monkeypatch.setattr(ddzoo.zoo, "list_models", broken)
    assert main(["list"]) == 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error: RuntimeError: something nobody foresaw" in err
    assert "ZOO_DEBUG=1" in err
    monkeypatch.setenv("ZOO_DEBUG", "1")
    with pytest.raises(RuntimeError):
        main(["list"])


def test_importing_the_service_without_its_extra_names_the_install(monkeypatch):
    from ddzoo.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "starlette", None)
    monkeypatch.delitem(sys.modules, "ddzoo.serve.app", raising=False)
    with pytest.raises(MissingDependencyError, match=r"ddzoo\[serve\]"):
        import ddzoo.serve.app  # noqa: F401
    monkeypatch.delitem(sys.modules, "ddzoo.serve.app", raising=False)


@pytest.mark.parametrize("error, code", [
    (HubContentError("a hub served too much"), 1), (ModelNotFoundError("no such model"), 1),
    (CheckpointError("no config.json"), 1), (InvalidArgumentError("pass --layout"), 2),
    (UnknownNameError("dataset", "nope", ["mnist"]), 2), (VerificationFailedError("gate failed for model.onnx"), 3),
    (RuntimeError("a bug"), 4), (KeyError("a bug"), 4),
])
def test_every_failure_exits_with_the_code_documented_for_its_kind(error, code, monkeypatch, capsys):
    import ddzoo.zoo

    def failing(*args, **kwargs):
        raise error

    monkeypatch.setattr(ddzoo.zoo, "list_models", failing)
    assert main(["list"]) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("zoo: internal error" if code == 4 else "zoo: error: ")


@pytest.mark.parametrize("argv", [["list", "--no-such-option"], ["no-such-command"], ["pull"],
                                  ["list", "--sort", "speed"], ["pull", "../etc"], ["verify", "x", "--limit", "0"],
                                  ["verify", "x", "--candidates", "1"], ["verify", "x", "--robust", "-1"]])
def test_usage_errors_exit_2_like_typers_own(argv, capsys):
    assert main(argv) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_the_exit_codes_are_documented_where_users_look(capsys):
    import ddzoo.cli

    reference = (Path(__file__).resolve().parents[1] / "docs" / "reference" / "cli.md").read_text()
    for code, meaning in ((0, "success"), (1, "error"), (2, "usage"), (3, "gate failed"), (4, "internal error")):
        assert f"| {code} | {meaning}" in reference.lower() and f" {code}    {meaning}" in ddzoo.cli.__doc__.lower()
    assert main(["--help"]) == 0
    assert "Exit codes: 0 success, 1 error" in " ".join(capsys.readouterr().out.split())
