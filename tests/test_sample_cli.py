"""``spinbench sample`` through click's CliRunner: records, caching, formats and user errors."""

from __future__ import annotations

import csv
import io
import json
import types
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner, Result

import spinbench
from spinbench.cli import main
from spinbench.samplers import AbstractSampler

RUN = ["--chains", "4", "--warmup", "50", "--sweeps", "200", "--every", "5"]
ISING = ["sample", "ising1d", "--size", "6", "--temps", "0.5,2.0", *RUN]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def invoke(runner: CliRunner, args: list[str], cache: Path) -> Result:
    return runner.invoke(main, [*args, "--out", str(cache)])


def records_of(result: Result) -> list[dict[str, Any]]:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_json_records_with_exact_values(runner: CliRunner, tmp_path: Path) -> None:
    records = records_of(invoke(runner, [*ISING, "--format", "json"], tmp_path))
    # per T: energy, heat capacity, |m|, and correlations at r = 1..5
    assert len(records) == 2 * 8
    first = records[0]
    for key in ("model", "size", "T", "observable", "r", "estimate", "stderr", "exact"):
        assert key in first
    assert (first["model"], first["size"], first["boundary"]) == ("ising1d", "6", "free")
    assert first["method"] == "metropolis" and 0 < first["acceptance"] < 1
    energies = [r for r in records if r["observable"] == "energy"]
    assert [r["T"] for r in energies] == [0.5, 2.0]
    for r in records:
        assert r["exact"] is not None, r
        assert r["stderr"] > 0 and r["tau_int"] > 0 and r["ess"] > 0
        assert r["abs_error"] == pytest.approx(abs(r["estimate"] - r["exact"]))
        assert r["z"] == pytest.approx(r["abs_error"] / r["stderr"])
    assert [r["r"] for r in records if r["observable"] == "correlation"][:5] == [1, 2, 3, 4, 5]


def test_samples_are_cached_and_reused(runner: CliRunner, tmp_path: Path) -> None:
    first = invoke(runner, [*ISING, "--format", "json"], tmp_path)
    assert first.exit_code == 0 and "saved" in first.stderr
    folders = list(tmp_path.iterdir())
    assert len(folders) == 1 and (folders[0] / "samples.npz").exists()
    again = invoke(runner, [*ISING, "--format", "json"], tmp_path)
    assert again.exit_code == 0 and "reused" in again.stderr
    assert again.stdout == first.stdout
    other_seed = invoke(runner, [*ISING, "--format", "json", "--seed", "1"], tmp_path)
    assert "saved" in other_seed.stderr and len(list(tmp_path.iterdir())) == 2
    assert other_seed.stdout != first.stdout


def test_cache_folder_from_the_environment(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPINBENCH_CACHE", str(tmp_path / "env-cache"))
    result = runner.invoke(main, [*ISING, "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "env-cache").is_dir()
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 16 and rows[0]["observable"] == "energy"


def test_table_and_xy_without_magnetisation_reference(runner: CliRunner, tmp_path: Path) -> None:
    args = ["sample", "xy1d", "--size", "4", "--temps", "1.0", *RUN, "--width", "1.0"]
    result = invoke(runner, [*args, "--update", "checkerboard"], tmp_path)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:6] == ["model", "size", "boundary", "options", "method", "T"]
    magnetization = next(line for line in lines if "abs_magnetization" in line)
    spans, start = {}, 0  # the dashes under the header give each column's width
    for name, dashes in zip(lines[0].split(), lines[1].split(), strict=True):
        spans[name] = (start, start + len(dashes))
        start += len(dashes) + 2
    for column in ("exact", "abs_error", "z"):  # no exact |m| for XY: no error, no z
        assert magnetization[slice(*spans[column])].strip() == "-", column


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--temps", "0,1"], "finite and > 0"),
        (["--temps", "-1.0"], "finite and > 0"),
        (["--temps", "nan"], "finite and > 0"),
        (["--temps", "1:0.5:3"], "start 1.0 is above stop"),
        (["--sampler", "gibbs"], "unknown sampler 'gibbs'; valid names: metropolis"),
        (["--sampler", "vae"], "'vae' is a generator, not a sampler; valid samplers: metropolis"),
        (["--sampler", "vae"], "A generator is trained, then sampled: spinbench train vae ising1d"),
        (["--sweeps", "10", "--every", "20"], "larger than sweeps"),
        (["--chains", "0"], "chains must be a positive integer"),
        (["--width", "-1"], "width must be a positive number"),
        (
            ["--width", "0.5"],
            "cannot sample ising1d: width is the angle step for continuous spins; ising1d has "
            "discrete spins",
        ),
        (["--sweeps", "15", "--every", "5"], "at least 4 are needed"),
        (["--update", "heatbath"], "Invalid value for '--update'"),
        (["--seed", "-3"], "Invalid value for '--seed'"),
        (["--size", "1"], "too small"),
        (["--boundary", "periodic", "--size", "x"], "not understood"),
    ],
)
def test_user_errors(runner: CliRunner, tmp_path: Path, args: list[str], message: str) -> None:
    base = ISING  # the same run as above (its compiled programs are reused)
    result = invoke(runner, [*base, *args], tmp_path)
    assert result.exit_code != 0
    assert message in result.output, result.output
    assert "Traceback" not in result.output


