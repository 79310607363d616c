"""Run folders and tables that can be trusted: reuse by digest, damaged files, locks,
foreign folders, exit status, file-system errors and the report of a partial run."""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner, Result

import spinbench

# The name of the file that marks a folder as spinbench's (the run folder module's own).
from spinbench._run_folder import MARKER
from spinbench.cli import main
from spinbench.generators import AbstractGenerator, TrainedGenerator
from spinbench.runner import (
    TIMING_COLUMNS,
    RunFolder,
    Runner,
    parse_grid,
    read_table,
    write_report,
)
from spinbench.samplers import Metropolis

GRID = """
seed = 1
samples = 400

[reference]
chains = 4
warmup = 50
sweeps = 200
every = 2

[[models]]
name = "ising1d"
size = "4"
temps = "1.0:3.0:2"

[[models]]
name = "ising1d"
size = "5"
boundary = "periodic"
temps = [1.5, 2.5]

[[methods]]
name = "metropolis"
"""


class Flaky(Metropolis):
    """Metropolis that fails while the file named by ``fail_while`` exists (a cell that
    fails at run time and works once the cause is gone)."""

    name: ClassVar[str] = "flaky"
    fail_while: str = eqx.field(static=True, default="")

    def sample(self, model: Any, temps: Any, *, key: Any, **kwargs: Any) -> Any:
        if self.fail_while and Path(self.fail_while).exists():
            raise RuntimeError(f"flaky failure: {self.fail_while} exists")
        return super().sample(model, temps, key=key, **kwargs)


class Constant(AbstractGenerator):
    """A collapsed generator: every configuration has one domain wall (first spin down)."""

    name: ClassVar[str] = "constant"

    def init(self, model: Any, n_temps: int, *, key: Any) -> Any:
        return jnp.zeros((n_temps, 1))

    def fit(self, model: Any, data: Any, *, key: Any) -> TrainedGenerator:
        n = len(data.temps)
        return TrainedGenerator(
            generator=self,
            model=model,
            temps=np.asarray(data.temps, np.float64),
            params=self.init(model, n, key=key),
            history={"loss": np.zeros((n, 1))},
            diverged_step=np.full(n, -1),
        )

    def generate_states(self, model: Any, params: Any, n: int, *, key: Any) -> Any:
        states = jnp.ones((params.shape[0], n, *model.shape), model.dtype)
        return states.at[..., 0].set(-1)


def _plugin(**hooks: list[type]) -> types.SimpleNamespace:
    namespace = types.SimpleNamespace()
    for kind, classes in hooks.items():
        impl = spinbench.hookimpl(lambda classes=classes: list(classes))  # type: ignore[misc]
        setattr(namespace, f"spinbench_register_{kind}", impl)
    return namespace


@pytest.fixture(autouse=True)
def test_plugins() -> Iterator[None]:
    """The registry with the test sampler and generator of this module."""
    plugin = _plugin(samplers=[Flaky], generators=[Constant])
    with spinbench.plugins_registered(("run-folder-tests", plugin)):
        yield


def run(out: Path, grid: str, *extra: str, tmp: Path | None = None) -> Result:
    path = (tmp or out.parent) / f"grid-{abs(hash(grid))}.toml"
    path.write_text(grid)
    return CliRunner().invoke(
        main, ["run", "--config", str(path), "--out", str(out), "--quiet", *extra]
    )


def stamps(out: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("*.json")}


def comparable(table: pd.DataFrame) -> pd.DataFrame:
    keys = ["model", "size", "method", "T", "observable", "r"]
    return (
        table.drop(columns=list(TIMING_COLUMNS))
        .sort_values(keys, na_position="first")
        .reset_index(drop=True)
    )


