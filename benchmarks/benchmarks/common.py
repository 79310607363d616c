"""Shared, cheap-to-import helpers of the asv suite.

Nothing here touches a JAX device at import time (asv imports every suite to discover the
benchmarks, and may fork afterwards): JAX work happens in ``setup``. Every timed JAX call
ends in ``block_until_ready``; compilation happens in ``setup`` (a first call), never in the
timed call.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

#: The 2D Ising critical temperature, where Metropolis acceptance is moderate.
T_CRITICAL = 2.269185314


def block(value: Any) -> Any:
    """Wait until every JAX array in ``value`` (a pytree) is computed."""
    import jax

    return jax.block_until_ready(value)


def median_seconds(run: Callable[[], Any], repeats: int = 3) -> float:
    """Median wall time of ``run()`` over ``repeats`` calls (``run`` already warm)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        block(run())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def parse_batch(batch: str) -> tuple[int, int]:
    """``"4x16"`` -> 4 temperatures x 16 chains."""
    temps, chains = (int(part) for part in batch.lower().split("x"))
    return temps, chains


def backend() -> str:
    """JAX's default backend (``cpu``, ``gpu``), for benchmarks that only make sense on one."""
    import jax

    return jax.default_backend()
