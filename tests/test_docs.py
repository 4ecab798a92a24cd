"""The README and docs/ as a reader follows them: every shell and Python block runs as written,
in order, in one new folder shared by the documents (README first, so that its sweeps are there
for the others' reports), with the `harness` command of this environment.

A comment on the line before a block says what the test does differently:
`<!-- test: skip REASON -->` does not run it (it needs a server, a cluster, root, or is the test
command itself), and the reason shows in pytest's summary of skipped tests;
`<!-- test: append OVERRIDES to each harness job and sweep (WHY) -->` runs each `harness` job or
sweep of the block with OVERRIDES added at its end (fewer epochs: the same commands, shorter).
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(bash|python)\n(.*?)^```$", re.S | re.M)
MARK = re.compile(r"<!-- test: (skip|append) (.*?) -->\n*$")
SUBCOMMANDS = ("report", "convergence", "tuned", "heatmap", "final-vs-lr", "steps-to-target", "linear-scaling",
               "noise-scale")


def blocks(path: Path) -> list[tuple[str, str, str | None, str | None]]:
    """Each block of the document: its language, its code, and the test's mark before it."""
    text = path.read_text()
    found = []
    for match in FENCE.finditer(text):
        mark = MARK.search(text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1] + "\n")
        found.append((match[1], match[2], *(mark.groups() if mark else (None, None))))
    return found


def appended(code: str, overrides: str) -> str:
    """The block with `overrides` added to each line that runs a harness job or sweep (before a
    comment)."""
    lines = []
    for line in code.splitlines():
        words = line.split()
        if words[:1] == ["harness"] and words[1:2] != [] and words[1] not in SUBCOMMANDS:
            command, hash_, comment = line.partition("  #")
            line = f"{command.rstrip()} {overrides}" + (f"  {hash_.strip()}{comment}" if hash_ else "")
        lines.append(line)
    return "\n".join(lines) + "\n"


CASES = [pytest.param(path, index, id=f"{path.relative_to(REPO)}#{index + 1}")
         for path in DOCS for index in range(len(blocks(path)))]


@pytest.fixture(scope="module")
def reader(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("reader")


@pytest.mark.slow
@pytest.mark.parametrize("path, index", CASES)
def test_a_documented_block_runs_as_written(path, index, reader):
    language, code, mark, argument = blocks(path)[index]
    if mark == "skip":
        pytest.skip(f"{path.name}: {argument}")
    if mark == "append":
        code = appended(code, argument.split(" to each ")[0])
    command = ["bash", "-euo", "pipefail", "-c", code] if language == "bash" else [sys.executable, "-c", code]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(command, cwd=reader, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{code}\nstdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"


def test_appended_overrides_go_to_harness_jobs_before_their_comment_and_not_to_reports():
    code = "harness -m lr=1,3  # a sweep\nharness report --experiment x\necho harness"
    assert appended(code, "epochs=2") == "harness -m lr=1,3 epochs=2  # a sweep\nharness report --experiment x\necho harness\n"


def test_the_readme_is_a_guide_of_at_most_250_lines():
    assert len((REPO / "README.md").read_text().splitlines()) <= 250


def test_every_relative_link_of_the_docs_names_a_file_of_the_repository():
    for path in DOCS:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", path.read_text()):
            assert (path.parent / target).exists(), f"{path.name} links to {target}"
