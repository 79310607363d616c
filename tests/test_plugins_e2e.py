"""``spinbench run`` on a grid mixing the example plugins (``plugins/``) with built-in parts.

The plugins are separate packages; CI installs them (``.ci/run``). Where they are not installed
these tests are skipped, saying how to install them.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import spinbench
from spinbench.cli import main

INSTALL = "install the example plugins: python -m pip install -e plugins/{}"
pytest.importorskip("spinbench_xy2d_potts", reason=INSTALL.format("spinbench-xy2d-potts"))
pytest.importorskip("spinbench_wolff", reason=INSTALL.format("spinbench-wolff"))
pytest.importorskip("spinbench_made", reason=INSTALL.format("spinbench-made"))


#: The documented switch that skips third-party plugins.
DISABLE_AUTOLOAD = "SPINBENCH_DISABLE_PLUGIN_AUTOLOAD"


@pytest.fixture(scope="module", autouse=True)
def plugins_loaded() -> Iterator[None]:
    """Third-party autoload on (CI may turn it off for the rest of the suite), with a registry
    loaded afresh for this module and dropped after it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(DISABLE_AUTOLOAD, raising=False)
        with spinbench.plugins_registered():
            yield


GRID = """
seed = 3
samples = 200

[reference]                     # long enough for an error bar that can be trusted (ESS >= 100)
sampler = "metropolis"
chains = 8
warmup = 100
sweeps = 800
every = 4

[[models]]                      # plugin model, no exact solution: compared with the MC reference
name = "xy2d"
size = "4"
temps = [0.7, 1.5]
methods = ["metropolis", "dense-vae"]

[[models]]                      # built-in model, plugin sampler and plugin generator
name = "ising2d"
size = "4"
temps = [2.0, 3.0]
methods = ["metropolis", "wolff", "made"]

[[models]]                      # plugin model, exact by enumeration
name = "potts3"
size = "3"
temps = [1.0]
methods = ["metropolis"]

[[methods]]
name = "metropolis"

[[methods]]
name = "wolff"
clusters = 2

[[methods]]
name = "dense-vae"
epochs = 2
batch_size = 50

[[methods]]
name = "made"
epochs = 40
batch_size = 50
hidden = 16
learning_rate = 3e-3
"""


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("mixed")
    (folder / "grid.toml").write_text(GRID)
    out = folder / "out"
    result = CliRunner().invoke(
        main, ["run", "--config", str(folder / "grid.toml"), "--out", str(out), "--quiet"]
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    return out


@pytest.fixture(scope="module")
def table(run_folder: Path) -> pd.DataFrame:
    return pd.read_csv(run_folder / "results.csv")


def cell(table: pd.DataFrame, model: str, method: str) -> pd.DataFrame:
    rows = table[(table["model"] == model) & (table["method"] == method)]
    assert len(rows), f"no rows for {model} x {method}"
    return rows


def test_list_shows_plugin_parts_with_their_distribution() -> None:
    result = CliRunner().invoke(main, ["list", "--format", "json"])
    assert result.exit_code == 0, result.output
    entries = {(e["kind"], e["name"]): e for e in json.loads(result.output)}
    assert entries["models", "xy2d"]["distribution"] == "spinbench-xy2d-potts"
    assert entries["models", "potts3"]["distribution"] == "spinbench-xy2d-potts"
    assert entries["samplers", "wolff"]["distribution"] == "spinbench-wolff"
    assert entries["generators", "made"]["distribution"] == "spinbench-made"
    assert entries["models", "ising2d"]["distribution"] == "spinbench"


@pytest.mark.slow
def test_builtin_generator_on_plugin_model_uses_the_mc_reference(table: pd.DataFrame) -> None:
    rows = cell(table, "xy2d", "dense-vae")
    assert set(rows["status"]) == {"ok"}, rows[["status", "reason"]].drop_duplicates()
    assert sorted(set(rows["T"])) == [0.7, 1.5]
    assert rows["exact"].isna().all()  # no exact solution for the 2D XY model
    distances = rows[rows["observable"].isin(["energy_tv", "energy_kl"])]
    assert len(distances) == 4 and set(distances["reference"]) == {"mc"}
    energy = rows[rows["observable"] == "energy"]
    assert energy["estimate"].between(-2.0, 0.0).all()


@pytest.mark.slow
def test_plugin_sampler_on_builtin_model_is_compared_with_exact(table: pd.DataFrame) -> None:
    rows = cell(table, "ising2d", "wolff")
    assert set(rows["status"]) == {"ok"}, rows[["status", "reason"]].drop_duplicates()
    energy = rows[rows["observable"] == "energy"]
    assert len(energy) == 2 and energy["exact"].notna().all()
    assert set(energy["reference"]) == {"exact"}
    assert (energy["z"].abs() < 5).all(), energy[["T", "estimate", "stderr", "exact", "z"]]


@pytest.mark.slow
def test_plugin_generator_on_builtin_model(table: pd.DataFrame) -> None:
    rows = cell(table, "ising2d", "made")
    assert set(rows["status"]) == {"ok"}, rows[["status", "reason"]].drop_duplicates()
    energy = rows[rows["observable"] == "energy"].sort_values("T")
    assert len(energy) == 2 and energy["exact"].notna().all()
    assert energy["estimate"].between(-2.0, 0.5).all()
    assert energy["estimate"].iloc[0] < energy["estimate"].iloc[1]  # colder is lower


@pytest.mark.slow
def test_plugin_model_is_compared_with_its_enumerated_exact_values(table: pd.DataFrame) -> None:
    rows = cell(table, "potts3", "metropolis")
    energy = rows[rows["observable"] == "energy"]
    assert len(energy) == 1 and energy["exact"].notna().all()
    assert float(energy["z"].abs().iloc[0]) < 5


def test_unsupported_pair_is_refused_before_any_work_with_the_plugins_reason(
    tmp_path: Path,
) -> None:
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID.replace('methods = ["metropolis"]', 'methods = ["metropolis", "wolff"]'))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", "--config", str(grid), "--out", str(out)])
    assert result.exit_code == 2
    assert "key 'models[2].methods': wolff cannot run on potts3 3x3" in result.output
    assert "wolff flips clusters of Ising spins" in result.output
    assert not out.exists()


