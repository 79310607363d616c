"""Neural generators: the contract, the shared training loop and the built-in generators."""

from .avb import AVB
from .base import AbstractGenerator, TrainedGenerator, TrainingDiverged, diverged_mask
from .training import AbstractObjective, TrainConfig, TrainResult, train
from .vae import VAE, AbstractNeuralGenerator, DenseVAE

__all__ = [
    "AVB",
    "VAE",
    "AbstractGenerator",
    "AbstractNeuralGenerator",
    "AbstractObjective",
    "DenseVAE",
    "TrainConfig",
    "TrainResult",
    "TrainedGenerator",
    "TrainingDiverged",
    "diverged_mask",
    "train",
]
