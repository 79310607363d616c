"""``spinbench compare``: verdicts on made-up tables, then on real runs (slow)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

from spinbench._compare import THRESHOLD, compare_runs, scale_factors
from spinbench._run_folder import COLUMNS, RunFolder, read_table, rows_to_table
from spinbench.cli import main


def row(**values: Any) -> dict[str, Any]:
    """One results row: a Metropolis energy at T = 1 that agrees with its exact value."""
    base: dict[str, Any] = dict.fromkeys(COLUMNS)
    base.update(
        model="ising1d",
        size="6",
        boundary="free",
        options="h=0.0",
        method="metropolis",
        T=1.0,
        observable="energy",
        r=None,
        estimate=-0.64,
        stderr=0.01,
        exact=-0.64,
        z=0.0,
        status="ok",
    )
    base.update(values)
    if base["exact"] is not None and base["estimate"] is not None:
        base["z"] = abs(base["estimate"] - base["exact"]) / base["stderr"]
    return base


def folder(path: Path, rows: list[dict[str, Any]]) -> Path:
    """A folder holding these rows as results.csv, written as a run writes it."""
    path.mkdir(parents=True)
    RunFolder(path).write_table(rows_to_table(rows))
    return path


def verdicts(tmp_path: Path, a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[str]:
    comparison = compare_runs(folder(tmp_path / "a", a), folder(tmp_path / "b", b))
    return list(comparison.rows["verdict"])


def test_within_noise_is_the_same(tmp_path: Path) -> None:
    # 3 combined errors apart (sqrt(2) * 0.01 each): below the threshold of 4.
    assert verdicts(tmp_path, [row()], [row(estimate=-0.64 + 3 * math.sqrt(2) * 0.01)]) == ["same"]


def test_moving_away_from_the_exact_value_is_worse(tmp_path: Path) -> None:
    moved = -0.64 + 6 * math.sqrt(2) * 0.01
    assert verdicts(tmp_path, [row()], [row(estimate=moved)]) == ["worse"]
    assert verdicts(tmp_path / "back", [row(estimate=moved)], [row()]) == ["better"]


def test_a_method_that_strays_in_both_runs_sets_its_own_noise_scale(tmp_path: Path) -> None:
    """A generator off by 20 and 28 error bars (S = 20) moving by 6 combined errors is noise;
    a Metropolis row beside it moving as far is not."""
    a = [row(method="vae", estimate=-0.44), row(T=2.0)]
    b = [row(method="vae", estimate=-0.44 + 6 * math.sqrt(2) * 0.01), row(T=2.0, estimate=-0.55)]
    comparison = compare_runs(folder(tmp_path / "a", a), folder(tmp_path / "b", b))
    by_method = comparison.rows.set_index("method")
    assert by_method.loc["vae", "scale"] == pytest.approx(20.0)
    assert by_method.loc["vae", "verdict"] == "same"
    assert by_method.loc["metropolis", "scale"] == 1.0
    assert by_method.loc["metropolis", "verdict"] == "worse"
    table = read_table(tmp_path / "a" / "results.csv").fillna({"options": ""})
    assert max(scale_factors(table).values()) == pytest.approx(20.0)


def test_without_an_exact_value_a_distance_is_judged_and_anything_else_is_changed(
    tmp_path: Path,
) -> None:
    a = [
        row(observable="energy_tv", estimate=0.02, stderr=0.005, exact=None),
        row(observable="energy", estimate=-0.6, exact=None),
    ]
    b = [
        row(observable="energy_tv", estimate=0.08, stderr=0.005, exact=None),
        row(observable="energy", estimate=-0.8, exact=None),
    ]
    comparison = compare_runs(folder(tmp_path / "a", a), folder(tmp_path / "b", b))
    by_observable = comparison.rows.set_index("observable")["verdict"]
    assert by_observable["energy_tv"] == "worse"
    assert by_observable["energy"] == "changed"  # not a regression: nothing to judge by
    assert len(comparison.regressions) == 1


def test_status_changes_and_unmatched_rows(tmp_path: Path) -> None:
    a = [row(), row(T=2.0), row(T=3.0, status="unconverged", reason="R-hat"), row(T=4.0)]
    b = [
        row(status="failed", reason="out of memory", estimate=None, stderr=None),
        row(T=2.0, status="diverged", reason="loss is NaN"),
        row(T=3.0),
        row(T=5.0),
    ]
    comparison = compare_runs(folder(tmp_path / "a", a), folder(tmp_path / "b", b))
    found = dict(zip(comparison.rows["T"], comparison.rows["verdict"], strict=True))
    assert found == {
        1.0: "newly failed",
        2.0: "newly flagged",
        3.0: "fixed",
        4.0: "only in A",
        5.0: "only in B",
    }
    assert set(comparison.regressions["T"]) == {1.0, 2.0}
    reasons = comparison.rows.set_index("T")["reason"]
    assert reasons[1.0] == "out of memory"
    assert "loss is NaN" in reasons[2.0]


def test_rows_match_on_every_key(tmp_path: Path) -> None:
    a = [row(observable="correlation", r=1), row(observable="correlation", r=2)]
    b = [row(observable="correlation", r=2), row(observable="correlation", r=1, options="h=0.3")]
    found = sorted(verdicts(tmp_path, a, b))
    assert found == ["only in A", "only in B", "same"]


def test_command_formats_and_exit_status(tmp_path: Path) -> None:
    worse = -0.64 + 10 * math.sqrt(2) * 0.01
    a = folder(tmp_path / "a", [row(), row(T=2.0, reason="<b>not bold</b>")])
    b = folder(tmp_path / "b", [row(estimate=worse), row(T=2.0)])
    runner = CliRunner()
    result = runner.invoke(main, ["compare", str(a), str(b), "--format", "json"])
    assert result.exit_code == 1
    records = json.loads(result.stdout)
    assert {r["verdict"] for r in records} == {"worse", "same"}
    worse_row = next(r for r in records if r["verdict"] == "worse")
    assert worse_row["difference"] == pytest.approx(worse + 0.64)
    assert worse_row["combined_stderr"] == pytest.approx(math.sqrt(2) * 0.01)
    assert worse_row["z_difference"] == pytest.approx(10.0)
    assert "significantly worse" in result.stderr

    csv = runner.invoke(main, ["compare", str(a), str(b), "--format", "csv"])
    assert csv.exit_code == 1
    frame = pd.read_csv(pd.io.common.StringIO(csv.stdout))
    assert list(frame.columns)[:8] == [
        "model", "size", "boundary", "options", "method", "T", "observable", "r"
    ]  # fmt: skip

    same = runner.invoke(main, ["compare", str(a), str(a), "--html", str(tmp_path / "c.html")])
    assert same.exit_code == 0, same.output
    assert "2 rows: 2 same" in same.stdout
    page = (tmp_path / "c.html").read_text()
    assert "No significant regression" in page and 'class="sortable"' in page
    assert "http" not in page.replace("http-equiv", "")  # nothing fetched from a network


def test_a_folder_without_results_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(main, ["compare", str(tmp_path / "empty"), str(tmp_path)])
    assert result.exit_code == 1
    assert "holds no results.csv" in result.output


@pytest.mark.slow
def test_two_seeds_of_the_same_grid_are_the_same_within_noise(
    small_runs: tuple[Path, Path],
) -> None:
    for a, b in (small_runs, small_runs[::-1]):
        result = CliRunner().invoke(main, ["compare", str(a), str(b), "--format", "json"])
        records = json.loads(result.stdout)
        assert result.exit_code == 0, [r for r in records if r["verdict"] != "same"]
        assert {r["verdict"] for r in records} == {"same"}
        assert {r["method"] for r in records} == {"metropolis", "vae"}


@pytest.mark.slow
def test_a_biased_run_is_flagged_worse(small_runs: tuple[Path, Path], tmp_path: Path) -> None:
    """Run B's Metropolis energies moved by 8 of their error bars: every one is worse."""
    seed0, seed1 = small_runs
    biased = tmp_path / "biased"
    shutil.copytree(seed1, biased, ignore=shutil.ignore_patterns("samples", "cache"))
    table = read_table(biased / "results.csv")
    energy = (table["method"] == "metropolis") & (table["observable"] == "energy")
    table.loc[energy, "estimate"] += (
        8
        * table.loc[energy, "stderr"]
        * (table.loc[energy, "estimate"] >= table.loc[energy, "exact"]).map({True: 1, False: -1})
    )
    RunFolder(biased).write_table(table)
    result = CliRunner().invoke(main, ["compare", str(seed0), str(biased), "--format", "json"])
    assert result.exit_code == 1
    worse = [r for r in json.loads(result.stdout) if r["verdict"] == "worse"]
    assert {(r["method"], r["observable"]) for r in worse} == {("metropolis", "energy")}
    assert len(worse) == int(energy.sum())
    assert THRESHOLD == 4.0
