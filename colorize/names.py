"""The names runs are tracked under, each defined once: metrics, tags and trial statuses."""

# per-epoch metrics: fit's history and the MLflow metric keys (step = epoch)
TRAIN_LOSS = "train_loss"  # what training minimises (the `loss` group); the MSE for the study's runs
TRAIN_MSE = "train_mse"
TRAIN_ERROR = "train_margin12_error"
VAL_MSE = "val_mse"
VAL_ERROR = "val_margin12_error"
VAL_ACCURACY = "val_margin12_accuracy"
EPOCH_SECONDS = "epoch_seconds"
LR = "lr"  # the lr the epoch trained with
CURVES = (TRAIN_MSE, VAL_MSE, TRAIN_ERROR, VAL_ERROR)


def best(metric: str) -> str:
    """The summary metric of a finished run: `metric` at its best epoch."""
    return f"best_{metric}"


BEST_EPOCH = "best_epoch"
STOPPED_EPOCH = "stopped_epoch"
TRAIN_SECONDS = "train_seconds"
BEST_VAL_MSE = best(VAL_MSE)
BEST_VAL_ACCURACY = best(VAL_ACCURACY)
OBJECTIVE = best(VAL_ERROR)  # what every sweep minimises: the best epoch's val 12-margin error

# params: config keys read back from runs (flattened, dotted), and the ones colorize adds
SEED = "trainer.seed"
MAX_EPOCHS = "trainer.max_epochs"
BUDGET_EPOCHS = "trainer.budget_epochs"  # N, when a time budget fixed it
TRIAL_KEY = "optuna_trial"  # an Optuna search's trial number: a config key, and so a param

# files: a run's checkpoints (colorize/training/checkpoint.py writes them)
LAST = "last.pt"  # after every epoch: what a run resumes from
BEST = "best.pt"  # the best epoch's weights: what predict and evaluate load

# tags: MLflow's own
PARENT_TAG = "mlflow.parentRunId"
RUN_NAME_TAG = "mlflow.runName"
NOTE_TAG = "mlflow.note.content"
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
# tags: colorize's
OVERRIDES_TAG = "overrides"  # a job's or sweep's Hydra task overrides, space-separated
SWEEP_TAG = "sweep"  # a parent run's preset
TRIAL_TAG = "trial"  # a trial run's job number in its sweep (1-based)
TRIALS_PLANNED_TAG = "trials_planned"
FINGERPRINT_TAG = "fingerprint"  # a hash of what a job computes: finds an earlier attempt of it
OUTPUT_DIR_TAG = "output_dir"
FAILURE_TAG = "failure"  # why a run ended FAILED or KILLED: diverged, disk_full, store_error, process_gone, ...
INCOMPLETE = "incomplete"  # a sweep's report section: trials left unfinished
OPTUNA_STORAGE_TAG = "optuna_storage"  # a search's parent run: where its study lives (no password)
OPTUNA_STUDY_TAG = "optuna_study"  # the Optuna study of a search's parent run and of each of its trials
SLURM_JOB_TAG = "slurm_job_id"  # the SLURM job a run ran in (an array task as 12_3), as squeue and sacct name it
RAY_TASK_TAG, RAY_NODE_TAG = "ray_task_id", "ray_node_id"  # the Ray task and node a run ran in (hydra/launcher=ray)

# trial statuses (sweep summaries, reports); DIVERGED and PRUNED are also tags set to "true"
FINISHED, PRUNED, DIVERGED, FAILED, KILLED, RUNNING = "finished", "pruned", "diverged", "failed", "killed", "running"
SCORED = (FINISHED, PRUNED)  # statuses whose objective counts
