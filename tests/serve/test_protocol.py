"""The service's request checks that need no server: the body limit and the binary-data header."""

from __future__ import annotations

import pytest

from ddzoo.serve.app import ServeSettings


def test_the_body_limit_follows_the_model_and_max_batch():
    settings_ = ServeSettings(max_batch=8)
    assert settings_.body_limit((1, 28, 28)) == 8 * 784 * 32 + 65536
    assert ServeSettings(max_body_bytes=4096).body_limit((3, 32, 32)) == 4096


@pytest.mark.parametrize("header", ["²", "٣", "1e3", " 12", "-1", "9" * 20])
def test_a_non_ascii_or_odd_length_header_is_a_400(header):
    """str.isdigit() accepts '²' and Arabic-Indic digits, which int() then refuses: found by the fuzz test."""
    from ddzoo.errors import BadRequestError
    from ddzoo.serve.protocol import parse_infer_request

    with pytest.raises(BadRequestError):
        parse_infer_request(b'{"inputs": []}', header, "input", (1, 28, 28))