@pytest.mark.slow
def test_summary_mentions_plugin_parts(run_folder: Path) -> None:
    summary = (run_folder / "summary.md").read_text()
    for name in ("xy2d", "potts3", "wolff", "made"):
        assert name in summary


# ====================================================================== broken plugins


BROKEN = {
    # distribution name: (module name, module source)
    "spinbench-broken-import": ("sb_broken_import", "import not_a_module_anywhere\n"),
    "spinbench-impostor": (
        "sb_impostor",
        "from typing import ClassVar\n"
        "import spinbench\n"
        "from spinbench.models import Ising2D\n"
        "class Impostor(Ising2D):\n"
        "    name: ClassVar[str] = 'ising2d'\n"
        "@spinbench.hookimpl\n"
        "def spinbench_register_models():\n"
        "    return [Impostor]\n",
    ),
    "spinbench-bad-contract": (
        "sb_bad_contract",
        "import spinbench\n"
        "@spinbench.hookimpl\n"
        "def spinbench_register_samplers():\n"
        "    return [dict]\n",
    ),
}


@pytest.fixture
def broken_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Three installed distributions (dist-info with entry points on sys.path, as pip leaves
    them) that break in different ways; the registry is reloaded to see them (the commands
    report its problems, so its warnings are not repeated here)."""
    import importlib
    import sys

    for dist, (module, source) in BROKEN.items():
        (tmp_path / f"{module}.py").write_text(source)
        info = tmp_path / f"{dist.replace('-', '_')}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(f"[spinbench]\n{module} = {module}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    with contextlib.ExitStack() as stack:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", spinbench.PluginWarning)
            stack.enter_context(spinbench.plugins_registered())
        yield
    for _, (module, _) in BROKEN.items():
        sys.modules.pop(module, None)


def test_broken_installed_plugins_are_named_and_the_rest_works(broken_plugins: None) -> None:
    runner = CliRunner()
    listing = runner.invoke(main, ["list", "models"])
    assert listing.exit_code == 0, listing.output
    warnings = listing.stderr
    assert "plugin 'sb_broken_import' (spinbench-broken-import) failed to import" in warnings
    assert "ModuleNotFoundError" in warnings
    assert "plugin 'sb_bad_contract' (spinbench-bad-contract) returned" in warnings
    assert "not a subclass of AbstractSampler" in warnings
    assert "'ising2d' is registered by both" in warnings and "spinbench-impostor" in warnings
    assert "ising1d" in listing.stdout and "xy2d" in listing.stdout  # the rest is listed
    assert "ising2d" not in listing.stdout  # claimed twice: unusable until one is removed

    exact = runner.invoke(main, ["exact", "ising1d", "--size", "4", "--temps", "1.0"])
    assert exact.exit_code == 0, exact.output
    clash = runner.invoke(main, ["exact", "ising2d", "--size", "4", "--temps", "1.0"])
    assert clash.exit_code != 0
    assert "registered twice" in clash.output and "spinbench-impostor" in clash.output
