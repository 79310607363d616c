"""Neural samplers, corrected: importance reweighting, neural MCMC and the variational free energy.

A generator with a density (:meth:`~spinbench.AbstractGenerator.density_problem` is None) gives
each configuration it draws a log density ``log q`` (for a latent-variable generator the
augmented one, ``ln p(z) + ln p(x|z) - ln r(z|x)``). Then ``log w = -E(x)/T - log q`` is the log
of an exact importance weight for the Boltzmann distribution ``exp(-E/T)/Z``:

* **reweighting** (:func:`reweighted`): self-normalised importance sampling, every observable
  ``sum w f / sum w`` with a delta-method error bar, the Kish effective sample size
  ``(sum w)^2 / sum w^2`` and ``ln Z ≈ ln mean(w)``, hence ``F/N = -T ln Z / N``
  (Nicoli et al., PRE 101, 023304 (2020));
* **neural MCMC** (:class:`NeuralMCMC`): a Metropolised independence sampler whose proposals are
  the generator's draws, accepted with ``min(1, w'/w)``: asymptotically exact for any proposal
  that covers the Boltzmann distribution, however poor, with an autocorrelation the chain's
  τ_int measures (Białas, Korcyl & Stebel, arXiv:2111.10189);
* the **variational free energy** (:func:`variational_free_energy`):
  ``F_q = <E + T log q>_q`` per site, an upper bound on the exact F with
  ``F_q - F = T KL(q || p) / N`` (Wu, Wang & Zhang, PRL 122, 080602 (2019)); for latent
  generators the joint (augmented) form, a bound too.

Rows of the corrections carry the method name with ``+reweight`` or ``+mcmc`` appended.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, PRNGKeyArray, PyTree
from scipy.special import logsumexp

from . import stats
from ._analysis import measure, records_of
from ._errors import UnsupportedModelError
from ._grid import CORRECTIONS
from ._samples import Samples
from .exact import ExactResult
from .generators import AbstractGenerator, TrainedGenerator
from .models import AbstractModel
from .samplers import AbstractChainSampler, as_count

__all__ = [
    "CORRECTIONS",
    "NeuralMCMC",
    "NeuralMCMCState",
    "ensure_density",
    "free_energy_exact",
    "log_weights",
    "reweighted",
    "variational_free_energy",
]


def log_weights(model: AbstractModel, samples: Samples) -> np.ndarray:
    """``log w = -E/T - log q`` ``(temps, n)`` of a generator's draws (``info["log_q"]``)."""
    log_q = np.asarray(samples.info["log_q"], np.float64)
    energy = measure(model, samples.states)["energy"].reshape(len(samples.temps), -1)
    temps = np.asarray(samples.temps, np.float64)[:, None]
    return -energy * model.n_sites / temps - log_q


def _normalised(log_w: np.ndarray) -> np.ndarray:
    w = np.exp(log_w - log_w.max(axis=-1, keepdims=True))
    return w / w.sum(axis=-1, keepdims=True)


