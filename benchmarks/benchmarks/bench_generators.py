"""Generators: training throughput (minibatch steps per second, all temperatures together)
and generation throughput (configurations per second), with peak memory.

Each generator trains for 2 epochs on 2,000 configurations per temperature at 4 temperatures
(uniformly random spins: the timing does not depend on the data) with the paper's batch of 500,
i.e. 4 steps per epoch. ``setup`` runs one fit and one generation to compile; the timed calls reuse
the compiled programs.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .common import block

#: Generator x model pairs of the paper's panels (conv VAE on 2D; dense VAE and AVB on 1D).
CASES = ["vae ising2d 10", "vae ising1d 6", "dense-vae ising1d 6", "avb ising1d 6"]
N_TEMPS = 4
TRAINING_SAMPLES = 2000
EPOCHS = 2
GENERATED = 2_000


def _build(case: str) -> tuple[Any, Any, Any]:
    """(generator, model, training Samples) of a case."""
    import jax
    import numpy as np

    from spinbench import Samples, get_generator, get_model

    generator_name, model_name, size = case.split()
    model = get_model(model_name).from_size(size)  # type: ignore[attr-defined]
    generator = get_generator(generator_name).from_options(epochs=EPOCHS)  # type: ignore[attr-defined]
    temps = np.linspace(1.0, 3.5, N_TEMPS)
    states = model.random_states((N_TEMPS, 1, TRAINING_SAMPLES), key=jax.random.key(0))
    data = Samples(
        states=np.asarray(states),
        temps=temps,
        model=model.describe(),
        method="uniform",
    )
    return generator, model, data


class Training:
    """``fit``: 2 epochs of 4 minibatch steps, all temperatures in one program."""

    params = (CASES,)
    param_names: ClassVar[list[str]] = ["case"]
    timeout = 600.0

    def setup(self, case: str) -> None:
        import jax

        self.generator, self.model, self.data = _build(case)
        self.key = jax.random.key(1)
        trained = self.generator.fit(self.model, self.data, key=self.key)  # compile
        self.steps = int(trained.info["steps_per_epoch"]) * EPOCHS
        block(trained.params)

    def _fit(self) -> Any:
        return block(self.generator.fit(self.model, self.data, key=self.key).params)

    def time_fit(self, case: str) -> None:
        self._fit()

    def track_steps_per_second(self, case: str) -> float:
        from .common import median_seconds

        return self.steps / median_seconds(self._fit, repeats=3)

    track_steps_per_second.unit = "steps/s (all temperatures)"  # type: ignore[attr-defined]

    def peakmem_fit(self, case: str) -> None:
        self._fit()


class Generation:
    """``generate``: 2,000 independent configurations per temperature."""

    params = (CASES,)
    param_names: ClassVar[list[str]] = ["case"]
    timeout = 600.0

    def setup(self, case: str) -> None:
        import jax

        generator, model, data = _build(case)
        self.trained = generator.fit(model, data, key=jax.random.key(1))
        self.key = jax.random.key(2)
        self.trained.generate(GENERATED, key=self.key)  # compile

    def _generate(self) -> Any:
        return self.trained.generate(GENERATED, key=self.key).states

    def time_generate(self, case: str) -> None:
        self._generate()

    def track_samples_per_second(self, case: str) -> float:
        from .common import median_seconds

        return N_TEMPS * GENERATED / median_seconds(self._generate, repeats=3)

    track_samples_per_second.unit = "configurations/s"  # type: ignore[attr-defined]

    def peakmem_generate(self, case: str) -> None:
        self._generate()
