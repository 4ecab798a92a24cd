"""A job's line in a sweep: how many jobs are done and when the rest will be, counted across the
processes that run them."""

import time

from harness.job import TALLY, Context


def test_a_sweeps_eta_counts_from_when_its_earliest_finished_job_began(tmp_path):
    context = Context(sweep="a-parent-run", jobs=4, tally=tmp_path / TALLY)
    context.tally.write_text(f"{time.time() - 10:.3f}\n")  # another worker's job, begun 10 s ago
    place, eta = context.progress(seconds=0.5)
    assert (place, eta) == ("[2/4]", ", ETA 10 s")  # 2 jobs in 10 s, 2 left


def test_the_last_job_of_a_sweep_has_no_eta(tmp_path):
    context = Context(sweep="a-parent-run", jobs=1, tally=tmp_path / TALLY)
    assert context.progress(seconds=0.5) == ("[1/1]", "")
