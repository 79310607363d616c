"""spinbench plugin: the Wolff cluster sampler for Ising models (``wolff``).

spinbench finds this module through the ``spinbench`` entry point in ``pyproject.toml``.
"""

from __future__ import annotations

import spinbench

from .wolff import Wolff, WolffState, ising_coupling

__all__ = ["Wolff", "WolffState", "ising_coupling"]


@spinbench.hookimpl
def spinbench_register_samplers() -> list[type[spinbench.AbstractSampler]]:
    return [Wolff]
