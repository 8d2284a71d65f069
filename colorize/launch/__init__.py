"""How a sweep's jobs are launched: the fused launcher (hydra/launcher=fused) and a Hydra job's context."""
