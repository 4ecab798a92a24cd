"""The names a run is recorded under, defined once for the harness that writes them and the
analysis that reads them back: metric keys, tag keys, artifact files, and the config keys that say
where or how a job runs rather than what it computes."""

# metrics of every epoch (MLflow step = epoch; epoch 0 is the untrained network)
TRAIN_COST = "train_cost"
VALIDATION_COST = "validation_cost"
TEST_COST = "test_cost"
VALIDATION_ACCURACY = "validation_accuracy"
TEST_ACCURACY = "test_accuracy"
STEPS = "steps"  # updates made so far
EXAMPLES = "examples"  # training inputs seen so far
TRAIN_TIME = "train_time"  # seconds of training so far, evaluation excluded
EVAL_TIME = "eval_time"  # seconds of evaluating the splits so far (every epoch's, and any scheduled)
GRAD_NORM = "grad_norm"
# metrics of some updates (MLflow step = updates made)
BATCH_COST = "batch_cost"
NOISE_SCALE = "noise_scale"
BY_UPDATE = "_by_update"  # suffix of an epoch metric evaluated at the updates of measure.eval_* instead


def by_update(metric: str) -> str:
    """The name of `metric` measured at scheduled update counts (MLflow step = updates made)."""
    return metric + BY_UPDATE


def is_accuracy(metric: str) -> bool:
    """Accuracies grow as a network learns; every other metric here is a cost or a count."""
    return metric.endswith("accuracy")


# tags of a training run
STATUS = "status"  # the outcome: finished, diverged (both MLflow FINISHED), failed or killed
FINISHED, DIVERGED = "finished", "diverged"
DIVERGED_EPOCH = "diverged_epoch"
ERROR = "error"  # FAILED and KILLED runs: what stopped them
CONFIG_HASH = "config_hash"
OVERRIDES = "overrides"
HOST, PID, PROCESS_START = "host", "pid", "process_start"
HEARTBEAT = "heartbeat"  # unix time the run's process last said it was alive
GIT_COMMIT, GIT_DIRTY = "git_commit", "git_dirty"
# tags of a training run: the conditions its seconds (train_time) were measured under, where it trained
CPU_MODEL, CPU_COUNT = "cpu_model", "cpu_count"
BLAS = "blas"  # every BLAS library loaded, with its version: "openblas 0.3.30"
BLAS_NUM_THREADS = "blas_num_threads"  # the threads BLAS may use (threadpoolctl's num_threads), blas_threads applied
LOAD_START, LOAD_END = "load_start", "load_end"  # the 1-minute load average as training starts, and as it ends
# tags of a sweep's parent run
ROLE, SWEEP = "role", "sweep"
BEST_RUN = "best_run"  # the id of its run with the best final validation accuracy (validation cost without one)


def at_best_validation(metric: str) -> str:
    """The parent run's metric: `metric` of the run chosen on validation (never on the test set)."""
    return f"{metric}_at_best_validation"


# MLflow's own tags
PARENT_RUN_ID = "mlflow.parentRunId"
DESCRIPTION = "mlflow.note.content"
# MLflow's tag of an experiment's kind: model development, not a GenAI application (the UI of MLflow
# 3.17 picks an experiment's first page by its own workflow switch instead: sweep.ui_command)
EXPERIMENT_KIND, MODEL_DEVELOPMENT = "mlflow.experimentKind", "custom_model_development"

# artifacts of a run
CONFIG_FILE = "config.yaml"
CURVES = "curves.parquet"  # the per-epoch metrics as one table, one column per metric plus `epoch`
SERIES = "series.parquet"  # the per-update series (step = updates made) as one table: metric, step, value
WEIGHTS = "weights.npz"

# keys of the profile (JSON) of a run's dataset input: the sizes of its splits and of its layers
TRAIN_SIZE, VALIDATION_SIZE, TEST_SIZE = "train", "validation", "test"
INPUTS, OUTPUTS = "inputs", "outputs"

# config keys that choose where or how a job runs, or describe it, not what it computes: left out
# of the config hash (so a study matches across stores and machines) and of run names
EXECUTION_KEYS = ("tracking", "launcher", "blas_threads", "progress", "verbose", "dry_run", "max_hours", "study",
                  "data.root", "data.download")