def _weighted(p: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Self-normalised mean and delta-method stderr of ``values`` ``(temps, n, *extra)`` with
    normalised weights ``p`` ``(temps, n)``."""
    weights = p.reshape(*p.shape, *([1] * (values.ndim - 2)))
    mean = np.sum(weights * values, axis=1)
    variance = np.sum(weights**2 * (values - mean[:, None]) ** 2, axis=1)
    return mean, np.sqrt(variance)


def _estimate(mean: np.ndarray, stderr: np.ndarray, ess: np.ndarray, n: int) -> stats.Estimate:
    shape = mean.shape
    kish = np.broadcast_to(ess.reshape(-1, *([1] * (len(shape) - 1))), shape)
    return stats.Estimate(
        estimate=mean,
        stderr=stderr,
        tau_int=np.full(shape, 0.5),  # independent draws
        ess=np.array(kish, np.float64),
        rhat=np.full(shape, np.nan),
        n_samples=n,
        method="reweight",
    )


def free_energy_exact(exact: ExactResult | None, temps: np.ndarray, n_sites: int) -> np.ndarray:
    """The exact free energy per site ``-T ln Z / N`` ``(temps,)`` (NaN where unknown)."""
    if exact is None or exact.ln_z is None:
        return np.full(len(temps), np.nan)
    return -np.asarray(temps, np.float64) * np.asarray(exact.ln_z, np.float64) / n_sites


def reweighted(
    model: AbstractModel, samples: Samples, exact: ExactResult | None = None
) -> list[dict[str, Any]]:
    """Records of the self-normalised importance-sampling estimates of a generator's draws
    (with ``info["log_q"]``): every observable, the heat capacity (delta method on the first
    two energy moments) and ``free_energy`` (``-T ln mean(w) / N``); ``ess`` is Kish's and
    ``ess_fraction`` its share of the draws."""
    temps = np.asarray(samples.temps, np.float64)
    log_w = log_weights(model, samples)
    n = log_w.shape[1]
    p = _normalised(log_w)
    kish = 1.0 / np.sum(p**2, axis=1)
    observed = {
        name: values.reshape(len(temps), n, *values.shape[3:])
        for name, values in measure(model, samples.states).items()
    }
    estimates: dict[str, stats.Estimate] = {}
    for name, values in observed.items():
        estimates[name] = _estimate(*_weighted(p, values), kish, n)
    e = observed["energy"]
    moments = np.stack([e, e**2], axis=-1)  # (temps, n, 2)
    mean, _ = _weighted(p, moments)
    centred = moments - mean[:, None]
    covariance = np.einsum("tn,tni,tnj->tij", p**2, centred, centred)
    scale = model.n_sites / temps**2
    gradient = np.stack([-2.0 * mean[:, 0], np.ones(len(temps))], axis=-1) * scale[:, None]
    capacity = scale * (mean[:, 1] - mean[:, 0] ** 2)
    capacity_err = np.sqrt(np.einsum("ti,tij,tj->t", gradient, covariance, gradient))
    estimates["heat_capacity"] = _estimate(capacity, capacity_err, kish, n)
    ordered: dict[str, stats.Estimate] = {
        k: estimates[k] for k in ("energy", "heat_capacity") if k in estimates
    }
    ordered.update({k: v for k, v in estimates.items() if k not in ordered})
    method = f"{samples.method}+reweight"
    records = records_of(model, temps, ordered, method, exact)
    ln_z = logsumexp(log_w, axis=1) - math.log(n)
    ln_z_err = np.sqrt(np.maximum(np.sum(p**2, axis=1) - 1.0 / n, 0.0))
    free = -temps * ln_z / model.n_sites
    free_err = temps * ln_z_err / model.n_sites
    records += _free_energy_records(model, temps, free, free_err, kish, exact, method)
    for record in records:
        record["ess_fraction"] = float(kish[list(temps).index(record["T"])] / n)
    return records


def _free_energy_records(
    model: AbstractModel,
    temps: np.ndarray,
    values: np.ndarray,
    errors: np.ndarray,
    ess: np.ndarray,
    exact: ExactResult | None,
    method: str,
) -> list[dict[str, Any]]:
    estimate = stats.Estimate(
        estimate=values,
        stderr=errors,
        tau_int=np.full(len(temps), 0.5),
        ess=np.asarray(ess, np.float64),
        rhat=np.full(len(temps), np.nan),
        n_samples=0,
        method="free energy",
    )
    exact_f = free_energy_exact(exact, temps, model.n_sites)
    with_exact = (
        None
        if not np.isfinite(exact_f).any()
        else ExactResult(temps=temps, extra={"free_energy": exact_f})
    )
    return records_of(model, temps, {"free_energy": estimate}, method, with_exact)


def variational_free_energy(
    model: AbstractModel, samples: Samples, exact: ExactResult | None = None
) -> list[dict[str, Any]]:
    """Records of ``F_q/N = <E + T log q>/N`` over a generator's draws: the variational bound
    on the exact free energy (which is its ``exact`` column)."""
    temps = np.asarray(samples.temps, np.float64)
    log_q = np.asarray(samples.info["log_q"], np.float64)
    energy = measure(model, samples.states)["energy"].reshape(len(temps), -1) * model.n_sites
    per_site = (energy + temps[:, None] * log_q) / model.n_sites
    n = per_site.shape[1]
    errors = per_site.std(axis=1, ddof=1) / math.sqrt(n)
    return _free_energy_records(
        model,
        temps,
        per_site.mean(axis=1),
        errors,
        np.full(len(temps), float(n)),
        exact,
        samples.method,
    )


# ---------------------------------------------------------------------------- neural MCMC
class NeuralMCMCState(eqx.Module):
    """The chains of the independence sampler: current configurations and log weights, the
    accepted proposals since the last reset and one key for the whole batch."""

    spins: Array  # (temps, chains, *lattice)
    log_w: Array  # (temps, chains)
    accepted: Array  # (temps, chains)
    key: PRNGKeyArray


class NeuralMCMC(AbstractChainSampler):
    """Metropolised independence sampler with a trained generator as proposal, vectorised over
    temperatures and chains: each step every chain proposes a fresh draw ``x'`` of the
    generator and accepts it with ``min(1, w(x')/w(x))``, ``w = exp(-E/T) / q``.

    Exact for the Boltzmann distribution however poor the proposal (the weights are exact,
    see the module docstring); a poor proposal shows as a low ``acceptance``
    (``Samples.info``) and a long τ_int. Build it with :meth:`with_proposal`: the proposal's
    networks are those of one model and grid of temperatures, which it then samples. One step
    is one ``sweep`` (every site may change), so ``every = 1`` is the natural thinning.
    """

    name: ClassVar[str] = "neural-mcmc"

    chains: int = eqx.field(static=True, default=10, converter=as_count)
    warmup: int = eqx.field(static=True, default=100, converter=as_count)
    sweeps: int = eqx.field(static=True, default=1000, converter=as_count)
    every: int = eqx.field(static=True, default=1, converter=as_count)
    _generator: AbstractGenerator | None = eqx.field(static=True, default=None)
    _model: str = eqx.field(static=True, default="")
    _temps: tuple[float, ...] = eqx.field(static=True, default=())
    _params: PyTree = None

    @classmethod
    def with_proposal(
        cls, trained: TrainedGenerator, *, chains: int, warmup: int, sweeps: int, every: int = 1
    ) -> NeuralMCMC:
        """The sampler of ``trained.model`` at ``trained.temps`` with ``trained`` as proposal
        (its generator must have a density: :func:`ensure_density`)."""
        ensure_density(trained.generator, trained.model)
        return cls(
            chains=chains,
            warmup=warmup,
            sweeps=sweeps,
            every=every,
            _generator=trained.generator,
            _model=json.dumps(trained.model.describe(), sort_keys=True, default=str),
            _temps=tuple(float(t) for t in trained.temps),
            _params=trained.params,
        )

    def supports(self, model: AbstractModel) -> str | None:
        if self._generator is None:
            return "it has no proposal: build it with NeuralMCMC.with_proposal(trained, ...)"
        if json.dumps(model.describe(), sort_keys=True, default=str) != self._model:
            return f"its proposal was trained on {self._model}, not on {model.describe()}"
        return None

    def init_state(
        self, model: AbstractModel, temps: np.ndarray, *, key: PRNGKeyArray
    ) -> NeuralMCMCState:
        if not np.allclose(np.asarray(temps, np.float64), self._temps):
            raise ValueError(
                f"the proposal was trained at T = {list(self._temps)}; neural MCMC samples "
                f"those temperatures only, not {[float(t) for t in temps]}"
            )
        first, log_w = self._proposals(model, _device_temps(temps), self._params, key)
        zeros = jnp.zeros(log_w.shape, jnp.float32)
        return NeuralMCMCState(first, log_w, zeros, jax.random.fold_in(key, 1))

    def _proposals(
        self, model: AbstractModel, temps: Array, params: PyTree, key: PRNGKeyArray
    ) -> tuple[Array, Array]:
        """``chains`` fresh draws per temperature and their log weights ``-E/T - log q``."""
        assert self._generator is not None
        states, log_q = self._generator.generate_with_log_density(
            model, params, self.chains, key=key
        )
        states = states.astype(model.dtype)
        return states, -model.energy(states) / temps[:, None] - log_q

    def advance(
        self, model: AbstractModel, temps: Array, state: NeuralMCMCState, n_sweeps: Array
    ) -> NeuralMCMCState:
        lattice_axes = (1,) * len(model.shape)

        def step(_: Any, state: NeuralMCMCState) -> NeuralMCMCState:
            key, draw, coin = jax.random.split(state.key, 3)
            proposed, log_w = self._proposals(model, temps, self._params, draw)
            log_u = jnp.log(jax.random.uniform(coin, log_w.shape, minval=1e-38))
            accept = log_u < log_w - state.log_w
            return NeuralMCMCState(
                jnp.where(accept.reshape(*accept.shape, *lattice_axes), proposed, state.spins),
                jnp.where(accept, log_w, state.log_w),
                state.accepted + accept.astype(jnp.float32),
                key,
            )

        return lax.fori_loop(0, n_sweeps, step, state)

    def measure(self, model: AbstractModel, state: NeuralMCMCState) -> Array:
        return state.spins

    def diagnostics(self, model: AbstractModel, state: NeuralMCMCState) -> dict[str, Array]:
        """Accepted proposals, each a move of every site, so that the loop's rate per site and
        sweep is the share of accepted proposals."""
        return {"acceptance": state.accepted * model.n_sites}

    def reset_diagnostics(self, state: NeuralMCMCState) -> NeuralMCMCState:
        return eqx.tree_at(lambda s: s.accepted, state, jnp.zeros_like(state.accepted))

    def _kernel(self) -> AbstractChainSampler:
        # the run length set aside as in the base, the proposal's arrays kept
        return dataclasses.replace(self, chains=self.chains, warmup=0, sweeps=1, every=1)


def _device_temps(temps: Any) -> Array:
    return jnp.asarray(np.asarray(temps, np.float64), jnp.float32)


def ensure_density(generator: AbstractGenerator, model: AbstractModel) -> None:
    """Raise :class:`~spinbench.UnsupportedModelError` unless ``generator`` has a density on
    ``model`` (the reason is the generator's own)."""
    problem = generator.density_problem(model)
    if problem is not None:
        raise UnsupportedModelError(f"{generator.name} has no density on {model.name}: {problem}")
