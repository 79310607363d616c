"""Neural generators (conv VAE, dense VAE, AVB) and their shared training loop.

Training data are exact Boltzmann samples, so a test measures the generator and nothing else:
a free Ising chain's bonds s_i s_{i+1} are independent, +1 with probability
e^{βJ} / (2 cosh βJ), and a free XY chain's angle differences are independent von Mises(0, βJ)
variables. Trained generators are shared per module (compilation dominates the cost on a CPU).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from spinbench import LoadError, OptionError, Samples, get_generator
from spinbench.generators import (
    AVB,
    VAE,
    AbstractGenerator,
    AbstractObjective,
    BoundaryConv,
    ConvStack,
    DenseVAE,
    TrainConfig,
    TrainedGenerator,
    TrainingDiverged,
    TransposedConvStack,
    VonMisesLikelihood,
    diverged_mask,
    initialise,
    train,
)
from spinbench.models import XY1D, AbstractModel, Ising1D, Ising2D

N_TRAIN = 10_000  # configurations per temperature, as in the paper
HIGH_T = 4.0
TEMPS = np.array([0.5, HIGH_T])

#: Options of the shared trained generators: the paper's defaults, a short training.
#: (The CLI test reuses the dense VAE's options, so it reuses its compiled program.)
SHORT = {
    "vae": {"epochs": 40},
    "dense-vae": {"epochs": 40},
    "avb": {"epochs": 60},
}

#: |E_gen - E_exact| per site at T = 4 after the short training. Exact: -5 tanh(1/4) / 6 =
#: -0.2041; the sampling error of 10,000 generated (and 10,000 training) configurations is
#: 0.004 per site, so these bound the systematic error of the network. Measured over 4 seeds
#: on a CPU: at most 0.033 (vae), 0.02 (dense-vae) and 0.056 (avb, whose adversarial KL
#: estimate keeps fluctuating: the paper's "more difficult to train").
ENERGY_TOLERANCE = {"vae": 0.05, "dense-vae": 0.05, "avb": 0.1}


def ising_chain_exact(n: int, temps: np.ndarray, m: int, *, seed: int) -> np.ndarray:
    """``m`` exact Boltzmann configurations of a free Ising chain per T: (temps, 1, m, n)."""
    rng = np.random.default_rng(seed)
    out = []
    for T in temps:
        aligned = math.exp(1.0 / T) / (2.0 * math.cosh(1.0 / T))
        first = rng.choice(np.array([-1, 1]), size=(m, 1))
        bonds = np.where(rng.random((m, n - 1)) < aligned, 1, -1)
        out.append(np.concatenate([first, first * np.cumprod(bonds, axis=1)], axis=1))
    return np.stack(out)[:, None].astype(np.int8)


def xy_chain_exact(n: int, temps: np.ndarray, m: int, *, seed: int) -> np.ndarray:
    """``m`` exact Boltzmann configurations of a free XY chain per T: (temps, 1, m, n)."""
    rng = np.random.default_rng(seed)
    out = []
    for T in temps:
        first = rng.uniform(-np.pi, np.pi, size=(m, 1))
        steps = rng.vonmises(0.0, 1.0 / T, size=(m, n - 1))
        theta = np.concatenate([first, first + np.cumsum(steps, axis=1)], axis=1)
        out.append(np.mod(theta + np.pi, 2 * np.pi) - np.pi)
    return np.stack(out)[:, None].astype(np.float32)


def as_samples(model: Any, states: np.ndarray, temps: np.ndarray) -> Samples:
    return Samples(states, np.asarray(temps, np.float64), model.describe(), "exact")


def energy_per_site(model: Any, samples: Samples) -> np.ndarray:
    return np.asarray(model.energy(samples.states)).mean(axis=(1, 2)) / model.n_sites


def leaves(tree: PyTree) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(eqx.filter(tree, eqx.is_array))]


@pytest.fixture(scope="module")
def ising6() -> Ising1D:
    return Ising1D.from_size(6)


@pytest.fixture(scope="module")
def ising6_data(ising6: Ising1D) -> Samples:
    return as_samples(ising6, ising_chain_exact(6, TEMPS, N_TRAIN, seed=0), TEMPS)


@pytest.fixture(scope="module", params=list(SHORT))
def trained(request: pytest.FixtureRequest, ising6: Ising1D, ising6_data: Samples) -> Any:
    generator = get_generator(request.param).from_options(**SHORT[request.param])  # type: ignore[attr-defined]
    return generator.fit(ising6, ising6_data, key=jax.random.key(0))


# ---------------------------------------------------------------------------- must-show
def test_energy_near_exact_at_high_temperature(trained: TrainedGenerator) -> None:
    samples = trained.generate(key=jax.random.key(1))
    assert samples.states.shape == (len(TEMPS), 1, 10_000, 6)
    exact = -5 * math.tanh(1 / HIGH_T) / 6
    energy = energy_per_site(trained.model, samples)[-1]
    tolerance = ENERGY_TOLERANCE[trained.generator.name]
    assert abs(energy - exact) < tolerance, (trained.generator.name, energy, exact)


def test_generated_spins_valid_at_every_temperature(trained: TrainedGenerator) -> None:
    samples = trained.generate(500, key=jax.random.key(2), seed=7)
    assert samples.states.dtype == np.int8
    assert set(np.unique(samples.states)) <= {-1, 1}
    assert samples.method == trained.generator.name
    assert samples.seed == 7
    assert samples.settings == trained.generator.settings()
    np.testing.assert_array_equal(samples.info["diverged_step"], [-1, -1])
    assert not diverged_mask(samples).any()
    assert np.isfinite(trained.history["loss"]).all()
    assert trained.history["loss"].shape == (len(TEMPS), SHORT[trained.generator.name]["epochs"])


def test_save_load_round_trip(trained: TrainedGenerator, tmp_path: Path) -> None:
    trained.save(tmp_path / "gen")
    template = type(trained.generator).from_options(**trained.generator.settings())
    loaded = TrainedGenerator.load(tmp_path / "gen", generator=template, model=trained.model)
    assert loaded.generator == trained.generator
    assert loaded.model == trained.model
    np.testing.assert_array_equal(loaded.temps, trained.temps)
    np.testing.assert_array_equal(loaded.diverged_step, trained.diverged_step)
    for a, b in zip(leaves(loaded.params), leaves(trained.params), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.history["loss"], trained.history["loss"])
    key = jax.random.key(3)
    np.testing.assert_array_equal(
        loaded.generate(500, key=key).states, trained.generate(500, key=key).states
    )
    # the saved samples use the samplers' format and read back identically
    samples = trained.generate(500, key=key)
    samples.save(tmp_path / "samples")
    again = Samples.load(tmp_path / "samples")
    np.testing.assert_array_equal(again.states, samples.states)
    np.testing.assert_array_equal(again.info["diverged_step"], [-1, -1])


def test_training_reproducible_from_seed(
    trained: TrainedGenerator, ising6: Ising1D, ising6_data: Samples
) -> None:
    again = trained.generator.fit(ising6, ising6_data, key=jax.random.key(0))
    for a, b in zip(leaves(again.params), leaves(trained.params), strict=True):
        np.testing.assert_array_equal(a, b)
    key = jax.random.key(4)
    np.testing.assert_array_equal(
        again.generate(500, key=key).states, trained.generate(500, key=key).states
    )
    different = trained.generate(500, key=jax.random.key(5)).states
    assert not np.array_equal(different, trained.generate(500, key=key).states)


class PoisonedObjective(AbstractObjective):
    """``inner``, except that at global step ``at_step`` a minibatch for which ``hit`` is true
    is replaced by NaN: that temperature's loss, gradients and new parameters are all NaN, as
    a numerical blow-up would make them.

    The training loop passes the fractional epoch ``step / steps_per_epoch``; the global step
    is recovered from it. ``hit`` picks the temperature by its data (vmapped, the objective
    does not see a temperature index).
    """

    inner: AbstractObjective
    at_step: int = eqx.field(static=True)
    steps_per_epoch: int = eqx.field(static=True)
    hit: Callable[[Array], Array] = eqx.field(static=True)

    def init_state(self, params: PyTree) -> PyTree:
        return self.inner.init_state(params)

    def step(
        self,
        params: PyTree,
        opt_state: PyTree,
        batch: Float[Array, "batch ..."],
        *,
        key: PRNGKeyArray,
        epoch: Float[Array, ""],
    ) -> tuple[PyTree, PyTree, dict[str, Float[Array, ""]]]:
        step = jnp.round(epoch * self.steps_per_epoch).astype(jnp.int32)
        poisoned = (step == self.at_step) & self.hit(batch)
        batch = jnp.where(poisoned, jnp.nan, batch)
        return self.inner.step(params, opt_state, batch, key=key, epoch=epoch)


def all_spins_up(batch: Array) -> Array:
    """True for a minibatch of encoded Ising configurations (±1) with every spin up."""
    return jnp.all(batch == 1.0)


class DivergingDenseVAE(DenseVAE):
    """The dense VAE, trained on 1000 configurations per temperature in minibatches of 500 (2
    steps per epoch), whose training blows up at global step 3 (epoch 1) for the temperature
    whose data are all spins up."""

    def objective(self, model: AbstractModel) -> AbstractObjective:
        return PoisonedObjective(super().objective(model), 3, 2, all_spins_up)


def test_nan_injected_into_training_is_reported(ising6: Ising1D) -> None:
    temps = np.array([1.0, 2.0, 4.0])
    states = ising_chain_exact(6, temps, 1000, seed=1)
    states[1] = 1  # temperature 1 (T = 2) is recognisable by its data: it is the one poisoned
    data = as_samples(ising6, states, temps)
    # (The Bernoulli likelihood, beyond the paper, is exercised here too: one compilation.)
    generator = DivergingDenseVAE(epochs=3, likelihood="bernoulli")
    assert generator.settings() == DenseVAE(epochs=3, likelihood="bernoulli").settings()
    trained = generator.fit(ising6, data, key=jax.random.key(0))
    np.testing.assert_array_equal(trained.diverged_step, [-1, 3, -1])
    np.testing.assert_array_equal(trained.diverged, [False, True, False])
    assert trained.info["steps_run"] == [6, 3, 6]
    for leaf in leaves(trained.params):  # frozen at the last finite step: no NaN anywhere
        assert np.isfinite(leaf).all()
    loss = trained.history["loss"]
    assert np.isfinite(loss[[0, 2]]).all()
    assert np.isfinite(loss[1, :2]).all() and np.isnan(loss[1, 2])
    with pytest.raises(TrainingDiverged, match=r"T=2 at step 3"):
        trained.raise_if_diverged()
    (record,) = trained.failure_records()
    assert record["T"] == 2.0 and record["step"] == 3 and record["status"] == "diverged"
    assert "T=2, step 3 (epoch 1)" in record["reason"]
    # generation: marked by default, or dropped, or refused
    marked = trained.generate(500, key=jax.random.key(0))
    assert set(np.unique(marked.states)) <= {-1, 1}
    np.testing.assert_array_equal(diverged_mask(marked), [False, True, False])
    assert marked.provenance["diverged"][0]["step"] == 3
    dropped = trained.generate(500, key=jax.random.key(0), diverged="drop")
    np.testing.assert_array_equal(dropped.temps, [1.0, 4.0])
    np.testing.assert_array_equal(dropped.states, marked.states[[0, 2]])
    with pytest.raises(TrainingDiverged):
        trained.generate(500, key=jax.random.key(0), diverged="raise")


# ---------------------------------------------------------------------------- XY and 2D
XY_GENERATORS = [
    pytest.param(VAE(epochs=2, likelihood="von-mises"), id="vae-von-mises"),
    pytest.param(DenseVAE(epochs=2), id="dense-vae"),
    pytest.param(VAE(epochs=2), id="vae", marks=pytest.mark.slow),
    pytest.param(AVB(epochs=2), id="avb", marks=pytest.mark.slow),
    pytest.param(AVB(epochs=2, architecture="conv"), id="avb-conv", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("generator", XY_GENERATORS)
def test_xy_chain_shapes_and_angles(generator: AbstractGenerator) -> None:
    model = XY1D.from_size(6)
    temps = np.array([0.5, 2.0])
    data = as_samples(model, xy_chain_exact(6, temps, 1000, seed=2), temps)
    trained = generator.fit(model, data, key=jax.random.key(0))
    assert not trained.diverged.any()
    samples = trained.generate(500, key=jax.random.key(1))
    states = samples.states
    assert states.shape == (2, 1, 500, 6) and states.dtype == np.float32
    assert np.all(states >= -np.pi) and np.all(states < np.pi)
    assert np.unique(states).size > 1000  # continuous angles, not a few fixed values


def test_ising2d_conv_vae_generates_valid_spins() -> None:
    """Untrained (training on 2D is the slow test below): shapes and spin values."""
    model = Ising2D.from_size(4)
    generator = VAE()
    params = generator.init(model, 2, key=jax.random.key(0))
    untrained = TrainedGenerator(
        generator, model, np.array([2.0, 3.0]), params, {}, np.array([-1, -1])
    )
    samples = untrained.generate(500, key=jax.random.key(2))
    assert samples.states.shape == (2, 1, 500, 4, 4) and samples.states.dtype == np.int8
    assert set(np.unique(samples.states)) == {-1, 1}


@pytest.mark.slow
@pytest.mark.parametrize(
    "generator",
    [VAE(steps=2, batch_size=100), AVB(steps=2, batch_size=100, architecture="conv")],
    ids=["vae", "avb-conv"],
)
def test_ising2d_training_shapes_and_spins(generator: AbstractGenerator) -> None:
    model = Ising2D.from_size(4)
    temps = np.array([2.0, 3.0])
    states = np.asarray(model.random_states((2, 1, 200), key=jax.random.key(0)))
    trained = generator.fit(model, as_samples(model, states, temps), key=jax.random.key(1))
    assert trained.info["steps_run"] == [2, 2]
    samples = trained.generate(300, key=jax.random.key(2))
    assert samples.states.shape == (2, 1, 300, 4, 4) and samples.states.dtype == np.int8
    assert set(np.unique(samples.states)) <= {-1, 1}


# ---------------------------------------------------------------------------- conv layers
def test_circular_padding_is_translation_equivariant() -> None:
    """On a periodic lattice the conv encoder commutes with translations (a shift by 2 sites
    through the stride-2 stack is a shift by 1 of its output); the transposed decoder maps a
    shift by 1 to a shift by 2. Zero padding (free boundaries) breaks this."""
    periodic = Ising2D.from_size(4)

    def shift(a: Array, by: tuple[int, int]) -> Array:
        return jnp.roll(a, by, axis=(-2, -1))

    def gap(layer: Any, x: Array, by: tuple[int, int], out_by: tuple[int, int]) -> Array:
        return jnp.max(jnp.abs(layer(shift(x, by)) - shift(layer(x), out_by)))

    @eqx.filter_jit
    def gaps(key: PRNGKeyArray) -> Array:  # one compilation for the whole check
        layers = initialise(
            eqx.filter_eval_shape(
                lambda: (
                    ConvStack(periodic, 1, 4, key=jax.random.key(0)),
                    TransposedConvStack(periodic, 4, 1, key=jax.random.key(0)),
                    BoundaryConv(2, 1, 4, "free", key=jax.random.key(0)),
                )
            ),
            key=key,
        )
        encoder, decoder, free = layers
        x = jax.random.normal(jax.random.key(1), (1, 4, 4))
        h = jax.random.normal(jax.random.key(2), (8, 2, 2))
        return jnp.stack(
            [
                gap(encoder.first, x, (1, 3), (1, 3)),
                gap(encoder, x, (2, 0), (1, 0)),
                gap(decoder, h, (0, 1), (0, 2)),
                gap(free, x, (1, 3), (1, 3)),  # zero padding: not equivariant
            ]
        )

    equivariant, free = np.split(np.asarray(gaps(jax.random.key(0))), [3])
    assert (equivariant < 1e-6).all() and free[0] > 1e-3


def test_transposed_conv_equals_zero_insertion_conv() -> None:
    """The phase-by-phase transposed convolution is the stride-1 convolution of the input with
    zeros inserted between sites (the definition), in 1D and 2D, for both boundaries."""

    @eqx.filter_jit
    def gaps(key: PRNGKeyArray) -> Array:  # one compilation for the whole check
        out = []
        for ndim in (1, 2):
            for boundary in ("periodic", "free"):
                up, plain = initialise(
                    eqx.filter_eval_shape(
                        lambda ndim=ndim, boundary=boundary: (
                            BoundaryConv(ndim, 3, 5, boundary, upsample=2, key=key),
                            BoundaryConv(ndim, 3, 5, boundary, key=key),
                        )
                    ),
                    key=key,
                )
                plain = eqx.tree_at(lambda m: (m.weight, m.bias), plain, (up.weight, up.bias))
                x = jax.random.normal(jax.random.key(1), (3,) + (3,) * ndim)
                zeros = jnp.zeros((3,) + (6,) * ndim)
                inserted = zeros.at[(slice(None),) + (slice(None, None, 2),) * ndim].set(x)
                out.append(jnp.max(jnp.abs(up(x) - plain(inserted))))
        return jnp.stack(out)

    assert (np.asarray(gaps(jax.random.key(0))) < 1e-5).all()


def test_gather_and_scatter_forms_agree() -> None:
    """The two ways BoundaryConv computes a convolution (stacked input windows times one
    weight, or per-site products shifted into place) are the same linear map, values and
    gradients, for every stride, upsampling, boundary and dimension the networks use."""
    cases = [
        (ndim, boundary, stride, upsample)
        for ndim in (1, 2)
        for boundary in ("periodic", "free")
        for stride, upsample in ((1, 1), (2, 1), (1, 2))
    ]

    @eqx.filter_jit
    def gaps(key: PRNGKeyArray) -> Array:  # one compilation for the whole check
        out = []
        for ndim, boundary, stride, upsample in cases:
            layer = initialise(
                eqx.filter_eval_shape(
                    lambda ndim=ndim, boundary=boundary, stride=stride, upsample=upsample: (
                        BoundaryConv(
                            ndim, 3, 5, boundary, stride=stride, upsample=upsample, key=key
                        )
                    )
                ),
                key=key,
            )
            x = jax.random.normal(jax.random.key(1), (6,) * ndim + (3,))

            def value_and_grad(method: str, layer: BoundaryConv = layer, x: Array = x) -> Array:
                def loss(layer: BoundaryConv, x: Array) -> Array:
                    return jnp.sum(jnp.sin(layer.channels_last(x, method=method)))

                (dw, dx) = jax.grad(loss, argnums=(0, 1))(layer, x)
                y = layer.channels_last(x, method=method)
                return jnp.concatenate([y.ravel(), dw.weight.ravel(), dw.bias.ravel(), dx.ravel()])

            gather, scatter = value_and_grad("gather"), value_and_grad("scatter")
            out.append(jnp.max(jnp.abs(gather - scatter)) / jnp.max(jnp.abs(gather)))
        return jnp.stack(out)

    # float32 sums in different orders: relative gaps ~1e-7; a misplaced tap gives ~1
    assert (np.asarray(gaps(jax.random.key(0))) < 1e-5).all()


def test_von_mises_sampler_matches_moments() -> None:
    """Angles drawn by the von Mises likelihood from natural parameters κ (cos μ, sin μ), with
    μ = 3 and κ = 2, have the distribution's mean direction and concentration."""
    likelihood = VonMisesLikelihood(None, "sample")

    @jax.jit
    def moments(key: PRNGKeyArray) -> Array:
        natural = jnp.broadcast_to(2.0 * jnp.array([jnp.cos(3.0), jnp.sin(3.0)]), (20000, 2))
        theta = likelihood.to_spins(natural, key=key, dtype=jnp.float32)
        inside = jnp.all(theta >= -jnp.pi) & jnp.all(theta < jnp.pi)
        return jnp.stack([inside, jnp.mean(jnp.cos(theta - 3.0)), jnp.mean(jnp.sin(theta - 3.0))])

    inside, mean_cos, mean_sin = np.asarray(moments(jax.random.key(0)))
    assert inside
    # E[cos(theta - mu)] = I1(k) / I0(k) = 0.6978 for k = 2, E[sin] = 0; stderr about 0.004
    assert abs(mean_cos - 0.6978) < 0.02 and abs(mean_sin) < 0.02


