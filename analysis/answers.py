"""A study's answers as metrics and tags of its sweep's parent run, so that two sweeps compare in
MLflow's own run table: the best η of each batch size, the updates to each target and B_crit,
each with its interval over seeds (low, high), the number of seeds, and the answer in words.

Numbers are metrics (a report made again logs them again; the table shows the latest), words are
tags (a param could not change when a report is made again with other targets). Every key is
built here from the names below:

    answer                          the headline answer (tag)
    answer.seeds                    fewest seeds of a configuration
    answer.best_lr.m_10             best η at m = 10 (.low, .high: its interval over seeds)
    answer.updates.train_cost.m_10  updates to the training-cost target at m = 10 (.low, .high)
    answer.b_crit.train_cost        B_crit for that target (.low, .high)
    answer.target.train_cost        the target's value
"""

from __future__ import annotations

import math
import time

from mlflow.entities import Metric, RunTag

from . import summary
from .uncertainty import Estimate

ANSWER = "answer"  # the tag holding the headline, and the prefix of every key
SEEDS = f"{ANSWER}.seeds"
BEST_LR, UPDATES, B_CRIT, TARGET = (f"{ANSWER}.{what}" for what in ("best_lr", "updates", "b_crit", "target"))
LOW, HIGH = "low", "high"
TAG_LIMIT = 5000  # characters MLflow keeps of a tag value


def batch_key(batch_size) -> str:
    """m_10, or full: MLflow keys allow no '='."""
    return "full" if batch_size == "full" else f"m_{batch_size}"


def with_interval(key: str, found: Estimate) -> dict[str, float]:
    """{key: value, key.low, key.high} where finite (no ends with one seed)."""
    values = {key: found.value}
    if found.has_interval:
        values |= {f"{key}.{LOW}": found.low, f"{key}.{HIGH}": found.high}
    return {k: float(v) for k, v in values.items() if math.isfinite(v)}


def metrics(found: summary.Study) -> dict[str, float]:
    """The answers of `found` (summary.study) as {metric key: value}."""
    values = {SEEDS: float(found.table.groupby(summary.CONFIG).seed.nunique().min())}
    for batch_size, estimate in found.best_lrs.items():
        values |= with_interval(f"{BEST_LR}.{batch_key(batch_size)}", estimate)
    for target in found.targets:
        values[f"{TARGET}.{target.metric}"] = target.value
        for arm in found.arms[target]:
            if not arm.censored:
                values |= with_interval(f"{UPDATES}.{target.metric}.{batch_key(arm.batch_size)}", arm.measures["updates"])
        fit = found.critical_batches[target]
        if fit is not None:
            values |= with_interval(f"{B_CRIT}.{target.metric}", fit)
    return values


def log(client, run_id: str, found: summary.Study, headline: list[str]) -> None:
    """Log the answers on the sweep's parent run `run_id`."""
    stamp = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(key, value, stamp, 0) for key, value in metrics(found).items()],
                     tags=[RunTag(ANSWER, " ".join(headline)[:TAG_LIMIT])])
