"""Test configuration: slow tests run only with ``--slow`` (CI and the README pass it)."""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--slow", action="store_true", default=False, help="also run tests marked slow"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


#: A run small enough for tests, shaped like the quick preset: Metropolis and a briefly
#: trained VAE on a 6-spin chain (compare and the browser test share its folders).
SMALL_GRID = """
seed = 0
samples = 600

[reference]
sampler = "metropolis"
chains = 8
warmup = 200
sweeps = 1000
every = 5

[[models]]
name = "ising1d"
size = "6"
boundary = "free"
temps = "1.0:3.0:3"
methods = ["metropolis", "vae"]
histogram_temps = [2.0]

[[methods]]
name = "metropolis"

[[methods]]
name = "vae"
epochs = 20
"""


@pytest.fixture(scope="session")
def small_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two run folders of :data:`SMALL_GRID`, seeds 0 and 1 (run once per session)."""
    from spinbench.runner import Runner, parse_grid

    base = tmp_path_factory.mktemp("small-runs")
    folders = []
    for seed in (0, 1):
        out = base / f"seed{seed}"
        Runner(parse_grid(SMALL_GRID, "small grid").with_seed(seed), out, progress=False).run()
        folders.append(out)
    return folders[0], folders[1]
