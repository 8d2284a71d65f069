"""Datasets decoded once into uint8 tensors: gray input (luma) and RGB target."""

from colorize.data.images import ImageSet, Splits

__all__ = ["ImageSet", "Splits"]
