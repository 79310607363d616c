"""spinbench plugin: the MADE autoregressive generator (``made``) for two-valued spins.

spinbench finds this module through the ``spinbench`` entry point in ``pyproject.toml``.
"""

from __future__ import annotations

import spinbench

from .made import MADE, MADENet

__all__ = ["MADE", "MADENet"]


@spinbench.hookimpl
def spinbench_register_generators() -> list[type[spinbench.AbstractGenerator]]:
    return [MADE]
