"""Training: the one loop (fit), its early stopping, lr schedules, precision, checkpoints, metrics
and the runtime set-up (seeds, device, threads)."""
