"""The statistics module: Wilson and paired intervals, their JSON and text forms."""

from __future__ import annotations

import math

import pytest
import torch

from ddzoo.errors import CheckpointError, InvalidArgumentError
from ddzoo.stats import Accuracy, PairedDrop, interval_text, percent, wilson_interval


@pytest.mark.parametrize("k, n, low, high", [(0, 10, 0.0, 0.2775), (5, 10, 0.2366, 0.7634), (98, 100, 0.9300, 0.9945)])
def test_wilson_interval(k, n, low, high):
    got = wilson_interval(k, n)
    assert got[0] == pytest.approx(low, abs=1e-4) and got[1] == pytest.approx(high, abs=1e-4)
    assert not math.isnan(got[0])


def test_an_interval_needs_a_trial():
    with pytest.raises(InvalidArgumentError):
        wilson_interval(0, 0)


def test_accuracy_round_trips_and_reads_as_the_card_states_it():
    accuracy = Accuracy.of(torch.tensor([True] * 185 + [False] * 15))
    assert accuracy.images == 200 and accuracy.accuracy == 0.925
    assert Accuracy.from_json(accuracy.to_json()) == accuracy
    assert Accuracy.from_clean_json(accuracy.to_clean_json()) == accuracy
    assert list(accuracy.to_clean_json()) == ["images", "clean_accuracy", "clean_accuracy_ci95"]
    assert accuracy.text() == "92.5 % [88.0, 95.4] (n=200)"
    assert accuracy.text(digits=2).startswith("92.50 % [88.0, 95.4]")
    assert accuracy.fraction_text() == "0.9250 [0.880, 0.954]"


def test_paired_drop_round_trips_and_never_prints_minus_zero():
    base = torch.tensor([True] * 90 + [False] * 10)
    same = PairedDrop.of(base, base.clone())
    assert same.ci95 == (0.0, 0.0) and same.change_text() == "+0.00 pt [+0.00, +0.00]"
    worse = base.clone()
    worse[:5] = False
    paired = PairedDrop.of(base, worse)
    assert PairedDrop.from_json(paired.to_json()) == paired and paired.lost == 5 and paired.gained == 0
    assert paired.change_text().startswith("-5.00 pt [")


def test_formatting_helpers():
    assert percent(0.9125) == "91.25 %" and percent(0.9125, 1) == "91.2 %"
    assert interval_text((0.899, 0.924)) == "[89.9, 92.4]" and interval_text(None) == ""


def test_a_bad_interval_is_one_line():
    with pytest.raises(CheckpointError, match="two numbers"):
        Accuracy.from_json({"accuracy": 0.5, "ci95": "wide", "images": 3})
