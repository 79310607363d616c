"""Data-free (variational) training of generators with an exact density, checked against
enumeration and the exact (Kaufman) free energy of the torus."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import spinbench
from spinbench import OptionError, Samples
from spinbench.corrections import free_energy_exact
from spinbench.generators import VAE, AbstractAutoregressiveGenerator, DenseVAE
from spinbench.generators._autoregressive import anneal_rate
from spinbench.models import AbstractModel, Ising1D, Ising2D
from spinbench.runner import Runner, load_grid, make_plan
from spinbench.testing import boltzmann_samples, enumerate_boltzmann, generator_conformance

Z_MAX = 4.0
#: Rounding of a float32 ln q of a few units, per configuration (an error floor).
FLOAT32_LOG_Q = 1e-6


class SigmoidBeliefNet(eqx.Module):
    """A fully visible sigmoid belief net: logit_i = b_i + sum_{j<i} W_ij x_j (exact density)."""

    weights: jax.Array
    bias: jax.Array


class FVSBN(AbstractAutoregressiveGenerator):
    """The smallest exact autoregressive generator, written on the public base class: what a
    plugin author writes to get both ways of training."""

    name: ClassVar[str] = "fvsbn"
    training: str = eqx.field(static=True, default="data")
    epochs: int = eqx.field(static=True, default=50)
    steps: int = eqx.field(static=True, default=400)
    batch_size: int = eqx.field(static=True, default=256)
    learning_rate: float = eqx.field(static=True, default=1e-2)
    anneal: float = eqx.field(static=True, default=0.2)
    symmetrize: bool = eqx.field(static=True, default=False)

    def __check_init__(self) -> None:
        self._check_options()

    def init(self, model: AbstractModel, n_temps: int, *, key: jax.Array) -> SigmoidBeliefNet:
        n = model.n_sites
        return SigmoidBeliefNet(
            weights=0.01 * jax.random.normal(key, (n_temps, n, n)), bias=jnp.zeros((n_temps, n))
        )

    def _logits(self, net: SigmoidBeliefNet, x: jax.Array) -> jax.Array:
        return x @ jnp.tril(net.weights, -1).T + net.bias

    def log_prob_network(self, model: AbstractModel, net: Any, x: jax.Array) -> jax.Array:
        return jnp.sum(jax.nn.log_sigmoid(x * self._logits(net, x)), axis=-1)

    def sample_network(self, model: AbstractModel, net: Any, n: int, *, key: jax.Array) -> Any:
        uniforms = jax.random.uniform(key, (model.n_sites, n))

        def draw(x: jax.Array, site: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, None]:
            i, u = site
            p_up = jax.nn.sigmoid(self._logits(net, x)[:, i])
            return x.at[:, i].set(jnp.where(u < p_up, 1.0, -1.0)), None

        x, _ = lax.scan(draw, jnp.zeros((n, model.n_sites)), (jnp.arange(model.n_sites), uniforms))
        return x


def _states(model: AbstractModel) -> np.ndarray:
    n = model.n_sites
    digits = (np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1
    return np.asarray(model.spin_values, np.int8)[digits].reshape(2**n, *model.shape)


def _only_temps(model: AbstractModel, temps: np.ndarray) -> Samples:
    """What variational training needs of the data: its temperatures (the states, all down
    here, are ignored)."""
    assert model.spin_values is not None
    states = np.full((len(temps), 1, 2, *model.shape), model.spin_values[0], model.dtype)
    return Samples(
        states=states,
        temps=np.asarray(temps, np.float64),
        model=model.describe(),
        method="none",
        settings={},
        seed=0,
        info={},
        provenance={},
    )


def _kl_q_p(generator: Any, model: AbstractModel, params: Any, temps: np.ndarray) -> np.ndarray:
    states = jnp.asarray(_states(model))
    log_q = np.asarray(
        generator.log_prob_stacked(
            model, params, jnp.broadcast_to(states, (len(temps), *states.shape))
        ),
        np.float64,
    )
    p = enumerate_boltzmann(model, temps)
    return np.sum(np.exp(log_q) * (log_q - np.log(p)), axis=1)


test_fvsbn_conformance = generator_conformance(FVSBN(training="variational", steps=5))


@pytest.mark.parametrize("symmetrize", [False, True])
def test_variational_training_learns_a_chain_exactly(symmetrize: bool) -> None:
    """An open Ising chain is a Markov chain, which a sigmoid belief net represents exactly:
    trained without data, KL(q || p) becomes small, and the estimated F_q equals
    F + T KL / N (KL by enumeration) within its error."""
    model = Ising1D.from_size(6, boundary="free")
    temps = np.asarray([1.5, 2.0, 5.0])
    generator = FVSBN(training="variational", symmetrize=symmetrize)
    trained = generator.fit(model, _only_temps(model, temps), key=jax.random.key(1))
    assert np.all(trained.diverged_step == -1)
    kl = _kl_q_p(generator, model, trained.params, temps)
    assert np.all(kl < 0.02), kl
    draws = trained.generate(20000, key=jax.random.key(2), density=True)
    energy = np.asarray(model.energy(jnp.asarray(draws.states[:, 0])), np.float64)
    per_site = (energy + temps[:, None] * draws.info["log_q"]) / model.n_sites
    F_q = per_site.mean(axis=1)
    err = per_site.std(axis=1, ddof=1) / math.sqrt(per_site.shape[1])
    # As q approaches p, E + T ln q approaches a constant and its spread (err) vanishes; what
    # is left is float32 rounding of ln q (~1e-7 relative, ~1e-6 absolute): a floor to err.
    err = np.hypot(err, FLOAT32_LOG_Q * temps / model.n_sites)
    F = free_energy_exact(model.exact(temps), temps, model.n_sites)
    z = (F_q - (F + temps * kl / model.n_sites)) / err
    assert np.all(np.abs(z) < Z_MAX), z
    # the loss curve is the annealed free energy per step, finite, ending near F_q
    curve = trained.history["free_energy"]
    assert curve.shape == (3, generator.steps) and np.all(np.isfinite(curve))
    np.testing.assert_allclose(curve[:, -50:].mean(axis=1), F_q, atol=0.05)


def test_variational_training_does_not_look_at_the_data() -> None:
    model = Ising1D.from_size(5, boundary="free")
    temps = np.asarray([1.0, 2.0])
    generator = FVSBN(training="variational", steps=20)
    one = generator.fit(model, _only_temps(model, temps), key=jax.random.key(3))
    other = boltzmann_samples(model, temps, 50, key=jax.random.key(9))
    two = generator.fit(model, other, key=jax.random.key(3))
    for a, b in zip(
        jax.tree_util.tree_leaves(one.params), jax.tree_util.tree_leaves(two.params), strict=True
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert one.info["training"] == "variational"


def test_data_training_is_maximum_likelihood() -> None:
    model = Ising1D.from_size(6, boundary="free")
    temps = np.asarray([1.0, 3.0])
    data = boltzmann_samples(model, temps, 4000, key=jax.random.key(4))
    generator = FVSBN(epochs=40)
    trained = generator.fit(model, data, key=jax.random.key(5))
    assert trained.info["training"] == "data"
    kl = _kl_q_p(generator, model, trained.params, temps)
    assert np.all(kl < 0.02), kl


def test_annealing_reaches_beta() -> None:
    rate = anneal_rate(0.3, 1000)
    assert math.isclose(1 - rate**300, 0.999, rel_tol=1e-9)
    assert anneal_rate(0.0, 1000) == 0.0  # beta from the first step


class BlowsUp(FVSBN):
    """A sigmoid belief net whose density turns NaN once a coupling passes 0.5 (a divergence a
    few Adam steps into training, as the couplings grow towards 2/T)."""

    def log_prob_network(self, model: AbstractModel, net: Any, x: jax.Array) -> jax.Array:
        log_q = super().log_prob_network(model, net, x)
        return jnp.where(jnp.max(jnp.abs(jnp.tril(net.weights, -1))) > 0.5, jnp.nan, log_q)


def test_a_diverging_temperature_is_reported_not_trained_on() -> None:
    model = Ising1D.from_size(5, boundary="free")
    temps = np.asarray([1.0, 2.0])
    generator = BlowsUp(training="variational", steps=30, learning_rate=0.1, anneal=0.0)
    trained = generator.fit(model, _only_temps(model, temps), key=jax.random.key(6))
    assert np.all(trained.diverged_step > 0), trained.diverged_step
    # frozen at the last parameters whose step was finite, and never trained further
    assert np.all(np.isfinite(np.asarray(trained.params.weights)))
    assert [r["status"] for r in trained.failure_records()] == ["diverged", "diverged"]
    with pytest.raises(spinbench.TrainingDiverged, match="diverged"):
        trained.raise_if_diverged()


@pytest.mark.parametrize("generator", [VAE, DenseVAE, spinbench.generators.AVB])
def test_latent_variable_generators_say_why_they_train_on_data_only(generator: Any) -> None:
    with pytest.raises(OptionError, match="gives only a bound on it"):
        generator.from_options(training="variational")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"training": "kl"}, "training must be one of data, variational"),
        ({"anneal": -0.1}, "anneal must be"),
        ({"anneal": 1.5}, r"anneal must be in \[0, 1\)"),
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"symmetrize": "yes"}, "symmetrize must be true or false"),
    ],
)
def test_invalid_options_are_clear_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(OptionError, match=message):
        FVSBN.from_options(**options)


# ---------------------------------------------------------------------------- VAN (the plugin)
def _van() -> Any:
    return pytest.importorskip("spinbench_van", reason="the VAN plugin is not installed").VAN


def _relative_free_energy_error(size: str, T: float, **options: Any) -> tuple[float, float]:
    model = Ising2D.from_size(size)
    temps = np.asarray([T])
    generator = _van()(training="variational", symmetrize=True, **options)
    trained = generator.fit(model, _only_temps(model, temps), key=jax.random.key(7))
    assert np.all(trained.diverged_step == -1)
    draws = trained.generate(10000, key=jax.random.key(8), density=True)
    energy = np.asarray(model.energy(jnp.asarray(draws.states[0, 0])), np.float64)
    per_site = (energy + T * draws.info["log_q"][0]) / model.n_sites
    F = free_energy_exact(model.exact(temps), temps, model.n_sites)[0]
    return float((per_site.mean() - F) / abs(F)), float(per_site.std(ddof=1) / 100 / abs(F))


@pytest.mark.slow
@pytest.mark.parametrize("size", ["4x4", "8x8"])
def test_van_reaches_a_relative_free_energy_error_below_1e_3_at_T_3(size: str) -> None:
    relative, error = _relative_free_energy_error(
        size, 3.0, steps=600, batch_size=256, radius=2, width=16, depth=1, learning_rate=3e-3
    )
    assert relative > -Z_MAX * error  # a bound: never below the exact F beyond noise
    assert relative < 1e-3, (relative, error)


@pytest.mark.slow
def test_van_reaches_a_relative_free_energy_error_below_1e_2_at_T_c_on_16x16() -> None:
    relative, error = _relative_free_energy_error(
        "16x16",
        2.269185314,
        steps=400,
        batch_size=128,
        radius=2,
        width=16,
        depth=1,
        learning_rate=2e-3,
    )
    assert relative > -Z_MAX * error
    assert relative < 1e-2, (relative, error)


@pytest.mark.slow
def test_a_grid_with_variational_van_and_its_corrections(tmp_path: Path) -> None:
    """The runner trains VAN without data; its raw, +reweight and +mcmc rows and the bound."""
    _van()
    grid = """
