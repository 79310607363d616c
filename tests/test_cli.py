"""The command line through click's CliRunner: version, list, exact and their errors."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from spinbench import __version__
from spinbench.cli import main
from spinbench.exact import ising2d_infinite, ising2d_torus


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(main, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_list_models_names_the_providing_distribution(runner: CliRunner) -> None:
    result = runner.invoke(main, ["list", "models"])
    assert result.exit_code == 0, result.output
    for name in ("ising1d", "ising2d", "xy1d"):
        assert name in result.output
    assert "spinbench" in result.output


def test_list_json(runner: CliRunner) -> None:
    result = runner.invoke(main, ["list", "models", "--format", "json"])
    records = json.loads(result.output)
    builtin = {r["name"] for r in records if r["distribution"] == "spinbench"}
    assert builtin == {"ising1d", "ising2d", "xy1d"}  # plugins, if installed, add more


def test_exact_ising2d_is_the_finite_lattice_value(runner: CliRunner) -> None:
    result = runner.invoke(
        main, ["exact", "ising2d", "--size", "10", "--temps", "2.269185314", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    records = json.loads(result.output)
    energy = next(r for r in records if r["observable"] == "energy")
    assert energy["model"] == "ising2d"
    assert energy["size"] == "10x10"
    assert energy["r"] is None
    assert energy["exact"] == pytest.approx(-1.476, abs=1e-3)  # infinite lattice: -1.414
    assert {"model", "size", "T", "observable", "r", "exact"} <= set(energy)


def test_exact_on_a_huge_torus_is_the_closed_form(runner: CliRunner) -> None:
    """10^10 sites: Kaufman's closed form costs O(side) per temperature, and deciding that the
    lattice is too large to enumerate costs nothing."""
    arguments = ["exact", "ising2d", "--size", "100000x100000", "--temps", "2.0", "--format"]
    result = runner.invoke(main, [*arguments, "json"])
    assert result.exit_code == 0, result.output
    records = {r["observable"]: r for r in json.loads(result.output)}
    assert records["energy"]["source"].startswith("Kaufman")
    onsager = ising2d_infinite([2.0])
    assert records["energy"]["exact"] == pytest.approx(onsager.energy[0], rel=1e-9)
    assert records["heat_capacity"]["exact"] == pytest.approx(onsager.heat_capacity[0], rel=1e-6)


def test_exact_below_the_closed_form_limit_names_it(runner: CliRunner) -> None:
    result = runner.invoke(main, ["exact", "ising2d", "--size", "10", "--temps", "0.001,1"])
    assert result.exit_code != 0
    assert "needs |J|/T <= 300, i.e. T >= 0.00333333 for |J| = 1; got T = 0.001" in result.output
    assert "no exact solution is known" not in result.output


def test_exact_table_and_csv(runner: CliRunner) -> None:
    table = runner.invoke(main, ["exact", "ising1d", "--size", "6", "--temps", "0.5:2.0:4"])
    assert table.exit_code == 0, table.output
    assert "correlation" in table.output
    csv = runner.invoke(main, ["exact", "xy1d", "--size", "6", "--temps", "1.0", "--format", "csv"])
    assert csv.exit_code == 0, csv.output
    header, *rows = csv.output.strip().splitlines()
    assert header.split(",")[:7] == ["model", "size", "boundary", "options", "T", "observable", "r"]
    assert len(rows) == 3 + 5  # energy, heat capacity, ln Z; correlation at r = 1..5


def test_exact_periodic_chain(runner: CliRunner) -> None:
    result = runner.invoke(
        main,
        [
            "exact",
            "ising1d",
            "--size",
            "8",
            "--temps",
            "1,2",
            "--boundary",
            "periodic",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    records = json.loads(result.output)
    assert {r["boundary"] for r in records} == {"periodic"}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["exact", "ising1d", "--size", "6", "--temps", "0"], "> 0"),
        (["exact", "ising1d", "--size", "6", "--temps", "-1,2"], "> 0"),
        (["exact", "ising1d", "--size", "6", "--temps", "nan"], "finite"),
        (["exact", "ising1d", "--size", "6", "--temps", "1:2"], "start:stop:count"),
        (["exact", "ising1d", "--size", "6", "--temps", "a,b"], "is not a number"),
        (["exact", "ising1d", "--size", "6", "--temps", "２.５"], "write numbers in ASCII"),
        (["exact", "ising1d", "--size", "1", "--temps", "1"], "at least 2"),
        (["exact", "ising2d", "--size", "4x4x4", "--temps", "1"], "axes"),
        (
            ["exact", "isign2d", "--size", "4", "--temps", "1"],
            "valid names: ising1d, ising2d",
        ),
        (["exact", "ising2d", "--size", "4", "--temps", "1", "--boundary", "free"], "periodic"),
    ],
)
def test_bad_input_is_a_clear_error(runner: CliRunner, arguments: list[str], message: str) -> None:
    result = runner.invoke(main, arguments)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_exact_energy_distribution_of_a_torus_beyond_enumeration(runner: CliRunner) -> None:
    """16x16 (2^256 states): the exact distribution from the density of states; its mean is
    Kaufman's energy."""
    arguments = ["exact", "ising2d", "--size", "16", "--temps", "2.269,3", "--format", "json"]
    result = runner.invoke(main, [*arguments, "--energy-distribution"])
    assert result.exit_code == 0, result.output
    records = json.loads(result.output)
    assert set(records[0]) == {
        "model",
        "size",
        "boundary",
        "options",
        "T",
        "energy",
        "energy_per_site",
        "probability",
    }
    kaufman = ising2d_torus(16, 16, [2.269, 3.0])
    for index, T in enumerate((2.269, 3.0)):
        rows = [r for r in records if r["T"] == T]
        p = np.array([r["probability"] for r in rows])
        e = np.array([r["energy_per_site"] for r in rows])
        assert p.sum() == pytest.approx(1.0, abs=1e-12)
        assert p @ e == pytest.approx(kaufman.energy[index], rel=1e-10)
        assert {r["energy"] for r in rows} <= {-512.0 + 4 * k for k in range(257)}


