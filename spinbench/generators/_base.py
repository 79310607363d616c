"""The generator contract: neural samplers trained on configurations at each temperature.

A generator is a small immutable :class:`equinox.Module` whose fields are its options (static,
hashable), e.g. ``VAE(epochs=100, batch_size=500, learning_rate=1e-3)``. It trains one
independent network per temperature, all temperatures together in one jitted program
(parameters stacked along a leading temperature axis, ``eqx.filter_vmap``), and generates
independent configurations in the model's spin representation.

A subclass (a plugin author's generator) provides:

* ``name`` (class attribute, unique, lowercase) and its options as dataclass fields with
  defaults, validated in ``__check_init__`` (raise ``ValueError`` with a clear message).
  Fields whose names start with ``_`` are private hooks: not options, not in :meth:`settings`;
* :meth:`AbstractGenerator.init`: untrained parameters stacked over temperatures. It must be
  deterministic in its options, model and ``n_temps``: :meth:`TrainedGenerator.load` reads
  the saved parameters into it;
* :meth:`AbstractGenerator.fit`: train on a :class:`~spinbench._samples.Samples` and return a
  :class:`TrainedGenerator`, recording divergence per temperature instead of raising
  (``spinbench.generators._training.train`` does this for any per-temperature update rule);
* :meth:`AbstractGenerator.generate_states`: ``(temps, n, *lattice)`` in the model's dtype;
* optionally :meth:`AbstractGenerator.supports`, the reason a model cannot be learnt;
* optionally a *density*: :meth:`AbstractGenerator.density_problem` returns None and
  :meth:`AbstractGenerator.generate_with_log_density` gives each generated configuration's log
  density ``log q``. An exact generator (autoregressive) gives ``ln q(x)``. A latent-variable
  generator draws ``z ~ p(z)``, ``x ~ p(x|z)`` and gives the *augmented* log density
  ``ln p(z) + ln p(x|z) - ln r(z|x)`` for an auxiliary density ``r`` (its encoder, or the prior
  ``p(z)``): then ``w = exp(-E(x)/T - log q)`` is an exact importance weight for the Boltzmann
  distribution (``docs/results-corrected.md`` derives it), which the corrections
  (reweighting, neural MCMC) and the variational free energy use;
* optionally an *encoder*: :meth:`AbstractGenerator.reconstruction_problem` returns None and
  :meth:`AbstractGenerator.reconstruct` passes given configurations through the network
  (encode, then decode), giving one reconstruction of each. The runner's
  ``<name>:reconstructed-train`` and ``<name>:reconstructed-heldout`` rows (the paper's red
  markers, ``reconstructed = true`` in a grid) measure over-fitting with it. The built-in
  VAEs draw ``z ~ q(z|x)`` as a training step does, AVB ``z = f(x, eps)`` with fresh noise,
  and both read the decoder's output out as generation does.

:class:`TrainedGenerator` adds generation into :class:`~spinbench._samples.Samples` (the
samplers' on-disk format), saving and loading (equinox serialisation, no pickle).

**Divergence rule.** A temperature whose training produced a non-finite loss (or non-finite
parameters) is *diverged*: ``TrainedGenerator.diverged_step[t] >= 0`` is the first such step,
and its parameters are those of the last finite step. Diverged temperatures never yield numbers:

* :meth:`TrainedGenerator.generate` (default ``diverged="mark"``) keeps every temperature so
  the temperature axis stays aligned with the grid, and marks them in
  ``samples.info["diverged_step"]`` (``(temps,)``, -1 = trained finitely) and
  ``samples.provenance["diverged"]``; their states are diagnostics only. Whoever turns
  samples into table rows drops the marked temperatures and records
  :meth:`TrainedGenerator.failure_records` (``"diverged at T=..., step ..."``) instead;
  :func:`diverged_mask` reads the mark from any ``Samples``.
* ``diverged="drop"`` leaves them out; ``diverged="raise"`` raises :class:`TrainingDiverged`.
* :meth:`TrainedGenerator.raise_if_diverged` raises with a message naming each diverged
  temperature and step.
"""

from __future__ import annotations

import abc
import dataclasses
import json
import os
from pathlib import Path
from typing import Any, ClassVar, Literal

import equinox as eqx
import jax
import numpy as np
from jaxtyping import Array, PRNGKeyArray, PyTree

from .._atomic import atomic_directory
from .._errors import LoadError, TrainingDiverged, UnsupportedModelError
from .._methods import AbstractMethod
from .._samples import Samples
from ..models._base import AbstractModel
from ..provenance import provenance