# ---------------------------------------------------------------------------- reuse
def test_a_changed_grid_reruns_exactly_the_changed_cells(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run(out, GRID).exit_code == 0
    before = stamps(out)
    changed = GRID.replace("temps = [1.5, 2.5]", "temps = [1.5, 2.0, 2.5]")
    result = run(out, changed)
    assert result.exit_code == 0, result.output
    after = stamps(out)
    assert after["ising1d-4-metropolis.json"] == before["ising1d-4-metropolis.json"]
    assert (
        after["ising1d-5-periodic-metropolis.json"] != before["ising1d-5-periodic-metropolis.json"]
    )
    table = read_table(out / "results.csv")
    temps = table[table["size"] == "5"]["T"].dropna().unique()
    np.testing.assert_allclose(sorted(temps), [1.5, 2.0, 2.5])
    assert (out / "grid.toml").read_text() == changed
    provenance = json.loads((out / "provenance.json").read_text())
    import hashlib

    assert provenance["settings"]["grid_sha256"] == hashlib.sha256(changed.encode()).hexdigest()
    assert "resuming: 2 of 4 cells already done" in result.output


def test_a_changed_option_reruns_its_cells_and_a_removed_model_leaves_the_table(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    assert run(out, GRID).exit_code == 0
    one_model = GRID.split("[[models]]")
    grid = (
        "[[models]]".join([one_model[0], one_model[1]])
        + "[[methods]]"
        + GRID.split("[[methods]]")[1].replace(
            'name = "metropolis"', 'name = "metropolis"\nupdate = "checkerboard"'
        )
    )
    result = run(out, grid)
    assert result.exit_code == 0, result.output
    table = read_table(out / "results.csv")
    assert set(table["size"]) == {"4"}
    assert not (out / "cells" / "ising1d-5-periodic-metropolis.json").exists()
    assert not (out / "samples" / "ising1d-5-periodic-metropolis").exists()
    assert "removed 1 cells that are not in this grid" in result.output
    record = json.loads((out / "cells" / "ising1d-4-metropolis.json").read_text())
    assert record["status"] == "ok"


def test_a_failed_cell_is_retried_on_the_next_run(tmp_path: Path) -> None:
    out, cause = tmp_path / "out", tmp_path / "cause"
    cause.touch()
    grid = GRID + f'\n[[methods]]\nname = "flaky"\nfail_while = "{cause}"\n'
    failed = run(out, grid)
    assert failed.exit_code == 1
    assert "cells failed to run" in failed.output and "flaky failure" in failed.output
    table = read_table(out / "results.csv")  # written before the exit status says so
    assert (table[table["method"] == "flaky"]["status"] == "failed").all()
    cause.unlink()
    again = run(out, grid)
    assert again.exit_code == 0, again.output
    table = read_table(out / "results.csv")
    assert (table["status"] == "ok").all()


def test_an_interrupted_run_of_a_new_grid_leaves_no_old_table(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run(out, GRID).exit_code == 0
    changed = parse_grid(GRID.replace("1.0:3.0:2", "1.0:3.0:3"), "grid.toml")

    class Interrupted:
        def map(self, function: Any, cells: Any) -> Iterator[Any]:
            for cell in cells:
                yield function(cell)
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Runner(changed, out, executor=Interrupted(), progress=False).run()
    assert (out / "grid.toml").read_text() == changed.text
    for derived in ("results.csv", "results.json", "summary.md", "provenance.json"):
        assert not (out / derived).exists(), derived
    assert run(out, changed.text).exit_code == 0


# ---------------------------------------------------------------------------- damage
@pytest.mark.parametrize(
    "damage",
    [
        "",
        '{"format": 2, "cell": "ising1d-4-metropolis", "rows": [',
        "{}",
        '{"format": 2, "cell": "ising1d-4-metropolis", "status": "ok", "rows": "none"}',
        "[1, 2, 3]",
        "\xff\xfe not text",
    ],
    ids=["empty", "truncated", "empty-object", "wrong-schema", "a-list", "not-utf8"],
)
def test_a_damaged_cell_file_is_named_and_rerun(tmp_path: Path, damage: str) -> None:
    out = tmp_path / "out"
    assert run(out, GRID).exit_code == 0
    table = read_table(out / "results.csv")
    path = out / "cells" / "ising1d-4-metropolis.json"
    path.write_bytes(damage.encode("latin-1"))
    result = run(out, GRID)
    assert result.exit_code == 0, result.output
    assert f"re-running a cell whose file is damaged: {path}" in result.output
    pd.testing.assert_frame_equal(comparable(read_table(out / "results.csv")), comparable(table))


@pytest.mark.parametrize("damage", ["empty-npz", "truncated-npz", "no-json", "bad-json"])
def test_a_damaged_sample_cache_is_named_discarded_and_resampled(
    tmp_path: Path, damage: str
) -> None:
    out = tmp_path / "out"
    assert run(out, GRID).exit_code == 0
    table = read_table(out / "results.csv")
    cached = next(p for p in (out / "cache").iterdir() if p.name.startswith("ising1d-4-"))
    arrays, meta = cached / "samples.npz", cached / "samples.json"
    if damage == "empty-npz":
        arrays.write_bytes(b"")
    elif damage == "truncated-npz":
        arrays.write_bytes(arrays.read_bytes()[:100])
    elif damage == "no-json":
        meta.unlink()
    else:
        meta.write_text('{"format": 1}')
    for cell in (out / "cells").rglob("ising1d-4*.json"):
        cell.unlink()  # the cells run again and need the reference configurations
    result = run(out, GRID)
    assert result.exit_code == 0, result.output
    assert "discarded a damaged sample cache" in result.output
    assert str(cached) in result.output
    pd.testing.assert_frame_equal(comparable(read_table(out / "results.csv")), comparable(table))


# ---------------------------------------------------------------------------- ownership
def test_a_second_concurrent_run_is_refused_naming_the_holder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run(out, GRID).exit_code == 0
    with RunFolder(out).lock():
        result = run(out, GRID)
    assert result.exit_code == 1
    assert "is in use by another spinbench run" in result.output
    assert f"PID {os.getpid()} on host" in result.output


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run(out, GRID).exit_code == 0
    (out / ".lock.json").write_text(
        json.dumps({"pid": 2**22 + 17, "host": "gone", "started": "2020-01-01T00:00:00+00:00"})
    )
    result = run(out, GRID)
    assert result.exit_code == 0, result.output
    assert "took over the lock of a run that no longer runs (PID 4194321 on host gone" in (
        result.output
    )
    assert not (out / ".lock.json").exists()


def test_a_folder_spinbench_did_not_write_is_refused_unless_forced(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "results.csv").write_text("my,own\n1,2\n")
    refused = run(out, GRID, tmp=tmp_path)
    assert refused.exit_code == 1
    assert "holds files spinbench did not write (results.csv)" in refused.output
    assert "--force" in refused.output
    assert (out / "results.csv").read_text() == "my,own\n1,2\n"
    assert not (out / MARKER).exists()
    forced = run(out, GRID, "--force", tmp=tmp_path)
    assert forced.exit_code == 0, forced.output
    assert (out / MARKER).exists()


def test_files_follow_the_umask(tmp_path: Path) -> None:
    """A run started under umask 027 (in its own process: the umask is read once) writes
    files 0640 and folders 0750."""
    out, grid = tmp_path / "out", tmp_path / "grid.toml"
    grid.write_text(GRID)
    command = [sys.executable, "-m", "spinbench", "run", "--config", str(grid), "--out", str(out)]
    result = subprocess.run([*command, "--quiet"], umask=0o027, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for path in (out / "results.csv", out / "cells" / "ising1d-4-metropolis.json", out / MARKER):
        assert stat.S_IMODE(path.stat().st_mode) == 0o640, path
    for path in (out / "samples" / "ising1d-4-metropolis", out / "cells"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o750, path
    cache = next((out / "cache").iterdir())
    assert stat.S_IMODE(cache.stat().st_mode) == 0o750


# ---------------------------------------------------------------------------- exit status
def test_flagged_rows_are_results_listed_at_the_end_unless_strict(tmp_path: Path) -> None:
    out = tmp_path / "out"
    grid = GRID + '\n[[methods]]\nname = "constant"\n'
    result = run(out, grid)
    assert result.exit_code == 0, result.output
    assert "flagged rows (results that cannot be trusted)" in result.output
    table = read_table(out / "results.csv")
    constant = table[(table["method"] == "constant") & (table["observable"] == "energy")]
    assert (constant["status"] == "degenerate").all()
    assert np.isinf(constant["z"]).all()
    assert "inf" in (out / "results.csv").read_text()
    records = json.loads((out / "results.json").read_text())
    assert any(r["z"] == "inf" for r in records if r["method"] == "constant")
    summary = (out / "summary.md").read_text()
    assert "## Flagged rows" in summary and "degenerate" in summary
    strict = run(out, grid, "--strict")
    assert strict.exit_code == 1


def test_an_infinite_kl_is_written_as_inf(tmp_path: Path) -> None:
    """At T = 0.001 a configuration with a domain wall has Boltzmann probability
    e^{-2000} = 0 in float64: the constant generator's KL divergences are infinite."""
    out = tmp_path / "out"
    grid = """
seed = 1
samples = 100
[reference]
chains = 4
warmup = 50
sweeps = 200
every = 2

[[models]]
name = "ising1d"
size = "4"
temps = [0.001, 1.0]

[[methods]]
name = "constant"
"""
    result = run(out, grid)
    assert result.exit_code == 0, result.output
    table = read_table(out / "results.csv")
    kl = table[(table["observable"].isin(["energy_kl", "state_kl"])) & (table["T"] == 0.001)]
    assert len(kl) == 2 and np.isinf(kl["estimate"]).all()
    text = (out / "results.csv").read_text()
    assert ",energy_kl,,inf," in text


def test_a_flagged_reference_makes_the_run_fail(tmp_path: Path) -> None:
    """Chains quenched to T = 0.01 on an 8x8 torus freeze in stripe states: R-hat = inf."""
    out = tmp_path / "out"
    grid = """
seed = 0
samples = 100
[reference]
chains = 16
warmup = 200
sweeps = 400
every = 2
update = "checkerboard"

[[models]]
name = "ising2d"
size = "8"
temps = [0.01]

[[methods]]
name = "constant"
"""
    result = run(out, grid)
    assert result.exit_code == 1
    assert "Monte Carlo references cannot be trusted" in result.output
    assert "R-hat = inf" in result.output
    assert (out / "results.csv").exists()


# ---------------------------------------------------------------------------- file system
def test_a_parent_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    result = run(tmp_path / "file" / "out", GRID, tmp=tmp_path)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(lines) == 1 and str(tmp_path / "file") in lines[0]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_one_line(tmp_path: Path) -> None:
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        result = run(parent / "out", GRID, tmp=tmp_path)
    finally:
        parent.chmod(0o755)
    assert result.exit_code == 1
    assert f"cannot write {parent / 'out'}: Permission denied" in result.output


@pytest.mark.parametrize(
    ("number", "reason"),
    [(errno.ENOSPC, "No space left on device"), (errno.EROFS, "Read-only file system")],
)
def test_a_full_or_read_only_disk_is_one_line_and_the_folder_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, number: int, reason: str
) -> None:
    out = tmp_path / "out"
    real = os.replace

    def refuse(source: str, target: Any) -> None:
        if str(target).endswith("ising1d-5-periodic-metropolis.json"):
            raise OSError(number, os.strerror(number), str(target))
        real(source, target)

    monkeypatch.setattr(os, "replace", refuse)
    result = run(out, GRID)
    assert result.exit_code == 1
    assert f"cannot write {out / 'cells' / 'ising1d-5-periodic-metropolis.json'}: {reason}" in (
        result.output
    )
    assert "Traceback" not in result.output
    monkeypatch.setattr(os, "replace", real)
    again = run(out, GRID)
    assert again.exit_code == 0, again.output
    assert "resuming: 3 of 4 cells already done" in again.output


# ---------------------------------------------------------------------------- report
def test_report_of_a_partial_run_says_what_is_missing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run(out, GRID).exit_code == 0
    (out / "cells" / "ising1d-4-metropolis.json").unlink()
    result = CliRunner().invoke(main, ["report", str(out)])
    assert result.exit_code == 0, result.output
    assert "partial run: 1 cells are missing (ising1d-4-metropolis)" in result.output
    assert "Partial run: 1 of 2 cells are missing" in (out / "summary.md").read_text()


def test_report_errors_say_what_is_wrong(tmp_path: Path) -> None:
    empty = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert empty.exit_code == 1 and "holds no spinbench results" in empty.output
    out = tmp_path / "out"
    assert run(out, GRID).exit_code == 0
    (out / "grid.toml").write_text("seed = [")
    damaged = CliRunner().invoke(main, ["report", str(out)])
    assert damaged.exit_code == 1
    assert f"{out / 'grid.toml'} cannot be used" in damaged.output and "TOML" in damaged.output


def test_report_leaves_the_old_summary_when_it_cannot_finish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import matplotlib.figure

    out = tmp_path / "out"
    assert run(out, GRID).exit_code == 0
    summary = (out / "summary.md").read_text()
    figures = sorted(p.name for p in (out / "figures").iterdir())

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the plotting library broke")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", broken)
    (out / "cells" / "ising1d-4-metropolis.json").unlink()  # the summary would change
    with pytest.raises(RuntimeError, match="plotting library"):
        write_report(out)
    assert (out / "summary.md").read_text() == summary
    assert sorted(p.name for p in (out / "figures").iterdir()) == figures


def test_chain_only_grids_get_their_figures_from_run_and_report(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run(out, GRID)
    assert result.exit_code == 0
    names = {"figure2-ising1d-4.png", "figure2-ising1d-5-periodic.png"}
    assert {p.name for p in (out / "figures").iterdir()} == names
    for name in names:
        (out / "figures" / name).unlink()
    report = CliRunner().invoke(main, ["report", str(out)])
    assert report.exit_code == 0
    assert {p.name for p in (out / "figures").iterdir()} == names
    assert all(f"figure:  {out / 'figures' / n}" in report.output for n in names)


def test_a_figure_panel_that_cannot_be_drawn_is_named(tmp_path: Path) -> None:
    import shutil

    out = tmp_path / "out"
    assert run(out, GRID).exit_code == 0
    shutil.rmtree(out / "samples" / "ising1d-4-metropolis")
    report = CliRunner().invoke(main, ["report", str(out)])
    assert report.exit_code == 0
    assert "not drawn: figure2-ising1d-4.png: metropolis left out" in report.output
    assert "samples/ising1d-4-metropolis) are missing" in (out / "summary.md").read_text()
