"""One job, start to finish: check the config, load the data, build the network, train it
and track the run. `run` is what `python -m harness` calls for every job of a sweep."""

from __future__ import annotations

import sys
import traceback

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from threadpoolctl import threadpool_limits

from . import data as datasets
from .config import check, check_batch_size
from .network import Network
from .train import Result, random_streams, train


def build(cfg: DictConfig):
    """The dataset and the initial network of a checked config."""
    dataset = datasets.load(OmegaConf.to_container(cfg.data, resolve=True)).astype(cfg.model.dtype)
    check_batch_size(cfg.batch_size, len(dataset.train))
    init_rng, sampling_rng = random_streams(cfg.seed)
    m = cfg.model
    network = Network.from_sizes([dataset.n_in, *m.hidden, dataset.n_out], seed=init_rng, init=m.init,
                                 dtype=m.dtype, activation=m.activation, output=m.output, cost=m.cost)
    return dataset, network, sampling_rng


def fit(cfg: DictConfig, dataset, network: Network, sampling_rng,
        on_epoch=lambda epoch, metrics, series: None) -> Result:
    return train(network, dataset, cfg.lr, cfg.batch_size, cfg.epochs, sampling_rng, last_batch=cfg.last_batch,
                 divergence_ratio=cfg.divergence_ratio, measure=cfg.measure, on_epoch=on_epoch)


def default_name(cfg: DictConfig) -> str:
    return f"lr={cfg.lr},batch_size={cfg.batch_size},seed={cfg.seed}"


def fit_tracked(cfg: DictConfig, dataset, network: Network, sampling_rng, experiment: str, name: str,
                tags: dict[str, str], parent: str | None = None) -> Result:
    """`fit`, recorded as one MLflow run of `experiment` (a child of `parent` in a sweep)."""
    from . import tracking

    with tracking.tracked_run(cfg, experiment, name, {"dataset": dataset.name, **tags}, dataset, parent) as tracker:
        result = fit(cfg, dataset, network, sampling_rng, on_epoch=tracker.log_epoch)
        tracker.log_result(result, network)
    return result


def job_context() -> tuple[list[str], str | None]:
    """This job's overrides, and the id of the sweep it belongs to (None for a single run)."""
    from .sweep import sweep_id

    if not HydraConfig.initialized():
        return [], None
    hydra_cfg = HydraConfig.get()
    in_sweep = hydra_cfg.mode == RunMode.MULTIRUN
    return list(hydra_cfg.overrides.task), sweep_id(hydra_cfg) if in_sweep else None


def run(cfg: DictConfig) -> dict:
    """Train and track one job; return its final metrics and status.

    In a sweep, a job whose config already has a FINISHED run is skipped (tracking.resume), and a
    job that raises is recorded FAILED and reported here, so the other jobs run on."""
    from . import sweep, tracking

    check(cfg)
    with threadpool_limits(limits=cfg.blas_threads):
        dataset, network, sampling_rng = build(cfg)
        overrides, sweep_id = job_context()
        tracking.connect(cfg.tracking.uri)
        experiment = tracking.experiment_id(cfg.tracking.experiment)
        parent = None
        if sweep_id is None:  # a sweep's launcher has already closed abandoned runs
            tracking.close_abandoned(experiment)
        else:
            parent = sweep.parent_run(experiment, sweep_id)
            done = cfg.tracking.resume and tracking.finished_run(experiment, tracking.config_hash(cfg))
            if done:
                print(f"skipped: {sweep.run_name(overrides)} already has FINISHED run {done.info.run_id}")
                return {"status": "skipped"}
        name = sweep.run_name(overrides) or default_name(cfg)
        tags = {"overrides": " ".join(overrides)}
        if sweep_id is not None:
            tags["sweep_id"] = sweep_id
        try:
            result = fit_tracked(cfg, dataset, network, sampling_rng, experiment, name, tags, parent)
        except Exception:
            if sweep_id is None:
                raise
            traceback.print_exc()
            print(f"failed: {name}; the sweep goes on", file=sys.stderr)
            return {"status": "failed"}
    if sweep_id is None:  # a sweep prints one table for all its jobs at the end
        final = ", ".join(f"{key} {result.final[key]:.4g}" for key in ("train_cost", "test_accuracy") if key in result.final)
        print(f"{result.status}: {name} after {len(result.history) - 1} epochs: {final}\n{sweep.ui_command(cfg.tracking.uri)}")
    return {"status": result.status, **result.final}
