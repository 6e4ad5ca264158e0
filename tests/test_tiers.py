"""The test tiers: each test gets exactly one, from its marker or else its fixtures, and the modules run in the
order that keeps two pytest-xdist workers busy (tests/tiers.py)."""

from __future__ import annotations

import pytest

from tests.tiers import TIERS, run_order, tier_of


class FakeItem:
    """What ``tier_of`` and ``run_order`` read of a collected test."""

    def __init__(self, nodeid: str, fixtures: tuple[str, ...] = (), marks: tuple[str, ...] = ()):
        self.nodeid, self.fixturenames = nodeid, list(fixtures)
        self.marks = [getattr(pytest.mark, name).mark for name in marks]

    def iter_markers(self):
        return iter(self.marks)


@pytest.mark.parametrize("fixtures, marks, tier", [
    ((), (), "unit"),
    (("tmp_path", "monkeypatch"), ("filterwarnings",), "unit"),
    (("data_dir",), (), "integration"),
    (("lenet", "lenet_checkpoint", "data_dir"), (), "integration"),  # pytest lists the fixtures' own fixtures too
    (("hub",), (), "integration"),
    ((), ("release",), "release"),
    (("verified_package", "data_dir"), ("release",), "release"),
    (("tmp_path",), ("unit",), "unit"),
])
def test_the_tier_is_the_marker_else_what_the_fixtures_imply(fixtures, marks, tier):
    assert tier_of(FakeItem("tests/test_x.py::test_x", fixtures, marks)) == tier


@pytest.mark.parametrize("fixtures, marks, message", [
    ((), ("unit", "release"), r"marked \['release', 'unit'\]: a test has one tier"),
    (("mnist_test", "data_dir"), ("unit",), "marked unit but uses data_dir: mark it integration"),
])
def test_contradictory_tiers_are_a_usage_error(fixtures, marks, message):
    with pytest.raises(pytest.UsageError, match=message):
        tier_of(FakeItem("tests/test_x.py::test_x", fixtures, marks))


def test_the_verified_package_is_built_first_while_independent_modules_run_and_unit_modules_come_last():
    lenet = ("lenet_checkpoint", "data_dir")
    items = [FakeItem("tests/a/test_unit.py::test_1"),
             FakeItem("tests/b/test_lenet.py::test_1", lenet),
             FakeItem("tests/c/test_served.py::test_1", ("verified_package", *lenet), ("release",)),
             FakeItem("tests/c/test_served.py::test_2", marks=("release",)),
             FakeItem("tests/d/test_claims.py::test_1", marks=("release",)),
             FakeItem("tests/e/test_data.py::test_1", ("data_dir",)),
             FakeItem("tests/f/test_verified.py::test_1", ("verified_package", *lenet))]
    assert [item.nodeid for item in run_order(items)] == [
        "tests/c/test_served.py::test_1", "tests/c/test_served.py::test_2",  # builds the LeNet's fixtures
        "tests/d/test_claims.py::test_1", "tests/e/test_data.py::test_1",  # meanwhile: no LeNet needed
        "tests/b/test_lenet.py::test_1", "tests/f/test_verified.py::test_1",  # then the ones that need it
        "tests/a/test_unit.py::test_1"]


def test_every_collected_test_has_exactly_one_tier(request):
    items = request.session.items
    assert request.node in items
    tiers = {item.nodeid: {m.name for m in item.iter_markers() if m.name in TIERS} for item in items}
    assert [nodeid for nodeid, found in tiers.items() if len(found) != 1] == []
    bundled = [nodeid for nodeid in tiers if nodeid.startswith("tests/zoo/test_bundled")]
    assert all(tiers[nodeid] == {"release"} for nodeid in bundled)  # the bundled models' claims
