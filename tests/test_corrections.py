"""Generators corrected: densities, importance reweighting, neural MCMC, the variational free
energy and ESS per second, checked against exact results on enumerable models."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from spinbench import GridError, Samples, UnsupportedModelError
from spinbench.corrections import (
    NeuralMCMC,
    log_weights,
    reweighted,
    variational_free_energy,
)
from spinbench.exact import ExactResult
from spinbench.generators import VAE, DenseVAE, TrainedGenerator
from spinbench.models import XY1D, AbstractModel, Ising1D, Ising2D
from spinbench.runner import TIMING_COLUMNS, Runner, load_grid, make_plan, parse_grid
from spinbench.samplers import Metropolis
from spinbench.testing import ConformanceError, check_sampler

Z_MAX = 4.0


def _reference(model: AbstractModel, temps: np.ndarray, seed: int = 0) -> Samples:
    sampler = Metropolis(chains=8, warmup=200, sweeps=2000, every=4)
    return sampler.sample(model, temps, key=jax.random.key(seed), progress=False)


def _trained(
    model: AbstractModel, temps: np.ndarray, generator: Any = None, epochs: int = 30
) -> TrainedGenerator:
    generator = generator or DenseVAE(likelihood="auto", epochs=epochs)
    return generator.fit(model, _reference(model, temps), key=jax.random.key(1), progress=False)


def _rows(records: list[dict[str, Any]], observable: str) -> list[dict[str, Any]]:
    return [r for r in records if r["observable"] == observable]


class ShiftedDensity(DenseVAE):
    """A dense VAE whose log density is wrong by a state-dependent amount (1.5 per up spin):
    corrections that really use ``log q`` must then miss the exact values."""

    def generate_with_log_density(
        self, model: AbstractModel, params: Any, n: int, *, key: Any
    ) -> tuple[Any, Any]:
        states, log_q = super().generate_with_log_density(model, params, n, key=key)
        ups = jnp.sum(states.reshape(*states.shape[:2], -1) > 0, axis=-1)
        return states, log_q + 1.5 * ups


# ---------------------------------------------------------------------------- densities
def test_the_paper_generators_have_no_density_and_say_why() -> None:
    model = Ising1D.from_size(6)
    for generator in (VAE(), DenseVAE(), VAE(likelihood="bernoulli", readout="mean")):
        problem = generator.density_problem(model)
        assert problem is not None and ("gaussian" in problem or "readout" in problem)
    trained = _trained(model, np.array([1.0]), DenseVAE(epochs=2))
    with pytest.raises(UnsupportedModelError, match="no density"):
        trained.generate(10, seed=0, density=True)
    with pytest.raises(UnsupportedModelError, match="no density"):
        NeuralMCMC.with_proposal(trained, chains=2, warmup=1, sweeps=2)


def test_auto_likelihood_is_bernoulli_for_spins_and_von_mises_for_angles() -> None:
    generator = DenseVAE(likelihood="auto")
    assert type(generator.output_likelihood(Ising1D.from_size(6))).__name__.startswith("Bern")
    assert type(generator.output_likelihood(XY1D.from_size(6))).__name__.startswith("VonMises")
    assert generator.density_problem(XY1D.from_size(6)) is None
    with pytest.raises(ValueError, match="auto"):
        DenseVAE(likelihood="poisson")


def test_generated_log_density_matches_the_decoder_and_encoder() -> None:
    """The augmented log density of each draw, recomputed by hand from the networks."""
    model = Ising1D.from_size(6)
    temps = np.array([1.0, 2.0])
    trained = _trained(model, temps, epochs=3)
    samples = trained.generate(50, seed=3, density=True)
    assert samples.info["log_q"].shape == (2, 50)
    assert np.isfinite(samples.info["log_q"]).all()
    # ln q of a discrete configuration is at most 0 only for exact densities; the augmented
    # one is not a probability, but its exponential averages to 1 over p(z) p(x|z) -- the
    # weights' normalisation: E_q[exp(-log q) r...] -- checked through ln Z below.
    again = trained.generate(50, seed=3, density=True)
    np.testing.assert_array_equal(samples.info["log_q"], again.info["log_q"])


# ---------------------------------------------------------------------------- corrections
@pytest.mark.parametrize(
    ("model", "temps"),
    [
        (Ising1D.from_size(6, boundary="free"), np.array([0.5, 1.0, 2.0, 3.5])),
        (Ising1D.from_size(10), np.array([0.7, 1.5, 3.0])),
        (Ising2D.from_size(4), np.array([1.8, 2.269185314, 3.0])),
    ],
    ids=["ising1d-6-free", "ising1d-10", "ising2d-4"],
)
def test_reweighting_and_neural_mcmc_match_the_exact_values(
    model: AbstractModel, temps: np.ndarray
) -> None:
    """Every corrected row within 4 standard errors of the exact value, at every temperature,
    while the raw generator is off by more than 10 standard errors somewhere; the variational
    free energy lies above the exact one."""
    exact = model.exact(temps)
    # symmetrised under s -> -s: a network that learnt one ordered state still weights both
    trained = _trained(model, temps, DenseVAE(likelihood="auto", epochs=60, symmetrize=True))
    samples = trained.generate(4000, seed=2, density=True)
    from spinbench._analysis import analyse  # the raw rows, as the runner makes them

    raw = analyse(model, samples, exact=exact)
    assert max(abs(r["z"]) for r in _rows(raw, "energy")) > 10
    corrected = reweighted(model, samples, exact)
    chain = NeuralMCMC.with_proposal(trained, chains=20, warmup=50, sweeps=500).sample(
        model, temps, key=jax.random.key(5), progress=False
    )
    assert 0 < chain.info["acceptance"].mean() < 1
    mcmc = analyse(model, chain, exact=exact)
    for record in corrected + mcmc:
        where = f"{record['method']} T={record['T']} {record['observable']} r={record['r']}"
        assert abs(record["z"]) < Z_MAX, where
        # a proposal that rarely draws the ground states sticks the chains there at low T
        # (4x4, T = 1.8): honest error bars, and R-hat says the run is too short
        assert record["status"] in ("ok", "unconverged"), f"{where}: {record['reason']}"
    assert sum(r["status"] == "ok" for r in corrected + mcmc) > 0.8 * len(corrected + mcmc)
    assert {r["observable"] for r in corrected} >= {"energy", "heat_capacity", "free_energy"}
    assert all(0 < r["ess_fraction"] <= 1 for r in corrected)
    bound = _rows(variational_free_energy(model, samples, exact), "free_energy")
    assert len(bound) == len(temps)
    for record in bound:
        assert record["estimate"] > record["exact"] - Z_MAX * record["stderr"], record


def test_xy_chain_corrections_match_the_exact_values() -> None:
    model = XY1D.from_size(6, boundary="free")
    temps = np.array([0.5, 1.5, 3.0])
    exact = model.exact(temps)
    trained = _trained(model, temps, epochs=20)
    samples = trained.generate(4000, seed=2, density=True)
    for record in _rows(reweighted(model, samples, exact), "energy"):
        assert abs(record["z"]) < Z_MAX, record
    ln_z_rows = _rows(reweighted(model, samples, exact), "free_energy")
    assert all(abs(r["z"]) < Z_MAX for r in ln_z_rows)


def test_the_prior_as_auxiliary_density_is_exact_too() -> None:
    model = Ising1D.from_size(6, boundary="free")
    temps = np.array([1.0, 2.5])
    exact = model.exact(temps)
    trained = _trained(model, temps, DenseVAE(likelihood="auto", epochs=20, auxiliary="prior"))
    samples = trained.generate(4000, seed=4, density=True)
    for record in _rows(reweighted(model, samples, exact), "energy"):
        assert abs(record["z"]) < Z_MAX, record


def test_a_wrong_density_makes_the_corrections_fail() -> None:
    """The same network with a state-dependent error in ln q: the corrected rows miss."""
    model = Ising1D.from_size(6, boundary="free")
    temps = np.array([1.0, 2.0])
    exact = model.exact(temps)
    good = _trained(model, temps, epochs=20)
    bad = dataclasses.replace(good, generator=ShiftedDensity(likelihood="auto", epochs=20))
    samples = bad.generate(4000, seed=2, density=True)
    worst = max(abs(r["z"]) for r in _rows(reweighted(model, samples, exact), "energy"))
    assert worst > 10
    chain = NeuralMCMC.with_proposal(bad, chains=10, warmup=20, sweeps=400).sample(
        model, temps, key=jax.random.key(5), progress=False
    )
    from spinbench._analysis import analyse

    worst_mcmc = max(abs(r["z"]) for r in _rows(analyse(model, chain, exact=exact), "energy"))
    assert worst_mcmc > 10


def test_log_weights_are_minus_beta_energy_minus_log_q() -> None:
    model = Ising1D.from_size(4)
    temps = np.array([1.0, 2.0])
    states = np.ones((2, 1, 3, 4), np.int8)
    states[1, 0, 1, ::2] = -1
    samples = Samples(
        states=states,
        temps=temps,
        model=model.describe(),
        method="x",
        info={"log_q": np.array([[-1.0, -2.0, -3.0], [0.0, -1.0, -2.0]])},
    )
    energy = np.asarray(model.energy(jnp.asarray(states[:, 0])), np.float64)
    expected = -energy / temps[:, None] - samples.info["log_q"]
    np.testing.assert_allclose(log_weights(model, samples), expected)


def test_free_energy_rows_need_exact_ln_z_for_their_exact_column() -> None:
    model = Ising1D.from_size(6)
    temps = np.array([1.0])
    trained = _trained(model, temps, epochs=3)
    samples = trained.generate(100, seed=1, density=True)
    without = _rows(variational_free_energy(model, samples, None), "free_energy")
    assert without[0]["exact"] is None or not math.isfinite(without[0]["exact"] or math.nan)
    with_exact = _rows(variational_free_energy(model, samples, model.exact(temps)), "free_energy")
    ln_z = float(np.asarray(model.exact(temps).ln_z)[0])
    assert with_exact[0]["exact"] == pytest.approx(-1.0 * ln_z / model.n_sites)
    assert isinstance(model.exact(temps), ExactResult)


# ---------------------------------------------------------------------------- conformance
@pytest.mark.slow
def test_neural_mcmc_passes_the_conformance_kit_and_a_wrong_density_fails_it() -> None:
    model = Ising1D.from_size(5, boundary="free")
    temps = (0.8, 2.0)
    trained = _trained(model, np.asarray(temps), epochs=30)
    sampler = NeuralMCMC.with_proposal(trained, chains=32, warmup=50, sweeps=150)
    # every check but 'attributes' (options rebuilt from settings alone): a sampler bound to
    # a trained proposal is made by with_proposal, not from a grid's options
    checks = ["supports", "samples", "determinism", "distribution"]
    check_sampler(sampler, cases=[(model, temps)], key=0, checks=checks)
    bad = dataclasses.replace(trained, generator=ShiftedDensity(likelihood="auto", epochs=30))
    wrong = NeuralMCMC.with_proposal(bad, chains=32, warmup=50, sweeps=150)
    with pytest.raises(ConformanceError, match="distribution"):
        check_sampler(wrong, cases=[(model, temps)], key=0, checks=checks)


def test_neural_mcmc_samples_only_its_proposals_model_and_temperatures() -> None:
    model = Ising1D.from_size(6)
    trained = _trained(model, np.array([1.0, 2.0]), DenseVAE(likelihood="auto", epochs=2))
    sampler = NeuralMCMC.with_proposal(trained, chains=2, warmup=1, sweeps=2)
    assert "trained on" in (sampler.supports(Ising1D.from_size(8)) or "")
    with pytest.raises(ValueError, match="trained at T"):
        sampler.sample(model, np.array([1.0, 3.0]), key=jax.random.key(0), progress=False)
    assert NeuralMCMC().supports(model) is not None


# ---------------------------------------------------------------------------- grids
CORRECTED_GRID = """
seed = 0
samples = 3000