#: Version of the on-disk layout written by :meth:`TrainedGenerator.save`.
TRAINED_FORMAT_VERSION = 1


class AbstractGenerator(AbstractMethod):
    """A generative model of spin configurations (see the module docstring for the contract).

    Its dataclass fields are its options; validate them in ``__check_init__``.
    """

    name: ClassVar[str]

    @abc.abstractmethod
    def init(self, model: AbstractModel, n_temps: int, *, key: PRNGKeyArray) -> PyTree:
        """Untrained parameters for ``n_temps`` temperatures, stacked on a leading axis.

        Also the skeleton that :meth:`TrainedGenerator.load` deserialises into.
        """

    @abc.abstractmethod
    def fit(self, model: AbstractModel, data: Samples, *, key: PRNGKeyArray) -> TrainedGenerator:
        """Train one network per temperature of ``data`` (all temperatures in one program).

        A generator may also accept ``progress`` (True / False / None: a bar on a terminal
        only), as the built-in ones do; the runner then passes its own setting.
        """

    @abc.abstractmethod
    def generate_states(
        self, model: AbstractModel, params: PyTree, n: int, *, key: PRNGKeyArray
    ) -> Array:
        """``n`` independent configurations per temperature: ``(temps, n, *lattice)``."""

    def density_problem(self, model: AbstractModel) -> str | None:
        """None if :meth:`generate_with_log_density` works for ``model``, else why not. The
        default: no density."""
        return f"{self.name} gives no density of the configurations it generates"

    def generate_with_log_density(
        self, model: AbstractModel, params: PyTree, n: int, *, key: PRNGKeyArray
    ) -> tuple[Array, Array]:
        """``n`` independent configurations per temperature ``(temps, n, *lattice)`` and the
        log density of each ``(temps, n)``: ``ln q(x)``, or for a latent-variable generator
        the augmented ``ln p(z) + ln p(x|z) - ln r(z|x)`` (see the module docstring)."""
        raise NotImplementedError(self.density_problem(model) or "no density")

    def reconstruction_problem(self, model: AbstractModel) -> str | None:
        """None if :meth:`reconstruct` works for ``model``, else why not. The default: no
        encoder."""
        return f"{self.name} has no encoder"

    def reconstruct(
        self, model: AbstractModel, params: PyTree, states: Array | np.ndarray, *, key: PRNGKeyArray
    ) -> Array:
        """One reconstruction (encode, then decode) of each configuration of ``states``
        ``(temps, n, *lattice)`` by its temperature's network: ``(temps, n, *lattice)`` in the
        model's dtype."""
        raise NotImplementedError(self.reconstruction_problem(model) or "no encoder")


