"""Search: the Optuna sweeper with pruning, its conditional search space and its tuning plots
(the only layer that imports optuna)."""
