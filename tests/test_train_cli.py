"""``spinbench train`` through click's CliRunner: the single-cell path, divergence and errors.

The reference run (20 chains x 500 measurements = 10,000 configurations per T) and the
generator options match the dense VAE of ``test_generators.py``, so when both modules run in
one session the training program is compiled once.
"""

from __future__ import annotations

import json
import types
from pathlib import Path
from typing import Any, ClassVar

import click
import jax
import numpy as np
import pytest
from click.testing import CliRunner, Result

import spinbench
from spinbench import Samples

# Unit tests of the command's option parsing and of its records.
from spinbench._commands.train import parse_option, train_records
from spinbench.cli import main
from spinbench.generators import DenseVAE, TrainedGenerator
from spinbench.models import Ising1D

REFERENCE = ["--reference-chains", "20", "--warmup", "100", "--sweeps", "500", "--every", "1"]
TRAIN = ["train", "dense-vae", "ising1d", "--size", "6", "--temps", "0.5,4.0", *REFERENCE]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def invoke(args: list[str], cache: Path, out: Path) -> Result:
    return CliRunner().invoke(main, [*args, "--cache", str(cache), "--out", str(out)])


def test_train_sample_and_report(cache: Path, tmp_path: Path) -> None:
    result = invoke([*TRAIN, "--option", "epochs=40", "--format", "json"], cache, tmp_path)
    assert result.exit_code == 0, result.output
    assert "saved Metropolis samples" in result.stderr
    records: list[dict[str, Any]] = json.loads(result.stdout)
    assert {r["method"] for r in records} == {"dense-vae"}
    assert {r["status"] for r in records} == {"ok"}
    energies = [r for r in records if r["observable"] == "energy"]
    assert [r["T"] for r in energies] == [0.5, 4.0]
    for r in energies:
        assert r["exact"] is not None and r["abs_error"] < 0.1, r
        assert 0.4 < r["tau_int"] < 0.7  # independent samples
    trained = TrainedGenerator.load(
        tmp_path / "generator", generator=DenseVAE(epochs=40), model=Ising1D.from_size(6)
    )
    assert trained.generator == DenseVAE(epochs=40)
    assert trained.seed == 0
    samples = Samples.load(tmp_path / "samples")
    assert samples.states.shape == (2, 1, 10000, 6) and samples.method == "dense-vae"
    # a second run reuses the cached Metropolis data
    again = invoke([*TRAIN, "--option", "epochs=2", "--samples", "500"], cache, tmp_path / "b")
    assert again.exit_code == 0, again.output
    assert "reused Metropolis samples" in again.stderr


class DivergesEverywhere(DenseVAE):
    """Training that "diverged" at every temperature (no compilation: the CLI path only)."""

    name: ClassVar[str] = "test-diverges-everywhere"

    def fit(self, model: Any, data: Samples, *, key: Any) -> TrainedGenerator:
        params = self.init(model, len(data.temps), key=key)
        steps = np.arange(len(data.temps)) + 3
        return TrainedGenerator(self, model, data.temps, params, {}, steps)


def test_divergence_everywhere_fails_with_the_temperatures(cache: Path, tmp_path: Path) -> None:
    plugin = types.SimpleNamespace(
        spinbench_register_generators=spinbench.hookimpl(lambda: [DivergesEverywhere])
    )
    train = [TRAIN[0], DivergesEverywhere.name, *TRAIN[2:]]
    with spinbench.plugins_registered(("diverges-everywhere", plugin)):
        result = invoke([*train, "--samples", "500"], cache, tmp_path)
    assert result.exit_code != 0
    assert "diverged at 2 of 2 temperatures (T=0.5 at step 3; T=4 at step 4)" in result.output
    assert (tmp_path / "generator" / "trained.json").exists()  # kept for diagnosis


@pytest.mark.slow
def test_real_divergence_everywhere(cache: Path, tmp_path: Path) -> None:
    options = ["--option", "epochs=1", "--option", "learning_rate=1e30", "--samples", "500"]
    result = invoke([*TRAIN, *options], cache, tmp_path)
    assert result.exit_code != 0
    assert "T=0.5 at step" in result.output and "T=4 at step" in result.output


def test_diverged_temperature_gives_a_reason_not_numbers() -> None:
    model = Ising1D.from_size(6)
    generator = DenseVAE()
    params = generator.init(model, 2, key=jax.random.key(0))
    trained = TrainedGenerator(
        generator,
        model,
        np.array([1.0, 2.0]),
        params,
        {},
        np.array([-1, 17]),
        info={"steps_per_epoch": 20},
    )
    samples = trained.generate(500, key=jax.random.key(1))
    records = train_records(model, trained, samples, model.exact(np.array([1.0, 2.0])))
    at_two = [r for r in records if r["T"] == 2.0]
    assert len(at_two) == 1
    (record,) = at_two
    assert record["status"] == "diverged" and record.get("estimate") is None
    assert "T=2, step 17 (epoch 0)" in record["reason"]
    assert all(r["status"] == "ok" for r in records if r["T"] == 1.0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "vaee", "ising1d"], "Did you mean 'vae'"),
        (["train", "vae", "ising1d", "--option", "epoch=3"], "unknown option(s) 'epoch'"),
        (["train", "vae", "ising1d", "--option", "epochs"], "is not KEY=VALUE"),
        (["train", "vae", "xy1d", "--option", "likelihood=bernoulli"], "cannot learn xy1d"),
        (
            ["train", "metropolis", "ising1d"],
            "'metropolis' is a sampler, not a generator; valid generators: ",
        ),
        (["train", "metropolis", "ising1d"], "spinbench sample ising1d --sampler metropolis"),
        (["train", "ising1d", "vae"], "'vae' is a generator, not a model"),
    ],
)
def test_user_errors(args: list[str], message: str, tmp_path: Path) -> None:
    result = invoke([*args, "--size", "6", "--temps", "1.0"], tmp_path, tmp_path / "out")
    assert result.exit_code != 0
    assert message in result.output


def test_parse_option() -> None:
    assert parse_option("epochs=20") == ("epochs", 20)
    assert parse_option("learning-rate=1e-3") == ("learning_rate", 1e-3)
    assert parse_option("likelihood=bernoulli") == ("likelihood", "bernoulli")
    assert parse_option("patience=none") == ("patience", None)
    with pytest.raises(click.BadParameter):
        parse_option("=3")


def test_training_on_a_lattice_too_large_for_memory_is_refused(tmp_path: Path) -> None:
    args = ["train", "vae", "ising2d", "--size", "100000", "--temps", "2"]
    result = CliRunner().invoke(main, [*args, "--cache", str(tmp_path / "cache")])
    assert result.exit_code == 1
    assert "training vae on ising2d 100000x100000 would need about" in result.output