def test_bad_temperature_is_a_plain_number(runner: CliRunner, tmp_path: Path) -> None:
    result = invoke(runner, ["sample", "ising1d", "--size", "4", "--temps", "-1"], tmp_path)
    assert result.exit_code != 0
    assert "temperature must be finite and > 0, got -1.0\n" in result.output, result.output


def test_unknown_model(runner: CliRunner, tmp_path: Path) -> None:
    result = invoke(runner, ["sample", "potts", "--size", "4", "--temps", "1.0"], tmp_path)
    assert result.exit_code != 0 and "unknown model 'potts'" in result.output


class NoOptions(AbstractSampler):
    """A plugin sampler without Metropolis's options."""

    name: ClassVar[str] = "nooptions"

    def sample(self, model: Any, temps: Any, *, key: Any) -> Any:
        raise AssertionError("not reached")


def test_options_a_plugin_sampler_lacks(runner: CliRunner, tmp_path: Path) -> None:
    plugin = types.SimpleNamespace(
        spinbench_register_samplers=spinbench.hookimpl(lambda: [NoOptions])
    )
    args = ["sample", "ising1d", "--size", "6", "--temps", "1.0", "--sampler", "nooptions"]
    with spinbench.plugins_registered(("no-options", plugin)):
        result = invoke(runner, [*args, "--width", "0.5"], tmp_path)
    assert result.exit_code != 0
    assert "sampler 'nooptions' has no option --width" in result.output


def test_run_length_defaults_are_metropolis_defaults() -> None:
    """The commands' literal run-length defaults (kept literal so that the command line starts
    without jax) are the sampler's own: the paper's protocol."""
    from spinbench._commands.common import RUN_LENGTH_DEFAULTS
    from spinbench.samplers import Metropolis

    default = Metropolis()
    assert {
        name: getattr(default, name) for name in ("chains", "warmup", "sweeps", "every")
    } == RUN_LENGTH_DEFAULTS


def test_a_zero_error_bar_on_a_wrong_value_is_z_inf_and_degenerate(
    runner: CliRunner, tmp_path: Path
) -> None:
    """Four chains at T = 0.7 on a 4x4 torus sit in the ground state: every configuration
    has E/N = -2 while the exact value is -1.99991."""
    args = ["sample", "ising2d", "--size", "4", "--temps", "0.7", "--chains", "4"]
    args += ["--warmup", "200", "--sweeps", "400", "--every", "4"]
    result = invoke(runner, [*args, "--format", "csv"], tmp_path)
    assert result.exit_code == 0, result.output
    energy = next(
        r for r in csv.DictReader(io.StringIO(result.stdout)) if r["observable"] == "energy"
    )
    assert (energy["estimate"], energy["stderr"], energy["z"]) == ("-2.0", "0.0", "inf")
    assert energy["status"] == "degenerate" and "no error bar" in energy["reason"]
    records = records_of(invoke(runner, [*args, "--format", "json"], tmp_path))
    assert next(r for r in records if r["observable"] == "energy")["z"] == "inf"


def test_chains_stuck_in_different_states_are_unconverged(
    runner: CliRunner, tmp_path: Path
) -> None:
    """Quenched to T = 0.01, chains on an 8x8 torus freeze in different stripe states:
    split-R-hat is infinite, whatever z says."""
    args = ["sample", "ising2d", "--size", "8", "--temps", "0.01", "--chains", "16"]
    args += ["--warmup", "200", "--sweeps", "400", "--every", "2", "--format", "json"]
    records = records_of(invoke(runner, args, tmp_path))
    energy = next(r for r in records if r["observable"] == "energy")
    assert energy["rhat"] == "inf"
    assert energy["status"] == "unconverged" and "R-hat = inf" in energy["reason"]
    assert all(r["status"] == "unconverged" for r in records)


def test_a_lattice_too_large_for_memory_is_refused_before_allocating(
    runner: CliRunner, tmp_path: Path
) -> None:
    result = invoke(runner, ["sample", "ising2d", "--size", "100000", "--temps", "2"], tmp_path)
    assert result.exit_code == 1
    assert "sampling ising2d 100000x100000 would need about" in result.output
    assert "TiB of memory, more than the" in result.output and "Traceback" not in result.output
    assert not tmp_path.exists() or not any(tmp_path.iterdir())
