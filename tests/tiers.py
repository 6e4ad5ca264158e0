"""The test tiers (markers registered in pyproject.toml) and the order the modules run in.

A test module or function names its tier with a marker; an unmarked test gets its tier from its fixtures:
integration if it uses one of ``INTEGRATION_FIXTURES`` (directly or through another fixture: the real datasets
and all built from them, the stand-in Hugging Face Hub, a built site, a browser), else unit.

The modules run in an order that keeps pytest-xdist's two workers busy (``make test`` passes
``--no-loadscope-reorder`` so that xdist keeps it): first one module that needs the verified test package, so
that one worker trains, exports and verifies the LeNet while the other runs the modules that do not need it,
then the modules that need it, release before integration; the unit modules, short, fill the end.
"""

from __future__ import annotations

import pytest

TIERS = ("release", "integration", "unit")  # heaviest first
INTEGRATION_FIXTURES = frozenset({"data_dir", "hub", "bundled_site", "hostile_hub", "browser"})
BUILT_LENET = "lenet_checkpoint"  # the root of the session fixtures built from the LeNet trained for the tests
VERIFIED = "verified_package"  # their end: trained, exported and verified


def tier_of(item: pytest.Item) -> str:
    """The tier of a collected test: its one tier marker, else the one its fixtures imply."""
    marked = {mark.name for mark in item.iter_markers() if mark.name in TIERS}
    heavy = sorted(INTEGRATION_FIXTURES & set(getattr(item, "fixturenames", ())))
    if len(marked) > 1:
        raise pytest.UsageError(f"{item.nodeid} is marked {sorted(marked)}: a test has one tier")
    if marked == {"unit"} and heavy:
        raise pytest.UsageError(f"{item.nodeid} is marked unit but uses {', '.join(heavy)}: mark it integration")
    return marked.pop() if marked else ("integration" if heavy else "unit")


def run_order(items: list[pytest.Item]) -> list[pytest.Item]:
    """``items`` with their modules reordered as the module docstring says (tests keep their order within a
    module)."""
    modules: dict[str, list[pytest.Item]] = {}
    for item in items:
        modules.setdefault(item.nodeid.split("::")[0], []).append(item)
    builder = next((name for name, tests in modules.items() if any(VERIFIED in t.fixturenames for t in tests)), None)

    def key(name: str) -> tuple[int, int]:
        tests = modules[name]
        heaviest = min(TIERS.index(tier_of(t)) for t in tests)
        if name == builder:
            return 0, heaviest
        if TIERS[heaviest] == "unit":
            return 3, heaviest
        return (2 if any(BUILT_LENET in t.fixturenames for t in tests) else 1), heaviest

    return [item for name in sorted(modules, key=key) for item in modules[name]]


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(tier_of(item))
    items[:] = run_order(items)
