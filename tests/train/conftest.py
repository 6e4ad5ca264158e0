"""Fixtures of the training tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def fewer_held_out_images(monkeypatch):
    """Score 1,000 held-out training images after each epoch instead of 10,000 (no test here reads more than the
    first 100; scoring 10,000 cost a short LeNet run more than its training)."""
    monkeypatch.setattr("ddzoo.train.loop.HOLDOUT_SCORED", 1_000)
