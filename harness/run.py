"""One job, start to finish: check the config, load the data, build the network, train it
and track the run. `run` is what `python -m harness` calls for every job of a sweep."""

from __future__ import annotations

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

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


def fit(cfg: DictConfig, dataset, network: Network, sampling_rng, on_epoch=lambda epoch, metrics: None) -> Result:
    return train(network, dataset, cfg.lr, cfg.batch_size, cfg.epochs, sampling_rng, last_batch=cfg.last_batch,
                 divergence_ratio=cfg.divergence_ratio, on_epoch=on_epoch)


def run(cfg: DictConfig) -> dict:
    """Train and track one job; return its final metrics and status."""
    from . import tracking

    check(cfg)
    dataset, network, sampling_rng = build(cfg)
    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    with tracking.tracked_run(cfg, tracking.run_name(cfg, overrides), {"dataset": dataset.name}) as tracker:
        result = fit(cfg, dataset, network, sampling_rng, on_epoch=tracker.log_epoch)
        tracker.log_result(result, network)
    return {"status": result.status, **result.final}
