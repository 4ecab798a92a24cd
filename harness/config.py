"""The typed schema of a job's config, and the checks that every setting gets before any work.

Hydra composes `conf/config.yaml` on top of `Config`, so a value of the wrong type fails at
composition; `check` then catches values of the right type that make no sense, with one line
that names the setting and what it may be.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlsplit

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf
from omegaconf.errors import InterpolationResolutionError

from . import console, names
from .data import DATASETS
from .errors import ConfigError
from .measure import Measurements
from .network import ACTIVATIONS, COSTS, INITS
from .train import Budget


# the Hydra configs (config.yaml and its groups): in the installed package, or conf/ of a checkout
PACKAGE = Path(__file__).resolve().parent
CONF = PACKAGE / "conf" if (PACKAGE / "conf").is_dir() else PACKAGE.parent / "conf"


@dataclass
class ModelConfig:
    hidden: list[int] = field(default_factory=lambda: [30])
    activation: str = "sigmoid"
    output: str = "sigmoid"
    cost: str = "quadratic"
    init: str = "normal"
    dtype: str = "float64"


@dataclass
class TrackingConfig:
    uri: str = "sqlite:///mlflow.db"
    experiment: str = "harness"
    resume: bool = True  # in a sweep, skip a job whose config already has a FINISHED run
    patience: float = 0.0  # seconds the store's calls are tried again while it fails (a server restarting)


@dataclass
class ReferenceConfig:
    """A published result the report sets beside the runs' (a book's or a paper's figure)."""
    test_accuracy: Optional[float] = None  # its final test accuracy, a fraction
    lr: Optional[float] = None  # the η it was reached at (None: compared at each batch size's best η)
    source: str = ""  # who published it, and where


@dataclass
class StudyConfig:
    question: str = ""  # what a named study asks; reports and the sweep's MLflow description show it
    target_cost: Optional[float] = None  # training cost whose updates-to-reach the report measures (None: its default)
    target_accuracy: Optional[float] = None  # validation accuracy, a fraction, likewise
    reference: ReferenceConfig = field(default_factory=ReferenceConfig)


@dataclass
class Config:
    lr: float = 3.0
    batch_size: Any = 10  # a positive integer or "full"
    epochs: int = 30
    budget: Budget = field(default_factory=Budget)  # updates or inputs seen, instead of epochs
    seed: int = 0
    last_batch: str = "keep"  # when m does not divide n: "keep" the short batch or "drop" it
    # the run diverged once its train cost (or validation cost, where the train split is not
    # evaluated) exceeds this × the initial one
    divergence_ratio: float = 1e4
    blas_threads: Optional[int] = None  # threads for matrix products; None leaves the library's choice
    progress: bool = True  # print a line per epoch (one run) or per job (a sweep)
    verbose: bool = False  # also show what Hydra, MLflow and other libraries say on the terminal
    dry_run: bool = False  # list the jobs without training or writing to the store
    max_hours: Optional[float] = 24.0  # a job expected to train longer is refused before it starts; None: no limit
    data: Any = None  # one of the dataset schemas in harness.data.DATASETS
    model: ModelConfig = field(default_factory=ModelConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    measure: Measurements = field(default_factory=Measurements)  # optional measurements, off by default
    study: StudyConfig = field(default_factory=StudyConfig)


def per_batch_size(batch_size: Any, table: dict) -> Any:
    """`lr: ${per_batch_size:${batch_size},{1: 0.3, 10: 3.0, full: 10.0}}`: a value chosen by m,
    so a sweep over batch_size can pair each m with its own learning rate."""
    table = {str(m): value for m, value in table.items()}
    if str(batch_size) not in table:
        raise ConfigError(f"batch_size: {batch_size!r} has no entry in the per_batch_size table; "
                          f"allowed: {', '.join(table)}")
    return table[str(batch_size)]


OmegaConf.register_new_resolver("per_batch_size", per_batch_size, replace=True)
OmegaConf.register_new_resolver("terminal_loggers", console.terminal_loggers, replace=True)

store = ConfigStore.instance()
store.store(name="schema", node=Config)
for name, schema in DATASETS.items():
    store.store(group="data", name=f"{name}_schema", node=schema)

LAST_BATCH = ("keep", "drop")
EXPERIMENT_NAME_LIMIT = 500  # characters in an MLflow experiment's name
DATA_AT_LEAST = {"n_in": 1, "n_out": 1, "n_classes": 1}  # other integer data settings: >= 0
STORE_SCHEMES = ("sqlite", "http", "https", "postgresql", "mysql", "mssql", "databricks")  # MLflow's stores but files
DTYPES = ("float64", "float32")


def _one_of(key: str, value: Any, allowed) -> None:
    if value not in allowed:
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(str, allowed))}")


