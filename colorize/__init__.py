"""colorize: Hydra-driven sweeps for small image-colorization CNNs, tracked in MLflow."""

__version__ = "0.1.0"
