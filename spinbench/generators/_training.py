"""Training machinery shared by the generators: one network per temperature, trained together.

:func:`train` runs any per-temperature update rule (an :class:`AbstractObjective`) for every
temperature of a grid at once: the networks' parameters and optimiser states are stacked on a
leading temperature axis and the update is ``eqx.filter_vmap``-ed over it; epochs and their
minibatch steps run inside ``lax.scan`` in one ``eqx.filter_jit`` program. The Python loop runs
only over a modest number of jitted chunks of epochs (one progress-bar tick each).

Per temperature, and without stopping the others:

* **Divergence.** A step whose metrics, new parameters or new optimiser state are not all
  finite marks that temperature diverged at that step (``diverged_step``, a global step
  index from 0); its parameters stay frozen at the last finite state and it takes no more
  steps.
* **Early stopping** (when ``patience`` is set). After each epoch, the epoch's mean loss is
  smoothed by an exponential moving average (weight ``smoothing`` on the past); a temperature
  stops when the smoothed loss has not fallen below its best value by more than
  ``min_delta`` for ``patience`` epochs in a row (``stopped_epoch``).

Minibatches: each epoch draws an independent permutation of each temperature's data and walks
it in ``n_data // batch_size`` steps (the remainder is left out of that epoch; a batch larger
than the data set is clipped to it).
"""

from __future__ import annotations

import abc
import dataclasses
import math
import sys
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray, PyTree
from tqdm.auto import tqdm

#: Training runs in about this many jitted chunks of epochs (one progress-bar tick each).
TARGET_CHUNKS = 20