def check(cfg) -> None:
    """Raise ConfigError for the first setting that cannot be run."""
    try:
        lr = cfg.lr
    except InterpolationResolutionError as error:
        raise ConfigError(str(error.__cause__ or error).splitlines()[0]) from None
    key = unknown_key(cfg)
    if key:
        raise ConfigError(f"{key}: not a setting of the harness (a typo?); see `python -m harness --cfg job` for them")
    if not (lr > 0 and math.isfinite(lr)):
        raise ConfigError(f"lr: {cfg.lr} must be a finite number > 0")
    bs = cfg.batch_size
    if bs != "full" and (isinstance(bs, bool) or not isinstance(bs, int) or bs < 1):
        raise ConfigError(f"batch_size: {bs!r} must be an integer >= 1 or 'full'")
    if cfg.epochs < 1:
        raise ConfigError(f"epochs: {cfg.epochs} must be an integer >= 1")
    check_budget(cfg.budget)
    if cfg.seed < 0:
        raise ConfigError(f"seed: {cfg.seed} must be an integer >= 0")
    if cfg.max_hours is not None and not cfg.max_hours > 0:
        raise ConfigError(f"max_hours: {cfg.max_hours} must be a number of hours > 0, or null for no limit")
    if not (0 <= cfg.tracking.patience < math.inf):
        raise ConfigError(f"tracking.patience: {cfg.tracking.patience} must be a number of seconds >= 0")
    if not cfg.tracking.experiment.strip():
        raise ConfigError("tracking.experiment: must name an MLflow experiment, e.g. tracking.experiment=harness")
    if len(cfg.tracking.experiment) > EXPERIMENT_NAME_LIMIT:
        raise ConfigError(f"tracking.experiment: a name of {len(cfg.tracking.experiment)} characters; MLflow takes "
                          f"at most {EXPERIMENT_NAME_LIMIT}")
    _one_of("last_batch", cfg.last_batch, LAST_BATCH)
    if not (cfg.divergence_ratio > 1 and math.isfinite(cfg.divergence_ratio)):
        raise ConfigError(f"divergence_ratio: {cfg.divergence_ratio} must be a number > 1")
    if cfg.blas_threads is not None and cfg.blas_threads < 1:
        raise ConfigError(f"blas_threads: {cfg.blas_threads} must be an integer >= 1 or null")
    _one_of("data.name", cfg.data.name, DATASETS)
    check_data(cfg.data)
    check_tracking_uri(cfg.tracking.uri)
    m = cfg.model
    if any(size < 1 for size in m.hidden):
        raise ConfigError(f"model.hidden: {list(m.hidden)} must list layer sizes >= 1")
    _one_of("model.activation", m.activation, ACTIVATIONS)
    _one_of("model.output", m.output, ACTIVATIONS)
    _one_of("model.cost", m.cost, COSTS)
    if m.cost == "cross_entropy" and m.output != "sigmoid":
        raise ConfigError(f"model.output: {m.output!r} must be 'sigmoid' with model.cost 'cross_entropy'")
    _one_of("model.init", m.init, INITS)
    _one_of("model.dtype", m.dtype, DTYPES)
    for key in ("batch_cost_every", "noise_scale_every", "eval_every", "eval_per_decade"):
        if cfg.measure[key] < 0:
            raise ConfigError(f"measure.{key}: {cfg.measure[key]} must be an integer >= 0 (0: off)")
    if cfg.measure.train_split_every < 1:
        raise ConfigError(f"measure.train_split_every: {cfg.measure.train_split_every} must be an integer >= 1 (1: every evaluation)")
    if cfg.measure.noise_probe < 2:
        raise ConfigError(f"measure.noise_probe: {cfg.measure.noise_probe} must be an integer >= 2")
    reference = cfg.study.reference.test_accuracy
    if reference is not None and not 0 < reference <= 1:
        raise ConfigError(f"study.reference.test_accuracy: {reference} must be a fraction in (0, 1], or null")