# ---------------------------------------------------------------------------- options
def test_registered_by_name_with_paper_defaults() -> None:
    assert get_generator("vae") is VAE
    assert get_generator("dense-vae") is DenseVAE
    assert get_generator("avb") is AVB
    vae, avb = VAE(), AVB()
    assert (vae.batch_size, vae.learning_rate, vae.likelihood) == (500, 1e-3, "gaussian")
    assert (avb.batch_size, avb.learning_rate, avb.beta1, avb.architecture) == (
        500,
        2e-3,
        0.4,
        "dense",
    )
    assert vae.kl_warmup_epochs == 0 and vae.patience is None


@pytest.mark.parametrize(
    ("cls", "options", "message"),
    [
        (VAE, {"batch_size": 0}, "batch_size must be a positive integer"),
        (VAE, {"learning_rate": float("inf")}, "learning_rate must be a finite positive"),
        (DenseVAE, {"likelihood": "poisson"}, "likelihood must be one of"),
        (AVB, {"architecture": "resnet"}, "architecture must be one of"),
        (AVB, {"beta1": 1.0}, r"beta1 must be in \[0, 1\)"),
        (VAE, {"epoch": 3}, "unknown option"),
        (VAE, {"_private": (0, 1)}, "unknown option"),
    ],
)
def test_invalid_options_are_clear_errors(
    cls: type[AbstractGenerator], options: dict[str, Any], message: str
) -> None:
    with pytest.raises(OptionError, match=message):
        cls.from_options(**options)


