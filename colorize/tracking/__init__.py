"""Tracking: the MLflow store (the only module that imports mlflow), the sweep callback, run
provenance, progress lines, and reading tracked sweeps back as results."""