class AbstractObjective(eqx.Module):
    """One temperature's update rule: how to initialise the optimiser and take a step.

    Both methods see a single temperature's network (no temperature axis); :func:`train`
    vectorises them. ``step`` returns the new parameters, the new optimiser state and scalar
    metrics, which must include ``"loss"`` (the curve used for early stopping).
    """

    @abc.abstractmethod
    def init_state(self, params: PyTree) -> PyTree:
        """The optimiser state for one temperature's network ``params``."""

    @abc.abstractmethod
    def step(
        self,
        params: PyTree,
        opt_state: PyTree,
        batch: Float[Array, "batch ..."],
        *,
        key: PRNGKeyArray,
        epoch: Float[Array, ""],
    ) -> tuple[PyTree, PyTree, dict[str, Float[Array, ""]]]:
        """One update on a minibatch; ``epoch`` is the fractional epoch (for warm-ups)."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How long and how to train (hashable: it is a static argument of the jitted chunk).

    ``steps`` (when set) overrides ``epochs``. ``patience=None`` disables early stopping.
    ``progress=None`` shows a progress bar only on a terminal.
    """

    epochs: int
    batch_size: int
    steps: int | None = None
    patience: int | None = None
    min_delta: float = 0.0
    smoothing: float = 0.8
    chunks: int = TARGET_CHUNKS
    progress: bool | None = None
    description: str = "training"


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` returns: stacked parameters, curves and per-temperature outcomes.

    ``history[name]`` is ``(temps, epochs)``: the mean of metric ``name`` over the steps each
    temperature actually took in each epoch (NaN once it has diverged or stopped).
    ``diverged_step`` is the first non-finite step per temperature (-1: none);
    ``stopped_epoch`` the epoch at which early stopping froze it (-1: none).
    """

    params: PyTree
    history: dict[str, np.ndarray]
    diverged_step: np.ndarray
    stopped_epoch: np.ndarray
    steps_per_epoch: int
    batch_size: int
    epochs_run: int
    steps_run: np.ndarray


class _LoopState(eqx.Module):
    """The carried state of the training loop (every leaf has a leading temperature axis)."""

    params: PyTree
    opt_state: PyTree
    active: Bool[Array, " temps"]
    diverged_step: Int[Array, " temps"]
    stopped_epoch: Int[Array, " temps"]
    steps_run: Int[Array, " temps"]
    smoothed: Float[Array, " temps"]
    best: Float[Array, " temps"]
    since_best: Int[Array, " temps"]


def _all_finite(tree: PyTree) -> Bool[Array, ""]:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree) if eqx.is_array(x)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def _select(flag: Bool[Array, ""], new: PyTree, old: PyTree) -> PyTree:
    return jax.tree_util.tree_map(lambda a, b: jnp.where(flag, a, b), new, old)


def _schedule(n_data: int, config: TrainConfig) -> tuple[int, int, int, int, int]:
    """Batch size, steps per epoch, total steps, epochs per chunk and number of chunks."""
    batch = min(config.batch_size, n_data)
    per_epoch = n_data // batch
    total_steps = config.steps if config.steps is not None else config.epochs * per_epoch
    total_epochs = max(1, math.ceil(total_steps / per_epoch))
    chunk_epochs = max(1, math.ceil(total_epochs / max(1, config.chunks)))
    return batch, per_epoch, total_steps, chunk_epochs, math.ceil(total_epochs / chunk_epochs)


def train(
    objective: AbstractObjective,
    params: PyTree,
    data: Float[Array, "temps n ..."],
    config: TrainConfig,
    *,
    key: PRNGKeyArray,
) -> TrainResult:
    """Train one network per temperature on ``data[t]``, all temperatures in one program.

    ``params`` are stacked on a leading temperature axis (as made by ``eqx.filter_vmap`` of a
    constructor); ``data`` is float features ``(temps, n, ...)``. Never raises on divergence:
    the result records it (see the module docstring).
    """
    data = jnp.asarray(data)
    n_temps, n_data = int(data.shape[0]), int(data.shape[1])
    if n_data < 1:
        raise ValueError("no training data: every temperature needs at least one configuration")
    stacked = {
        int(leaf.shape[0]) for leaf in jax.tree_util.tree_leaves(eqx.filter(params, eqx.is_array))
    }
    if stacked != {n_temps}:
        raise ValueError(
            f"parameters are stacked for {sorted(stacked)} temperatures, the data has {n_temps}"
        )
    batch, per_epoch, total_steps, chunk_epochs, n_chunks = _schedule(n_data, config)
    arrays, static = eqx.partition(params, eqx.is_array)
    state, keys = _initial_state(objective, arrays, static, key)
    curves: list[dict[str, np.ndarray]] = []
    show = config.progress if config.progress is not None else sys.stderr.isatty()
    needed_epochs = math.ceil(total_steps / per_epoch)
    with tqdm(
        total=needed_epochs,
        desc=config.description,
        unit="epoch",
        disable=not show,
        leave=False,
    ) as bar:
        for chunk in range(n_chunks):
            first = chunk * chunk_epochs
            state, chunk_curves = _run_chunk(
                objective,
                static,
                state,
                data,
                keys,
                jnp.asarray(first, jnp.int32),
                jnp.asarray(total_steps, jnp.int32),
                config=dataclasses.replace(config, epochs=0, steps=None, description=""),
                batch=batch,
                per_epoch=per_epoch,
                chunk_epochs=chunk_epochs,
            )
            curves.append({k: np.asarray(v) for k, v in chunk_curves.items()})
            bar.update(min(chunk_epochs, int(bar.total or 0) - bar.n))
            loss = curves[-1]["loss"][:, -1]
            if np.isfinite(loss).any():
                bar.set_postfix(loss=f"{np.nanmean(loss):.4g}")
            if not bool(jnp.any(state.active)):
                break
    epochs_run = min(len(curves) * chunk_epochs, needed_epochs)
    history = {
        name: np.concatenate([c[name] for c in curves], axis=1)[:, :epochs_run]
        for name in curves[0]
    }
    return TrainResult(
        params=eqx.combine(state.params, static),
        history=history,
        diverged_step=np.asarray(state.diverged_step, np.int64),
        stopped_epoch=np.asarray(state.stopped_epoch, np.int64),
        steps_per_epoch=per_epoch,
        batch_size=batch,
        epochs_run=epochs_run,
        steps_run=np.asarray(state.steps_run, np.int64),
    )


@eqx.filter_jit
def _initial_state(
    objective: AbstractObjective, arrays: PyTree, static: PyTree, key: PRNGKeyArray
) -> tuple[_LoopState, PRNGKeyArray]:
    """Optimiser states and bookkeeping for every temperature, and one key per temperature."""
    n_temps = jax.tree_util.tree_leaves(arrays)[0].shape[0]
    opt_state = eqx.filter_vmap(lambda p: objective.init_state(eqx.combine(p, static)))(arrays)
    state = _LoopState(
        params=arrays,
        opt_state=opt_state,
        active=jnp.ones(n_temps, bool),
        diverged_step=jnp.full(n_temps, -1, jnp.int32),
        stopped_epoch=jnp.full(n_temps, -1, jnp.int32),
        steps_run=jnp.zeros(n_temps, jnp.int32),
        smoothed=jnp.full(n_temps, jnp.nan, jnp.float32),
        best=jnp.full(n_temps, jnp.inf, jnp.float32),
        since_best=jnp.zeros(n_temps, jnp.int32),
    )
    return state, jax.random.split(key, n_temps)


@eqx.filter_jit
def _run_chunk(
    objective: AbstractObjective,
    static: PyTree,
    state: _LoopState,
    data: Float[Array, "temps n ..."],
    keys: PRNGKeyArray,
    first_epoch: Int[Array, ""],
    total_steps: Int[Array, ""],
    *,
    config: TrainConfig,
    batch: int,
    per_epoch: int,
    chunk_epochs: int,
) -> tuple[_LoopState, dict[str, Float[Array, "temps epochs"]]]:
    """``chunk_epochs`` epochs from ``first_epoch`` for every temperature (one program).

    The run's length is traced and ``config`` arrives without it, so runs that differ only in
    their number of epochs or steps share the compiled program when their chunks are equal.
    """
    n_data = data.shape[1]

    def one_step(
        params: PyTree,
        opt_state: PyTree,
        active: Bool[Array, ""],
        diverged_step: Int[Array, ""],
        data_t: Array,
        order: Int[Array, " batch"],
        key_t: PRNGKeyArray,
        step: Int[Array, ""],
    ) -> tuple[PyTree, PyTree, Array, Array, Array, dict[str, Array]]:
        minibatch = data_t[order]
        new_params, new_opt, metrics = objective.step(
            eqx.combine(params, static),
            opt_state,
            minibatch,
            key=key_t,
            epoch=step.astype(jnp.float32) / per_epoch,
        )
        new_params = eqx.filter(new_params, eqx.is_array)
        finite = _all_finite(metrics) & _all_finite(new_params) & _all_finite(new_opt)
        live = active & (step < total_steps)
        took = live & finite
        newly_diverged = live & ~finite
        return (
            _select(took, new_params, params),
            _select(took, new_opt, opt_state),
            active & ~newly_diverged,
            jnp.where(newly_diverged, step, diverged_step),
            took,
            {k: jnp.where(live, v, jnp.nan) for k, v in metrics.items()},
        )

    per_temp = eqx.if_array(0)
    vmapped_step = eqx.filter_vmap(one_step, in_axes=(per_temp,) * 7 + (None,))

    def epoch_randomness(key_t: PRNGKeyArray, epoch: Int[Array, ""]) -> tuple[Array, Array]:
        # Few random call sites: each adds to the CPU compile time.
        epoch_keys = jax.random.split(jax.random.fold_in(key_t, epoch), per_epoch + 1)
        # A uniformly random order (ties of 32-bit draws are broken by position: negligible).
        order = jnp.argsort(jax.random.bits(epoch_keys[0], (n_data,)))
        return order[: per_epoch * batch].reshape(per_epoch, batch), epoch_keys[1:]

    def one_epoch(state: _LoopState, epoch: Int[Array, ""]) -> tuple[_LoopState, Any]:
        orders, step_keys = jax.vmap(epoch_randomness, in_axes=(0, None))(keys, epoch)

        def body(carry: tuple[Any, ...], i: Int[Array, ""]) -> tuple[tuple[Any, ...], Any]:
            params, opt_state, active, diverged_step = carry
            step = epoch * per_epoch + i
            params, opt_state, active, diverged_step, took, metrics = vmapped_step(
                params,
                opt_state,
                active,
                diverged_step,
                data,
                orders[:, i],
                step_keys[:, i],
                step,
            )
            return (params, opt_state, active, diverged_step), (took, metrics)

        carry = (state.params, state.opt_state, state.active, state.diverged_step)
        (params, opt_state, active, diverged_step), (took, metrics) = lax.scan(
            body, carry, jnp.arange(per_epoch)
        )
        # took: (steps, temps); metrics[name]: (steps, temps)
        counts = jnp.sum(took, axis=0)
        means = {
            k: jnp.where(counts > 0, jnp.sum(jnp.where(took, v, 0.0), axis=0) / counts, jnp.nan)
            for k, v in metrics.items()
        }
        # Early stopping on the smoothed epoch loss, per temperature.
        seen = counts > 0
        loss = means["loss"]
        smoothed = jnp.where(
            jnp.isnan(state.smoothed),
            loss,
            config.smoothing * state.smoothed + (1.0 - config.smoothing) * loss,
        )
        smoothed = jnp.where(seen, smoothed, state.smoothed)
        improved = seen & (smoothed < state.best - config.min_delta)
        best = jnp.where(improved, smoothed, state.best)
        since_best = jnp.where(improved, 0, jnp.where(seen, state.since_best + 1, state.since_best))
        stopped_epoch = state.stopped_epoch
        if config.patience is not None:
            stop = active & seen & (since_best >= config.patience)
            stopped_epoch = jnp.where(stop, epoch, stopped_epoch)
            active = active & ~stop
        new_state = _LoopState(
            params=params,
            opt_state=opt_state,
            active=active,
            diverged_step=diverged_step,
            stopped_epoch=stopped_epoch,
            steps_run=state.steps_run + counts.astype(jnp.int32),
            smoothed=smoothed,
            best=best,
            since_best=since_best,
        )
        return new_state, means

    state, curves = lax.scan(one_epoch, state, first_epoch + jnp.arange(chunk_epochs))
    return state, {k: v.T for k, v in curves.items()}


__all__ = ["TARGET_CHUNKS", "AbstractObjective", "TrainConfig", "TrainResult", "train"]