def test_supports_names_the_reason() -> None:
    xy, ising = XY1D.from_size(6), Ising1D.from_size(6)
    assert VAE().supports(xy) is None and AVB().supports(ising) is None
    assert "angles" in (VAE(likelihood="bernoulli").supports(xy) or "")
    assert "discrete" in (DenseVAE(likelihood="von-mises").supports(ising) or "")

    class Potts3:
        name = "potts3"
        spin_values = (0, 1, 2)

    assert "two-valued" in (DenseVAE().supports(Potts3()) or "")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cannot learn"):
        VAE(likelihood="bernoulli").fit(
            xy, as_samples(xy, np.zeros((1, 1, 10, 6)), [1.0]), key=jax.random.key(0)
        )  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- training loop
class _Mean(AbstractObjective):
    """A toy objective: fit a vector to the data mean with SGD (fast to compile)."""

    learning_rate: float = eqx.field(static=True, default=0.1)

    def init_state(self, params: PyTree) -> PyTree:
        return optax.sgd(self.learning_rate).init(params)

    def step(
        self,
        params: PyTree,
        opt_state: PyTree,
        batch: Float[Array, "batch ..."],
        *,
        key: PRNGKeyArray,
        epoch: Float[Array, ""],
    ) -> tuple[PyTree, PyTree, dict[str, Float[Array, ""]]]:
        def loss_fn(w: Array) -> Array:
            return jnp.mean(jnp.sum((batch - w) ** 2, axis=-1))

        loss, grad = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = optax.sgd(self.learning_rate).update(grad, opt_state)
        return optax.apply_updates(params, updates), opt_state, {"loss": loss, "epoch": epoch}


