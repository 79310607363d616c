"""Markov chain Monte Carlo samplers: the contract, the shared chain loop and Metropolis.

A sampler plugin subclasses :class:`AbstractChainSampler` (the loop, options and checks come
with it: provide ``init_state``, ``advance`` and ``measure``) or, for something else entirely,
:class:`AbstractSampler` (provide ``sample``). :class:`Metropolis` composes a proposal scheme
with an :class:`AbstractAcceptanceRule` (:class:`MetropolisRule`, :class:`GlauberRule`, or
your own).
"""

from ._base import AbstractSampler
from ._chain import TARGET_CHUNKS, AbstractChainSampler, as_count
from ._checkerboard import checkerboard_trap, closed_classes, frozen, frozen_share
from ._metropolis import KERNELS, UPDATES, Metropolis, MetropolisState, PackedMetropolisState
from ._rules import RULES, AbstractAcceptanceRule, GlauberRule, MetropolisRule

__all__ = [
    "KERNELS",
    "RULES",
    "TARGET_CHUNKS",
    "UPDATES",
    "AbstractAcceptanceRule",
    "AbstractChainSampler",
    "AbstractSampler",
    "GlauberRule",
    "Metropolis",
    "MetropolisRule",
    "MetropolisState",
    "PackedMetropolisState",
    "as_count",
    "checkerboard_trap",
    "closed_classes",
    "frozen",
    "frozen_share",
]
