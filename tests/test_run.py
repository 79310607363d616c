"""`spinbench run` end to end: table, summary, figures, resumption and failed cells."""

from __future__ import annotations

import gc
import json
import os
import random
import signal
import subprocess
import sys
import time
import weakref
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

from spinbench import Samples
from spinbench.cli import main
from spinbench.runner import COLUMNS, TIMING_COLUMNS, LocalExecutor, Runner, load_grid

TINY = """
seed = 1
samples = 400

[reference]
sampler = "metropolis"
chains = 4
warmup = 50
sweeps = 200
every = 2

[[models]]
name = "ising1d"
size = "4"
temps = "1.0:3.0:2"
histogram_temps = [1.0]

[[models]]
name = "ising2d"
size = "3"
temps = [2.0, 3.0]
methods = ["metropolis", "{bad}"]

[[methods]]
name = "metropolis"

[[methods]]
name = "{bad}"
{bad_options}
"""

#: The second method of the tiny grid: a briefly trained VAE.
SECOND_METHOD = {"bad": "vae", "bad_options": "epochs = 2"}


def tiny_grid(tmp_path: Path, **method: str) -> Path:
    path = tmp_path / "grid.toml"
    path.write_text(TINY.format(**(method or SECOND_METHOD)))
    return path


def comparable(table: pd.DataFrame) -> pd.DataFrame:
    """The table without wall times (which differ between runs), in a fixed order."""
    keys = ["model", "size", "method", "T", "observable", "r"]
    return (
        table.drop(columns=list(TIMING_COLUMNS))
        .sort_values(keys, na_position="first")
        .reset_index(drop=True)
    )


def test_tiny_grid_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["run", "--config", str(tiny_grid(tmp_path)), "--out", str(out), "--quiet"]
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "results.csv")
    assert list(table.columns) == list(COLUMNS)
    ok = table[table["status"] == "ok"]
    energy = ok[(ok["observable"] == "energy") & (ok["method"] == "metropolis")]
    assert len(energy) == 4
    assert energy["exact"].notna().all()
    assert (energy["z"].abs() < 5).all()
    vae = table[(table["method"] == "vae") & (table["observable"] == "energy")]
    assert len(vae) == 4 and vae["estimate"].notna().all()
    records = json.loads((out / "results.json").read_text())
    assert len(records) == len(table)
    summary = (out / "summary.md").read_text()
    assert "| ising1d | 4 | free | h=0.0 | metropolis |" in summary
    provenance = json.loads((out / "provenance.json").read_text())
    assert {"spinbench", "jax", "equinox", "platform", "device", "seed", "settings"} <= set(
        provenance
    )
    figures = sorted(p.name for p in (out / "figures").iterdir())
    assert "figure2-ising1d-4.png" in figures
    assert "figure3-ising2d-3.png" in figures
    assert "results.csv" in result.output and "summary.md" in result.output

    # A second run skips every finished cell and leaves the table as it was.
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "cells").iterdir()}
    again = CliRunner().invoke(
        main, ["run", "--config", str(tiny_grid(tmp_path)), "--out", str(out), "--quiet"]
    )
    assert again.exit_code == 0, again.output
    assert "resuming: 6 of 6 cells already done" in again.output
    assert stamps == {p.name: p.stat().st_mtime_ns for p in (out / "cells").iterdir()}
    pd.testing.assert_frame_equal(comparable(pd.read_csv(out / "results.csv")), comparable(table))

    # The report is rebuilt from the folder alone.
    (out / "summary.md").unlink()
    report = CliRunner().invoke(main, ["report", str(out)])
    assert report.exit_code == 0, report.output
    assert (out / "summary.md").exists()