def _toy_data() -> Array:
    centres = jnp.array([[-1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    return centres[:, None, :] + 0.1 * jax.random.normal(jax.random.key(0), (3, 100, 2))


def test_training_loop_trains_every_temperature_independently() -> None:
    data = _toy_data()
    result = train(
        _Mean(),
        jnp.zeros((3, 2)),
        data,
        TrainConfig(epochs=10, batch_size=20),
        key=jax.random.key(0),
    )
    np.testing.assert_allclose(result.params, np.asarray(data.mean(axis=1)), atol=0.05)
    assert result.steps_per_epoch == 5 and result.epochs_run == 10
    assert result.history["loss"].shape == (3, 10)
    np.testing.assert_allclose(result.history["epoch"][0], np.arange(10) + 0.4)  # mean of i/5
    np.testing.assert_array_equal(result.steps_run, [50, 50, 50])


def centred_at_two(batch: Array) -> Array:
    """True for a minibatch of the toy data's temperature 2 (the points around (2, 2))."""
    return jnp.all(batch[:, 0] > 1.0)


def test_training_loop_steps_option_and_divergence() -> None:
    """``steps`` overrides ``epochs``; a temperature that blows up at step 7 stops there with
    its last finite parameters, and the others run every step."""
    data = _toy_data()
    config = TrainConfig(epochs=99, batch_size=20, steps=12)
    poisoned = PoisonedObjective(_Mean(), 7, 5, centred_at_two)  # 100 points: 5 steps/epoch
    result = train(poisoned, jnp.zeros((3, 2)), data, config, key=jax.random.key(0))
    np.testing.assert_array_equal(result.steps_run, [12, 12, 7])
    np.testing.assert_array_equal(result.diverged_step, [-1, -1, 7])
    assert result.epochs_run == 3  # 12 steps of 5 per epoch
    assert np.isfinite(np.asarray(result.params)).all()


def test_training_loop_early_stopping_per_temperature() -> None:
    data = _toy_data()
    # temperature 0 starts at its optimum (no improvement beyond min_delta): it stops first
    start = jnp.array([[-1.0, 0.0], [5.0, 5.0], [5.0, 5.0]])
    config = TrainConfig(epochs=40, batch_size=20, patience=3, min_delta=1e-3, smoothing=0.0)
    result = train(_Mean(learning_rate=0.01), start, data, config, key=jax.random.key(0))
    stopped = result.stopped_epoch
    assert stopped[0] == 3
    assert (stopped[1:] == -1).all() or (stopped[1:] > 3).all()
    assert np.isnan(result.history["loss"][0, 4:]).all()
    assert result.steps_run[0] == 4 * 5


def test_training_loop_is_reproducible() -> None:
    data = _toy_data()
    config = TrainConfig(epochs=3, batch_size=7)
    a = train(_Mean(), jnp.zeros((3, 2)), data, config, key=jax.random.key(1))
    b = train(_Mean(), jnp.zeros((3, 2)), data, config, key=jax.random.key(1))
    np.testing.assert_array_equal(a.params, b.params)
    np.testing.assert_array_equal(a.history["loss"], b.history["loss"])
    c = train(_Mean(), jnp.zeros((3, 2)), data, config, key=jax.random.key(2))
    assert not np.array_equal(a.history["loss"], c.history["loss"])


class _Unregistered(VAE):
    """Not registered: loading needs no registry, the caller gives the template."""

    name: ClassVar[str] = "not-registered"


def test_load_reads_into_the_callers_template_and_refuses_another(
    tmp_path: Path, ising6: Ising1D
) -> None:
    generator = _Unregistered(epochs=1)
    params = generator.init(ising6, 1, key=jax.random.key(0))
    trained = TrainedGenerator(
        generator, ising6, np.array([1.0]), params, {"loss": np.zeros((1, 1))}, np.array([-1])
    )
    trained.save(tmp_path / "g")
    loaded = TrainedGenerator.load(tmp_path / "g", generator=_Unregistered(epochs=1), model=ising6)
    for a, b in zip(leaves(loaded.params), leaves(params), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(LoadError, match=r"holds not-registered .* cannot be loaded as vae"):
        TrainedGenerator.load(tmp_path / "g", generator=VAE(epochs=1), model=ising6)
    with pytest.raises(LoadError, match=r"'epochs': 1\b.*cannot be loaded .*'epochs': 2\b"):
        TrainedGenerator.load(tmp_path / "g", generator=_Unregistered(epochs=2), model=ising6)
    other = Ising1D.from_size(6, h=0.5)
    with pytest.raises(LoadError, match=r"'h': 0\.5"):
        TrainedGenerator.load(tmp_path / "g", generator=_Unregistered(epochs=1), model=other)
    with pytest.raises(LoadError, match="does not hold a trained generator"):
        TrainedGenerator.load(tmp_path / "missing", generator=generator, model=ising6)
