"""Every way a hub, an optional dependency or a bug can fail ends in one line on stderr and exit 1."""

from __future__ import annotations

import socket
import sys

import pytest

from ddzoo import constants
from ddzoo.cli import main


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
    assert "resolving the model" in err and "--offline" in err


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
    assert main(["list"]) == 1
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
