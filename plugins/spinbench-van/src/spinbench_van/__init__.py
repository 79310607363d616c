"""spinbench plugin: the variational autoregressive network (``van``) for two-valued spins.

spinbench finds this module through the ``spinbench`` entry point in ``pyproject.toml``.
"""

from __future__ import annotations

import spinbench

from .van import VAN, VANNet, causal_window

__all__ = ["VAN", "VANNet", "causal_window"]


@spinbench.hookimpl
def spinbench_register_generators() -> list[type[spinbench.AbstractGenerator]]:
    return [VAN]