def test_exact_energy_distribution_table_and_its_errors(runner: CliRunner) -> None:
    table = runner.invoke(
        main, ["exact", "ising1d", "--size", "4", "--temps", "1", "--energy-distribution"]
    )
    assert table.exit_code == 0, table.output
    assert table.output.split("\n")[0].split()[-3:] == ["energy", "energy_per_site", "probability"]
    assert len(table.output.strip().split("\n")) == 2 + 4  # ising1d 4 free: levels -3, -1, 1, 3
    for size, option, message in (
        ("65", "h=0", "no exact energy distribution is known for ising2d of size 65x65"),
        ("16", "h=0.1", "no exact energy distribution is known for ising2d of size 16x16 (h=0.1)"),
    ):
        arguments = ["exact", "ising2d", "--size", size, "--temps", "2", "--energy-distribution"]
        result = runner.invoke(main, [*arguments, "--model-option", option])
        assert result.exit_code != 0
        assert message in result.output


# ---------------------------------------------------------------------------- fast start
#: Run a command in a fresh interpreter and print the top-level modules it imported.
_IMPORTED = """
import sys
from spinbench.cli import main
try:
    main({arguments!r}, prog_name="spinbench")
except SystemExit:
    pass
print("MODULES", sorted({{m.split(".")[0] for m in sys.modules}}))
"""


def _imported(arguments: list[str], cache: Path) -> list[str]:
    environment = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    result = subprocess.run(
        [sys.executable, "-c", _IMPORTED.format(arguments=arguments)],
        capture_output=True,
        text=True,
        env=environment,
        check=True,
    )
    line = next(x for x in result.stdout.splitlines() if x.startswith("MODULES"))
    return list(ast.literal_eval(line.removeprefix("MODULES ")))


@pytest.mark.parametrize(
    "arguments", [["--help"], ["list"], ["list", "presets"], ["list", "models", "--format", "json"]]
)
def test_help_and_list_do_not_import_jax(arguments: list[str], tmp_path: Path) -> None:
    """Start-up without JAX (seconds): a listing comes from the cache after the first."""
    _imported(["list"], tmp_path)  # the first listing after an install fills the cache
    modules = _imported(arguments, tmp_path)
    assert "jax" not in modules and "equinox" not in modules and "matplotlib" not in modules


def test_the_listing_cache_follows_the_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spinbench import _listing

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first, _, cached = _listing.listing()
    assert not cached and _listing.cache_path().is_file()
    again, _, cached = _listing.listing()
    assert cached and again == first
    monkeypatch.setattr(_listing, "cache_key", lambda: "another install")
    _, _, cached = _listing.listing()
    assert not cached  # any change of entry points, versions or sources lists afresh


def test_group_help_lines_are_the_commands_own() -> None:
    from spinbench.cli import COMMANDS, load_command

    for name, (_, short_help) in COMMANDS.items():
        command = load_command(name)
        assert command.name == name
        assert command.get_short_help_str(limit=1000) == short_help


def test_text_columns_are_left_aligned_and_numbers_right_aligned() -> None:
    from spinbench._commands.common import render_table

    lines = render_table(
        [{"name": "a", "T": 1.5, "z": None}, {"name": "long", "T": 10.25, "z": 2.0}],
        ["name", "T", "z"],
    ).splitlines()
    assert lines[2] == "a       1.5  -"
    assert lines[3] == "long  10.25  2"