def check_budget(budget) -> None:
    """At most one budget besides `epochs`, a positive count."""
    chosen = {key: budget[key] for key in ("updates", "examples") if budget[key] is not None}
    if len(chosen) > 1:
        raise ConfigError(f"budget: updates={budget.updates} and examples={budget.examples} are two budgets; "
                          f"set one of budget.updates, budget.examples (the other null), or neither to train for epochs")
    for key, value in chosen.items():
        if value < 1:
            raise ConfigError(f"budget.{key}: {value} must be an integer >= 1, or null to train for epochs")


def check_data(data) -> None:
    """A dataset's sizes and seed are integers >= 0 (its input, output and class counts >= 1),
    its noise a finite number >= 0: NumPy would refuse the others with a traceback, or slice
    a negative split from the wrong end."""
    for key, value in data.items():
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int) and value < DATA_AT_LEAST.get(key, 0):
            raise ConfigError(f"data.{key}: {value} must be an integer >= {DATA_AT_LEAST.get(key, 0)}")
        if isinstance(value, float) and not 0 <= value < math.inf:
            raise ConfigError(f"data.{key}: {value} must be a finite number >= 0")


def check_tracking_uri(uri: str) -> None:
    """A store MLflow opens: a bare path or file: URI is MLflow's file store, which MLflow 3 refuses
    (unless MLFLOW_ALLOW_FILE_STORE is set) with a paragraph that does not name the setting."""
    scheme = urlsplit(uri).scheme.split("+")[0]
    file_store = scheme in ("", "file") and os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() in ("true", "1")
    if not (scheme in STORE_SCHEMES or file_store):
        raise ConfigError(f"tracking.uri: {uri!r} is not a store the harness can use; use sqlite:///PATH (a file, "
                          f"e.g. sqlite:///mlflow.db), http://HOST:PORT (an MLflow server) or a database URI "
                          f"({', '.join(s + '://' for s in STORE_SCHEMES if s not in ('sqlite', 'http', 'https'))})")


def check_batch_size(batch_size: Any, n_train: int) -> None:
    if batch_size != "full" and batch_size > n_train:
        raise ConfigError(f"batch_size: {batch_size} is larger than the {n_train} training inputs; "
                          f"use an integer from 1 to {n_train} or 'full'")


def unknown_key(cfg) -> str | None:
    """The first key that no schema declares: a typo, which `+key=value` would otherwise add."""
    schemas = {"": Config, "model": ModelConfig, "tracking": TrackingConfig, "measure": Measurements,
               "study": StudyConfig, "budget": Budget, "data": DATASETS.get(cfg.data.name)}
    for prefix, schema in schemas.items():
        node = cfg[prefix] if prefix else cfg
        if schema is None or node is None:
            continue
        known = {f.name for f in fields(schema)} | ({"hydra"} if not prefix else set())
        for key in node:
            if key not in known:
                return f"{prefix}.{key}" if prefix else str(key)
    return None


def config_hash(cfg) -> str:
    """sha256 of what the job computes: the resolved config without the keys that say where or
    how it runs (names.EXECUTION_KEYS), so the same study matches across stores and machines."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    for key in names.EXECUTION_KEYS:
        *parents, leaf = key.split(".")
        node = resolved
        for parent in parents:
            node = node.get(parent) or {}
        node.pop(leaf, None)
    return hashlib.sha256(json.dumps(resolved, sort_keys=True).encode()).hexdigest()