@dataclasses.dataclass
class TrainedGenerator:
    """A generator with its trained parameters, training curves and divergence record.

    ``params`` are stacked on a leading temperature axis. ``history`` maps a curve name
    (``"loss"``, and e.g. ``"kl"``, ``"reconstruction"``) to ``(temps, epochs)`` arrays: the
    mean over the steps each temperature took in each epoch, NaN once it diverged or stopped.
    ``diverged_step[t]`` is the first step (from 0) with a non-finite loss at temperature
    ``t``, or -1 when training stayed finite; ``stopped_epoch[t]`` the epoch at which early
    stopping ended it, or -1. ``info`` holds JSON-friendly facts about the run (steps per
    epoch, steps taken, ...).
    """

    generator: AbstractGenerator
    model: AbstractModel
    temps: np.ndarray
    params: PyTree
    history: dict[str, np.ndarray]
    diverged_step: np.ndarray
    seed: int | None = None
    stopped_epoch: np.ndarray | None = None
    info: dict[str, Any] = dataclasses.field(default_factory=dict)

    # ------------------------------------------------------------------ divergence
    @property
    def diverged(self) -> np.ndarray:
        """Boolean mask ``(temps,)`` of the temperatures whose training diverged."""
        return np.asarray(self.diverged_step) >= 0

    def failure_records(self) -> list[dict[str, Any]]:
        """One record per diverged temperature, with the reason to print instead of numbers."""
        steps_per_epoch = int(self.info.get("steps_per_epoch", 0)) or None
        records = []
        for T, step in zip(self.temps, np.asarray(self.diverged_step), strict=True):
            if step < 0:
                continue
            epoch = f" (epoch {int(step) // steps_per_epoch})" if steps_per_epoch else ""
            records.append(
                {
                    "T": float(T),
                    "step": int(step),
                    "status": "diverged",
                    "reason": f"{self.generator.name} training diverged at T={float(T):g}, "
                    f"step {int(step)}{epoch}: non-finite loss",
                }
            )
        return records

    def raise_if_diverged(self) -> None:
        """Raise :class:`TrainingDiverged` naming every diverged temperature and step."""
        failures = self.failure_records()
        if failures:
            what = "; ".join(f"T={f['T']:g} at step {f['step']}" for f in failures)
            others = (
                "the other temperatures are usable; " if len(failures) < len(self.temps) else ""
            )
            raise TrainingDiverged(
                f"{self.generator.name} training diverged at {len(failures)} of "
                f"{len(self.temps)} temperatures ({what}); {others}"
                "a smaller learning rate or a KL warm-up may help"
            )

    check_finite = raise_if_diverged

    # ------------------------------------------------------------------ generation
    def generate(
        self,
        n: int = 10000,
        *,
        key: PRNGKeyArray | None = None,
        seed: int | None = None,
        diverged: Literal["mark", "drop", "raise"] = "mark",
        density: bool = False,
    ) -> Samples:
        """``n`` independent configurations per temperature as :class:`Samples`.

        States are ``(temps, 1, n, *lattice)`` in the model's dtype, ``method`` is the
        generator's name. ``key`` fixes the draw (from ``seed`` when only that is given).
        ``diverged`` says what to do with diverged temperatures (module docstring).
        ``density`` draws with :meth:`AbstractGenerator.generate_with_log_density` and keeps
        the log densities in ``info["log_q"]`` ``(temps, n)``.
        """
        if diverged not in ("mark", "drop", "raise"):
            raise ValueError(f"diverged must be 'mark', 'drop' or 'raise', got {diverged!r}")
        if key is None:
            if seed is None:
                raise ValueError("give a key or a seed to generate from")
            key = jax.random.key(seed)
        if diverged == "raise":
            self.raise_if_diverged()
        log_q = None
        if density:
            problem = self.generator.density_problem(self.model)
            if problem is not None:
                raise UnsupportedModelError(problem)
            drawn, log_q = self.generator.generate_with_log_density(
                self.model, self.params, int(n), key=key
            )
            states = np.asarray(drawn)
        else:
            states = np.asarray(
                self.generator.generate_states(self.model, self.params, int(n), key=key)
            )
        states = states.astype(self.model.dtype, copy=False)[:, None]
        step = np.asarray(self.diverged_step, np.int64)
        keep = np.ones(len(self.temps), bool) if diverged == "mark" else step < 0
        settings = self.generator.settings()
        record = provenance(seed=seed if seed is not None else self.seed, settings=settings)
        record["diverged"] = [
            {"T": f["T"], "step": f["step"], "reason": f["reason"]} for f in self.failure_records()
        ]
        record["training"] = {**self.info, "temps": [float(t) for t in self.temps]}
        info: dict[str, np.ndarray] = {"diverged_step": step[keep]}
        if log_q is not None:
            info["log_q"] = np.asarray(log_q, np.float64)[keep]
        if self.stopped_epoch is not None:
            info["stopped_epoch"] = np.asarray(self.stopped_epoch, np.int64)[keep]
        return Samples(
            states=states[keep],
            temps=np.asarray(self.temps, np.float64)[keep],
            model=self.model.describe(),
            method=self.generator.name,
            settings=settings,
            seed=seed if seed is not None else self.seed,
            info=info,
            provenance=record,
        )

    def reconstruct(
        self, data: Samples, *, key: PRNGKeyArray, method: str | None = None
    ) -> Samples:
        """``data`` (at this generator's temperatures) passed through the networks: encode,
        then decode (:meth:`AbstractGenerator.reconstruct`). The chain layout
        ``(temps, chains, samples, *lattice)`` is kept, so the reconstructions of a correlated
        chain are analysed as one. ``method`` labels the result (the generator's name by
        default); diverged temperatures are marked as :meth:`generate` marks them.
        :class:`~spinbench.UnsupportedModelError` for a generator without an encoder."""
        problem = self.generator.reconstruction_problem(self.model)
        if problem is not None:
            raise UnsupportedModelError(problem)
        temps = np.asarray(data.temps, np.float64)
        if len(temps) != len(self.temps) or not np.allclose(temps, self.temps, rtol=1e-9):
            raise ValueError(
                f"the configurations are at temperatures {list(temps)}, the networks were "
                f"trained at {list(self.temps)}"
            )
        states = np.asarray(data.states)
        flat = states.reshape(states.shape[0], -1, *states.shape[3:])
        drawn = self.generator.reconstruct(self.model, self.params, flat, key=key)
        rebuilt = np.asarray(drawn).astype(self.model.dtype, copy=False).reshape(states.shape)
        settings = self.generator.settings()
        record = provenance(seed=self.seed, settings=settings)
        record["reconstructed"] = {"from": data.method, "seed": data.seed}
        return Samples(
            states=rebuilt,
            temps=temps,
            model=self.model.describe(),
            method=method or self.generator.name,
            settings=settings,
            seed=self.seed,
            info={"diverged_step": np.asarray(self.diverged_step, np.int64)},
            provenance=record,
        )

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write atomically to ``directory``: ``params.eqx`` (equinox serialisation),
        ``history.npz`` and ``trained.json`` (generator name and options, model, temperatures,
        divergence record)."""
        meta = {
            "format": TRAINED_FORMAT_VERSION,
            "generator": self.generator.name,
            "options": self.generator.settings(),
            "model": self.model.describe(),
            "temps": [float(t) for t in self.temps],
            "diverged_step": [int(s) for s in np.asarray(self.diverged_step)],
            "stopped_epoch": None
            if self.stopped_epoch is None
            else [int(s) for s in np.asarray(self.stopped_epoch)],
            "seed": self.seed,
            "info": self.info,
            "provenance": provenance(seed=self.seed, settings=self.generator.settings()),
        }
        with atomic_directory(directory) as staging:
            eqx.tree_serialise_leaves(staging / "params.eqx", self.params)
            history = {k: np.asarray(v) for k, v in self.history.items()}
            np.savez(staging / "history.npz", **history)  # type: ignore[arg-type]
            (staging / "trained.json").write_text(json.dumps(meta, indent=2))
        return Path(directory)

    @classmethod
    def load(
        cls,
        directory: str | os.PathLike[str],
        *,
        generator: AbstractGenerator,
        model: AbstractModel,
    ) -> TrainedGenerator:
        """Read what :meth:`save` wrote, as trained by ``generator`` on ``model``: their
        untrained parameters (``generator.init``) are the template the saved ones are read into,
        as ``eqx.tree_deserialise_leaves(path, like)`` does. :class:`~spinbench.LoadError` if
        the folder is unreadable or was written by another generator, options or model."""
        source = Path(directory)
        try:
            meta = json.loads((source / "trained.json").read_text(encoding="utf-8"))
            with np.load(source / "history.npz", allow_pickle=False) as data:
                history = {k: data[k] for k in data.files}
        except (OSError, ValueError, KeyError) as error:
            raise LoadError(f"{source} does not hold a trained generator: {error}") from error
        if not isinstance(meta, dict) or meta.get("format") != TRAINED_FORMAT_VERSION:
            found = meta.get("format") if isinstance(meta, dict) else None
            raise LoadError(f"{source}: trained-generator format {found!r} is not known")
        saved = [meta.get("generator"), meta.get("options"), meta.get("model")]
        given = (generator.name, generator.settings(), model.describe())
        if json.loads(json.dumps(given, default=str)) != saved:
            raise LoadError(
                f"{source} holds {saved[0]} with options {saved[1]} trained on {saved[2]}; "
                f"it cannot be loaded as {given[0]} with options {given[1]} on {given[2]}"
            )
        temps = np.asarray(meta["temps"], np.float64)
        skeleton = generator.init(model, len(temps), key=jax.random.key(0))
        try:
            params = eqx.tree_deserialise_leaves(source / "params.eqx", skeleton)
        except (OSError, ValueError, RuntimeError) as error:
            raise LoadError(f"{source}: its parameters cannot be read: {error}") from error
        stopped = meta.get("stopped_epoch")
        return cls(
            generator=generator,
            model=model,
            temps=temps,
            params=params,
            history=history,
            diverged_step=np.asarray(meta["diverged_step"], np.int64),
            seed=meta.get("seed"),
            stopped_epoch=None if stopped is None else np.asarray(stopped, np.int64),
            info=meta.get("info", {}),
        )


def diverged_mask(samples: Samples) -> np.ndarray:
    """Boolean ``(temps,)``: which temperatures of ``samples`` come from diverged training.

    All False for samplers and for generators that trained finitely.
    """
    step = samples.info.get("diverged_step")
    if step is None:
        return np.zeros(len(samples.temps), bool)
    return np.asarray(step) >= 0
