"""A run's budget in updates or in inputs seen: the loop stops exactly there, the last epoch may
be partial and is measured after the final update, and a budget of whole epochs is the epochs run."""

import math

import numpy as np
import pytest

from harness import compose
from harness.config import check
from harness.data import Blobs
from harness.errors import ConfigError
from harness.network import Network
from harness.train import Budget, Evaluator, train

N = 205  # training inputs of the blobs below: 10 does not divide it


@pytest.fixture(scope="module")
def data():
    data = Blobs(n=N).load()
    assert len(data.train) == N
    return data


def counted_run(data, batch_size, budget, last_batch="keep", epochs=1, **kwargs):
    """The result, and the size of every batch the network actually stepped on."""
    network = Network.from_sizes([2, 4, 3], seed=0)
    batches = []
    step = network.step
    network.step = lambda X, Y, lr: (batches.append(len(X)), step(X, Y, lr))
    result = train(network, data, 0.5, batch_size, epochs, np.random.default_rng(0), last_batch=last_batch,
                   budget=budget, **kwargs)
    return result, batches, network


@pytest.mark.parametrize("batch_size, last_batch", [(1, "keep"), (7, "keep"), (10, "keep"), (10, "drop"),
                                                    (N, "keep"), ("full", "keep")])
@pytest.mark.parametrize("updates", [1, 29, 100])
def test_an_updates_budget_makes_exactly_that_many_updates(data, batch_size, last_batch, updates):
    result, batches, _ = counted_run(data, batch_size, Budget(updates=updates), last_batch)
    assert len(batches) == updates == result.final["steps"]
    assert result.final["examples"] == sum(batches)


@pytest.mark.parametrize("batch_size, last_batch, per_epoch", [(10, "keep", 21), (10, "drop", 20), ("full", "keep", 1)])
def test_an_updates_budget_records_every_epoch_begun_the_last_one_partial(data, batch_size, last_batch, per_epoch):
    result, _, _ = counted_run(data, batch_size, Budget(updates=45), last_batch)
    assert len(result.history) == 1 + math.ceil(45 / per_epoch)
    assert [e["steps"] for e in result.history[1:]] == [min(k * per_epoch, 45) for k in range(1, len(result.history))]


def test_the_partial_last_epoch_is_measured_after_the_final_update(data):
    result, _, network = counted_run(data, 10, Budget(updates=21 + 3))  # one epoch of 21 updates and 3
    assert len(result.history) == 3 and result.final["steps"] == 24
    assert result.final["train_cost"] == Evaluator(network, data)()["train_cost"]


# (batch size, last_batch, examples budget) → updates, examples seen, by hand: with keep an epoch
# is 20 batches of 10 and one of 5 (205 inputs); with drop, 20 batches of 10 (200 inputs)
EXAMPLES = [
    (10, "drop", 300, 30, 300),   # an epoch (200) and 10 batches of 10
    (10, "keep", 300, 31, 305),   # an epoch (205), then 95 more need 10 batches of 10
    (10, "keep", 205, 21, 205),   # exactly one epoch, its short batch included
    (10, "keep", 201, 21, 205),   # 200 after 20 batches is short of 201: the short batch too
    (10, "keep", 7, 1, 10),       # the first batch already holds more
    (1, "keep", 333, 333, 333),
    ("full", "keep", 500, 3, 615),  # 205 per update: 3 updates reach 500
]


@pytest.mark.parametrize("batch_size, last_batch, examples, updates, seen", EXAMPLES)
def test_an_examples_budget_takes_the_fewest_whole_batches_that_see_that_many_inputs(data, batch_size, last_batch,
                                                                                    examples, updates, seen):
    result, batches, _ = counted_run(data, batch_size, Budget(examples=examples), last_batch)
    assert (len(batches), sum(batches)) == (updates, seen) == (result.final["steps"], result.final["examples"])


@pytest.mark.parametrize("batch_size, last_batch, per_epoch", [(10, "keep", 21), (10, "drop", 20), ("full", "keep", 1)])
def test_a_budget_of_whole_epochs_gives_the_epochs_run_bit_for_bit(data, batch_size, last_batch, per_epoch):
    without_time = lambda result: [{k: v for k, v in e.items() if k not in ("train_time", "eval_time")} for e in result.history]
    epochs, _, _ = counted_run(data, batch_size, Budget(), last_batch, epochs=3)
    updates, _, _ = counted_run(data, batch_size, Budget(updates=3 * per_epoch), last_batch, epochs=99)
    assert without_time(updates) == without_time(epochs)
    assert len(epochs.history) == 4 and epochs.final["steps"] == 3 * per_epoch


def test_evaluations_are_scheduled_up_to_the_budget_not_the_epochs(data):
    from harness.measure import Measurements

    result, _, _ = counted_run(data, 10, Budget(updates=24), epochs=1, measure=Measurements(eval_every=8))
    assert [step for step, _ in result.series["train_cost_by_update"]] == [0, 8, 16, 24]


@pytest.mark.parametrize("overrides, message", [
    (["budget.updates=100", "budget.examples=1000"], "budget: updates=100 and examples=1000 are two budgets; "
                                                     "set one of budget.updates, budget.examples"),
    (["budget.updates=0"], "budget.updates: 0 must be an integer >= 1, or null to train for epochs"),
    (["budget.examples=-5"], "budget.examples: -5 must be an integer >= 1, or null to train for epochs"),
])
def test_a_budget_that_cannot_run_is_one_line_naming_it(overrides, message):
    with pytest.raises(ConfigError, match="^" + message):
        check(compose(overrides))


def test_a_tracked_run_records_its_budget_as_params(tmp_path):
    from mlflow.tracking import MlflowClient

    from harness import train_from_config

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result, _ = train_from_config(compose(["data=blobs", "batch_size=full", "budget.updates=5", "progress=false",
                                           f"tracking.uri={uri}"]), track=True)
    [run] = MlflowClient(uri).search_runs([MlflowClient(uri).get_experiment_by_name("harness").experiment_id])
    assert run.data.params["budget.updates"] == "5" and run.data.params["budget.examples"] == "None"
    assert result.final["steps"] == 5


@pytest.mark.slow
def test_a_relaunched_sweep_with_a_budget_skips_the_runs_it_completed(tmp_path):
    from conftest import harness

    # 45 updates of m = 10 on 205 blobs: 21 per epoch, so 3 epochs, the last one partial
    sweep = ["-m", "data=blobs", f"data.n={N}", "batch_size=10,full", "budget.updates=45", "progress=false"]
    harness(*sweep, cwd=tmp_path)
    again = harness(*sweep, cwd=tmp_path)
    assert "2 jobs: 0 finished, 0 diverged, 0 failed, 0 killed, 2 skipped" in again.stdout
