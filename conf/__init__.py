"""Hydra's primary config, shipped in the wheel as the package `colorize.conf` (`pkg://colorize.conf`)."""
