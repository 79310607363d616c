"""Neural generators: the contract, the shared training loop and the built-in generators.

A generator plugin subclasses :class:`AbstractGenerator` (``init``, ``fit``,
``generate_states``) and trains with :func:`train` (one :class:`AbstractObjective` step per
temperature, every temperature in one program), or builds on
:class:`AbstractNeuralGenerator` (``network`` and ``objective``: options, ``fit`` and
``generate`` come with it), or, for a network with an exact density, on
:class:`AbstractAutoregressiveGenerator` (``log_prob_network`` and ``sample_network``: data
and variational training, densities and symmetrisation come with it).
"""

from ._autoregressive import (
    TRAININGS,
    AbstractAutoregressiveGenerator,
    LikelihoodObjective,
    VariationalObjective,
    train_variational,
)
from ._avb import AVB
from ._base import AbstractGenerator, TrainedGenerator, TrainingDiverged, diverged_mask
from ._conv import BoundaryConv, ConvStack, TransposedConvStack
from ._likelihoods import (
    LIKELIHOODS,
    READOUTS,
    AbstractLikelihood,
    BernoulliLikelihood,
    GaussianLikelihood,
    VonMisesLikelihood,
    encode_spins,
    spin_channels,
)
from ._neural import AbstractNeuralGenerator, initialise
from ._training import AbstractObjective, TrainConfig, TrainResult, train
from ._vae import VAE, DenseVAE

__all__ = [
    "AVB",
    "LIKELIHOODS",
    "READOUTS",
    "TRAININGS",
    "VAE",
    "AbstractAutoregressiveGenerator",
    "AbstractGenerator",
    "AbstractLikelihood",
    "AbstractNeuralGenerator",
    "AbstractObjective",
    "BernoulliLikelihood",
    "BoundaryConv",
    "ConvStack",
    "DenseVAE",
    "GaussianLikelihood",
    "LikelihoodObjective",
    "TrainConfig",
    "TrainResult",
    "TrainedGenerator",
    "TrainingDiverged",
    "TransposedConvStack",
    "VariationalObjective",
    "VonMisesLikelihood",
    "diverged_mask",
    "encode_spins",
    "initialise",
    "spin_channels",
    "train",
    "train_variational",
]
