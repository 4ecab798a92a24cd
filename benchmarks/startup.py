"""How long a user waits before anything happens: `harness --help`, a study's dry run and
`import harness` (the network and training), each a new Python process, against the import of
MLflow alone, the arms alternating over --rounds rounds (at least 5). Prints the median and
spread of each. Targets: `--help` and the dry run take less time than importing MLflow alone;
`import harness` imports neither MLflow, Hydra nor pandas (tests/test_imports.py checks that).
With --base, the same commands also run another checkout's code, alternating.

    python benchmarks/startup.py
    python benchmarks/startup.py --base /tmp/old-checkout
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from timing import load, pin_blas, rounds, spread, timed, with_code

COMMANDS = {
    "import mlflow": ["-c", "import mlflow"],
    "harness --help": ["-m", "harness", "--help"],
    "lr_sweep dry run": ["-m", "harness", "-m", "+experiment=lr_sweep", "dry_run=true"],
    "import harness": ["-c", "import harness; from harness.train import train; harness.Network.from_sizes([784, 30, 10])"],
}


def arm(arguments: list[str], code: Path | None):
    """One new process running `arguments`, with `code` first on its path, in an empty folder."""
    environment = with_code(code)

    def run() -> dict[str, float]:
        with tempfile.TemporaryDirectory() as folder:
            wall, done = timed(subprocess.run, [sys.executable, *arguments], cwd=folder, capture_output=True, env=environment)
        if done.returncode:
            sys.exit(f"{' '.join(arguments)} failed:\n{done.stderr.decode()[-2000:]}")
        return {"seconds": wall}

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, help="another checkout whose code runs the same commands, alternating")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of every arm (at least 5)")
    args = parser.parse_args()
    print(f"{pin_blas(1)}; at the start: {load()}")
    arms = {name: arm(arguments, None) for name, arguments in COMMANDS.items()}
    if args.base:
        arms |= {f"{name} (base)": arm(arguments, args.base) for name, arguments in COMMANDS.items() if name != "import mlflow"}
    samples = rounds(arms, args.rounds)
    print(f"at the end:   {load()}")
    width = max(map(len, samples))
    for name, figures in samples.items():
        print(f"{name:<{width}}  {spread(figures['seconds'])}")


if __name__ == "__main__":
    main()
