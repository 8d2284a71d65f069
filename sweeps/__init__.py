"""The sweep presets, shipped in the wheel as `colorize.sweeps` and registered as the config group
`sweep` (colorize.config.register_configs)."""