[reference]
chains = 8
warmup = 200
sweeps = 2000
every = 5

[[models]]
name = "ising1d"
size = "6"
boundary = "free"
temps = [0.5, 1.0, 2.0]

[[methods]]
name = "metropolis"

[[methods]]
name = "dense-vae"
likelihood = "auto"
epochs = 25
corrections = ["reweight", "mcmc"]

[[methods]]
name = "not-installed-anywhere"
optional = true
"""


def test_a_grid_with_corrections_gives_corrected_and_costed_rows(tmp_path: Path) -> None:
    grid = tmp_path / "grid.toml"
    grid.write_text(CORRECTED_GRID)
    runner = Runner(load_grid(grid), tmp_path / "out", progress=False)
    assert runner.plan.left_out == ["not-installed-anywhere"]
    table = runner.run()
    methods = set(table["method"])
    assert methods == {"metropolis", "dense-vae", "dense-vae+reweight", "dense-vae+mcmc"}
    energy = table[table["observable"] == "energy"].set_index(["method", "T"])
    for method in ("dense-vae+reweight", "dense-vae+mcmc", "metropolis"):
        assert (energy.loc[method, "z"].abs() < Z_MAX).all(), method
    assert (energy.loc["dense-vae", "z"].abs() > 10).any()
    assert energy.loc["dense-vae+mcmc", "acceptance"].between(0, 1, inclusive="neither").all()
    assert energy.loc["dense-vae+reweight", "ess_fraction"].between(0, 1).all()
    for method in methods:
        rows = energy.loc[method]
        assert (rows["ess_per_second"] > 0).all(), method
        assert (rows["sample_time"] > 0).all(), method
    assert (energy.loc["dense-vae", "train_time"] > 0).all()
    assert (energy.loc["metropolis", "train_time"] == 0).all()
    free = table[table["observable"] == "free_energy"].set_index(["method", "T"])
    bound = free.loc["dense-vae"]
    assert (bound["estimate"] > bound["exact"] - Z_MAX * bound["stderr"]).all()
    assert (free.loc["dense-vae+reweight", "z"].abs() < Z_MAX).all()
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "ESS of the energy per second" in summary and "dense-vae+mcmc" in summary
    assert (tmp_path / "out" / "samples" / "ising1d-6-free-dense-vae+mcmc").is_dir()
    again = Runner(load_grid(grid), tmp_path / "out", progress=False).run()
    pd.testing.assert_frame_equal(
        again.drop(columns=list(TIMING_COLUMNS)), table.drop(columns=list(TIMING_COLUMNS))
    )


@pytest.mark.parametrize(
    ("method", "message"),
    [
        ('name = "metropolis"\ncorrections = ["reweight"]', "is a sampler"),
        ('name = "vae"\ncorrections = ["mcmc"]', "squared-error"),
        ('name = "vae"\nlikelihood = "auto"\ncorrections = ["bootstrap"]', "'reweight', 'mcmc'"),
        ('name = "vae"\nlikelihood = "auto"\ncorrections = ["mcmc", "mcmc"]', "twice"),
        ('name = "vae"\noptional = "yes"', "true or false"),
    ],
)
def test_bad_corrections_are_grid_errors(method: str, message: str) -> None:
    text = f"""
[[models]]
name = "ising1d"
size = "6"
temps = [1.0]

[[methods]]
{method}
"""
    with pytest.raises(GridError, match=message):
        make_plan(parse_grid(text))


def test_the_corrected_preset_is_a_valid_plan() -> None:
    from spinbench.runner import load_preset

    plan = make_plan(load_preset("corrected"))
    labels = {c.model.label() for c in plan.cells}
    assert {"ising1d-6-free", "xy1d-6-free", "ising2d-10"} <= labels
    corrected = {m.name for m in plan.spec.methods if m.corrections}
    assert {"vae", "dense-vae", "avb"} <= corrected