def test_killed_run_resumes_to_the_same_table(tmp_path: Path) -> None:
    grid = tmp_path / "grid.toml"
    grid.write_text(TINY.format(bad="vae", bad_options="epochs = 2"))
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    command = [sys.executable, "-m", "spinbench.cli", "run", "--config", str(grid), "--quiet"]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    subprocess.run([*command, "--out", str(whole)], check=True, env=env, capture_output=True)

    process = subprocess.Popen(
        [*command, "--out", str(killed)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        done = list((killed / "cells").glob("*.json")) if (killed / "cells").exists() else []
        if done or process.poll() is not None:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = len(list((killed / "cells").glob("*.json")))
    assert finished < 4, "the run finished before it could be killed"
    assert not (killed / "results.csv").exists()
    subprocess.run([*command, "--out", str(killed)], check=True, env=env, capture_output=True)
    pd.testing.assert_frame_equal(
        comparable(pd.read_csv(killed / "results.csv")),
        comparable(pd.read_csv(whole / "results.csv")),
    )


def test_a_models_reference_is_let_go_after_its_last_cell(tmp_path: Path) -> None:
    """The runner holds one model's reference configurations at a time: when the cells of
    the second model run, the first model's samples are no longer in memory.

    Watched from outside: after a model's reference cell the executor takes a weak reference
    to the samples the runner hands out for that model; before each cell it notes whose
    samples are still alive (held by something), after a garbage collection."""
    grid = tmp_path / "grid.toml"
    grid.write_text(
        TINY.format(bad="metropolis", bad_options="")
        .replace('methods = ["metropolis", "metropolis"]', 'methods = ["metropolis"]')
        .replace('[[methods]]\nname = "metropolis"\n\n', "", 1)
    )
    spec = load_grid(grid)
    watched: dict[str, weakref.ref[Samples]] = {}
    held: list[tuple[str, list[str]]] = []

    def alive() -> list[str]:
        gc.collect()
        return sorted(label for label, samples in watched.items() if samples() is not None)

    class Watching(LocalExecutor):
        def map(self, function: Any, cells: Any) -> Any:
            for cell in cells:
                held.append((cell.id, alive()))
                record = function(cell)
                if cell.kind == "reference":
                    watched[cell.label] = weakref.ref(runner.reference(cell.label))
                yield record

    runner = Runner(spec, tmp_path / "out", executor=Watching(), progress=False)
    table = runner.run()
    assert set(table["status"]) == {"ok"} and runner.outcome.exit_code() == 0
    first, second = (model.label() for model in spec.models)
    assert held == [
        (first, []),
        (f"{first}-metropolis", [first]),
        (second, []),  # the first model's configurations are no longer held
        (f"{second}-metropolis", [second]),
    ]
    assert alive() == []


@pytest.mark.slow
def test_quick_preset_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "quick"
    started = time.perf_counter()
    result = CliRunner().invoke(main, ["run", "--preset", "quick", "--out", str(out), "--quiet"])
    elapsed = time.perf_counter() - started
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "results.csv")
    assert set(table["method"]) == {"metropolis", "vae", "avb"}
    assert (table["status"] == "ok").all(), table[table["status"] != "ok"]["reason"].tolist()
    mc = table[(table["method"] == "metropolis") & (table["observable"] == "energy")]
    assert (mc["z"].abs() < 4).all()
    for name in ("figure2-ising1d-6-free.png", "figure2-ising2d-4.png", "figure3-ising2d-4.png"):
        assert (out / "figures" / name).stat().st_size > 10_000
    print(f"quick preset: {elapsed:.1f} s")


def test_run_errors_are_clear(tmp_path: Path) -> None:
    runner = CliRunner()
    unknown = runner.invoke(main, ["run", "--preset", "nope", "--out", str(tmp_path / "x")])
    assert unknown.exit_code != 0
    assert "valid presets" in unknown.output
    bad = tmp_path / "bad.toml"
    bad.write_text(TINY.format(bad="vaee", bad_options=""))
    typo = runner.invoke(main, ["run", "--config", str(bad), "--out", str(tmp_path / "y")])
    assert typo.exit_code == 2
    assert "Did you mean 'vae'" in typo.output
    assert not (tmp_path / "y").exists()  # nothing half-written
    both = runner.invoke(main, ["run", "--preset", "quick", "--config", str(bad)])
    assert both.exit_code != 0
    empty = runner.invoke(main, ["report", str(tmp_path)])
    assert empty.exit_code != 0
    assert "holds no spinbench results" in empty.output


def test_diverged_training_is_recorded_not_written_as_numbers(tmp_path: Path) -> None:
    grid = tmp_path / "grid.toml"
    grid.write_text(
        TINY.split("[[models]]")[0]
        + '[[models]]\nname = "ising1d"\nsize = "4"\ntemps = "1.0:3.0:2"\n\n'
        + '[[methods]]\nname = "dense-vae"\nepochs = 2\nlearning_rate = 1e30\n'
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", "--config", str(grid), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "results.csv")
    diverged = table[table["status"] == "diverged"]
    assert len(diverged) >= 1
    assert diverged["reason"].str.contains("diverged at T=").all()
    assert diverged["estimate"].isna().all()
    assert "flagged rows (results that cannot be trusted)" in result.output
    summary = (out / "summary.md").read_text()
    assert "diverged at T=" in summary


def test_generator_cells_show_their_training_progress(tmp_path: Path) -> None:
    grid = tmp_path / "grid.toml"
    grid.write_text(
        TINY.split('[[models]]\nname = "ising2d"')[0] + '[[methods]]\nname = "vae"\nepochs = 2\n'
    )
    result = CliRunner().invoke(main, ["run", "--config", str(grid), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "training vae" in result.stderr
    assert "epoch" in result.stderr


@pytest.mark.slow
def test_killed_at_random_points_and_damaged_between_ends_with_the_same_table(
    tmp_path: Path,
) -> None:
    """SIGKILL at random moments, a random cell file truncated after each kill, then a
    final run: the table equals that of an uninterrupted run (wall times aside)."""
    grid = tmp_path / "grid.toml"
    grid.write_text(TINY.format(bad="vae", bad_options="epochs = 3"))
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    command = [sys.executable, "-m", "spinbench.cli", "run", "--config", str(grid), "--quiet"]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    subprocess.run([*command, "--out", str(whole)], check=True, env=env, capture_output=True)
    rng = random.Random(11)
    kills = 0
    for _ in range(5):
        process = subprocess.Popen(
            [*command, "--out", str(killed)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(1.0, 10.0))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait()
        cells = sorted((killed / "cells").rglob("*.json")) if (killed / "cells").exists() else []
        if cells:
            victim = rng.choice(cells)
            data = victim.read_bytes()
            victim.write_bytes(data[: rng.randrange(len(data))])
    assert kills >= 2, "the run finished before it could be killed often enough"
    final = subprocess.run([*command, "--out", str(killed)], env=env, capture_output=True)
    assert final.returncode == 0, final.stderr.decode()[-2000:]
    pd.testing.assert_frame_equal(
        comparable(pd.read_csv(killed / "results.csv")),
        comparable(pd.read_csv(whole / "results.csv")),
    )


@pytest.mark.slow
def test_histogram_distances_beyond_enumeration_are_against_the_exact_distribution(
    tmp_path: Path,
) -> None:
    """A 6x6 torus (2^36 states) has its exact energy distribution (Beale): the distance rows
    name the exact reference, and Figure 2's histogram panel is drawn."""
    grid = tmp_path / "grid.toml"
    grid.write_text(
        TINY.split("[[models]]")[0]
        + '[[models]]\nname = "ising2d"\nsize = "6"\ntemps = [3.5]\nhistogram_temps = [3.5]\n'
        + '\n[[methods]]\nname = "metropolis"\n'
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", "--config", str(grid), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "results.csv")
    distances = table[table["observable"].isin(["energy_tv", "energy_kl"])]
    assert len(distances) == 2 and set(distances["reference"]) == {"exact"}
    assert (distances["estimate"] >= 0).all() and (distances["noise_floor"] > 0).all()
    assert (out / "figures" / "figure2-ising2d-6.png").is_file()