seed = 3
samples = 2000
[reference]
sampler = "metropolis"
chains = 8
warmup = 200
sweeps = 2000
every = 4
[[models]]
name = "ising2d"
size = "4"
temps = [2.0, 3.0]
methods = ["metropolis", "van"]
[[methods]]
name = "metropolis"
[[methods]]
name = "van"
training = "variational"
steps = 300
batch_size = 128
radius = 2
width = 16
depth = 1
symmetrize = true
corrections = ["reweight", "mcmc"]
"""
    grid_file = tmp_path / "grid.toml"
    grid_file.write_text(grid)
    table = Runner(load_grid(grid_file), tmp_path / "run", progress=False).run()
    assert set(table["status"]) <= {"ok"}, table[table["status"] != "ok"][["method", "reason"]]
    methods = set(table["method"])
    assert {"van", "van+reweight", "van+mcmc", "metropolis"} <= methods
    corrected = table[table["method"].isin(["van+reweight", "van+mcmc"])]
    energy = corrected[corrected["observable"] == "energy"]
    assert len(energy) == 4 and np.all(np.abs(energy["z"]) < Z_MAX), energy[["method", "T", "z"]]
    bound = table[(table["method"] == "van") & (table["observable"] == "free_energy")]
    assert len(bound) == 2 and np.all(bound["estimate"] > bound["exact"] - Z_MAX * bound["stderr"])


@pytest.mark.parametrize(("preset", "sizes"), [("critical", {16}), ("critical-large", {32, 64})])
def test_the_critical_presets_are_valid_plans(preset: str, sizes: set[int]) -> None:
    """Both presets plan VAN trained without data (with its corrections), Wolff, Metropolis
    (checkerboard) and the VAE around T_c; the CPU one stays at 16x16."""
    from spinbench.runner import load_preset

    spec = load_preset(preset)
    plan = make_plan(spec)
    assert {plan.model(cell).shape[0] for cell in plan.cells if cell.method} == sizes
    methods = {m.name: m for m in spec.methods}
    assert set(methods) == {"metropolis", "wolff", "van", "vae"}
    assert methods["van"].options["training"] == "variational"
    assert set(methods["van"].corrections) == {"reweight", "mcmc"}
    assert methods["vae"].corrections == ("mcmc",)
    assert methods["metropolis"].options["update"] == "checkerboard"
    for model in spec.models:
        assert min(model.temps) == 2.0 and max(model.temps) == 2.6
        assert any(abs(T - 2.269185314) < 1e-9 for T in model.temps)
