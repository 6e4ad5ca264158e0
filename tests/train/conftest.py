"""Fixtures of the training tests."""

from __future__ import annotations

import pytest

SCORED = 1_000


@pytest.fixture(autouse=True)
def fewer_scored_images(monkeypatch):
    """A training run here scores 1,000 held-out images after each epoch and 1,000 test images at its end, not
    10,000 of each: these tests check weights, resumption and curves, not accuracies to a tenth of a point (none
    reads past the first 100 held-out images), and the scoring cost a short LeNet run more than its training.
    The session fixtures (the LeNet trained for the tests) are built before this applies: they score all."""
    from ddzoo import data
    from ddzoo.data import Split

    load_split = data.load_split

    def first_test_images(name: str, split: str = "test", *args, **kwargs) -> Split:
        loaded = load_split(name, split, *args, **kwargs)
        if split != "test":
            return loaded
        return Split(loaded.info, loaded.name, loaded.images[:SCORED], loaded.labels[:SCORED])

    monkeypatch.setattr("ddzoo.train.loop.HOLDOUT_SCORED", SCORED)
    monkeypatch.setattr(data, "load_split", first_test_images)
