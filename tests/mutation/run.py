"""Mutation testing of advcl's objectives, losses and perturbers: ``make mutation`` (issue 12).

Each mutant in ``tests/mutation/mutants.toml`` plants one wiring error: an exact snippet of one source file and its
replacement, the tests that should notice it, and a one-line description. A mutant argued to change nothing a
user could observe carries ``equivalent = "<the argument>"`` and is not run. For every other mutant this script
writes the mutated file into a temporary copy of the ``advcl`` package (the working tree is never touched), runs
the mutant's tests with ``pytest -x -q`` in a child process that imports ``advcl`` from that copy, and counts the
mutant killed when they fail (or run past ``--timeout``). It prints one JSON object: total, equivalent, killed,
survived (their names) and the kill rate over the non-equivalent mutants.

A mutant whose original snippet is not found exactly once in its file is refused before anything runs (exit 2):
the list must follow the code. Before the mutants, the union of their tests runs once on the unmutated copy; if
that fails, no kill would mean anything (exit 1).

Children are forked from a process that has already imported torch, transformers and pytest (never advcl), so a
mutant costs its tests' run time, not an interpreter start.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MUTANTS = Path(__file__).with_name("mutants.toml")


@dataclass
class Mutant:
    name: str
    file: str
    original: str
    replacement: str
    description: str
    tests: list[str] = field(default_factory=list)
    equivalent: str = ""


class ListError(Exception):
    """The mutant list does not fit the code (or is malformed)."""


def load_mutants(path: Path = MUTANTS, root: Path = ROOT) -> list[Mutant]:
    """The mutants of ``path``, each checked against the code under ``root``: its snippet found exactly once."""
    data = tomllib.loads(path.read_text())
    default_tests = {file: entry["tests"] for file, entry in data.get("files", {}).items()}
    mutants, names = [], set()
    for entry in data.get("mutant", []):
        entry = dict(entry)
        entry.setdefault("tests", default_tests.get(entry.get("file"), []))
        try:
            mutant = Mutant(**entry)
        except TypeError as exc:
            raise ListError(f"mutant {entry.get('name', '?')}: {exc}") from None
        if mutant.name in names:
            raise ListError(f"mutant {mutant.name}: the name is used twice")
        names.add(mutant.name)
        if mutant.original == mutant.replacement:
            raise ListError(f"mutant {mutant.name}: the replacement equals the original")
        source = root / mutant.file
        if not source.is_file():
            raise ListError(f"mutant {mutant.name}: {mutant.file} does not exist")
        found = source.read_text().count(mutant.original)
        if found != 1:
            raise ListError(f"mutant {mutant.name}: its original snippet occurs {found} times in {mutant.file}, not once")
        if not mutant.equivalent and not mutant.tests:
            raise ListError(f"mutant {mutant.name}: no tests to run")
        mutants.append(mutant)
    return mutants


def preload() -> None:
    """Import what every child needs and is slow to import, so that forks start warm. Never advcl itself."""
    import pytest  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401
    from transformers.models.bert import modeling_bert  # noqa: F401


def run_tests(package_root: Path, tests: list[str], timeout: float, log: Path) -> str:
    """Run ``tests`` in a forked child importing advcl from ``package_root``: "passed", "failed" or "timeout"."""
    pid = os.fork()
    if pid == 0:  # child
        try:
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            sys.path.insert(0, str(package_root))
            os.chdir(ROOT)
            import advcl

            if not Path(advcl.__file__).resolve().is_relative_to(package_root.resolve()):
                print(f"advcl imported from {advcl.__file__}, not from the mutated copy", flush=True)
                os._exit(3)
            import pytest

            code = pytest.main(["-x", "-q", "-p", "no:cacheprovider", *tests])
            sys.stdout.flush()
            os._exit(int(code))
        except BaseException as exc:  # anything at all: the child must never return into the parent's loop
            print(f"child error: {exc!r}", flush=True)
            os._exit(4)
    deadline = time.monotonic() + timeout
    try:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return "timeout"
            time.sleep(0.05)
    except KeyboardInterrupt:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    code = os.waitstatus_to_exitcode(status)
    if code == 3:
        raise ImportError(log.read_text().strip())
    return "passed" if code == 0 else "failed"


def main(argv: list[str] | None = None) -> int:
    try:
        return run(argv)
    except KeyboardInterrupt:
        print("mutation: interrupted", file=sys.stderr)
        return 130
    except ImportError as exc:  # the child did not import the mutated copy: no result would mean anything
        print(f"mutation: {exc}", file=sys.stderr)
        return 1


def run(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", default=[], help="run only these mutants (repeatable)")
    parser.add_argument("--match", default="", help="run only mutants whose name contains this text")
    parser.add_argument("--file", default="", help="run only mutants of files whose path contains this text")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per mutant; past it, killed")
    parser.add_argument("--logs", type=Path, help="keep each mutant's pytest output in this folder")
    parser.add_argument("--no-baseline", action="store_true", help="skip the run of the tests on unmutated code")
    args = parser.parse_args(argv)
    try:
        mutants = load_mutants()
    except (ListError, tomllib.TOMLDecodeError, OSError) as exc:
        print(f"mutation: {exc}", file=sys.stderr)
        return 2
    unknown = set(args.only) - {m.name for m in mutants}
    if unknown:
        print(f"mutation: no mutant named {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    selected = [m for m in mutants if (not args.only or m.name in args.only) and args.match in m.name and args.file in m.file]
    started = time.monotonic()
    preload()
    with tempfile.TemporaryDirectory(prefix="advcl-mutation-") as tmp:
        package_root = Path(tmp) / "src"
        shutil.copytree(ROOT / "advcl", package_root / "advcl", ignore=shutil.ignore_patterns("__pycache__"))
        logs = args.logs or Path(tmp) / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
        sys.dont_write_bytecode = True
        runnable = [m for m in selected if not m.equivalent]
        if not args.no_baseline and runnable:
            union = sorted({t for m in runnable for t in m.tests})
            if run_tests(package_root, union, args.timeout * 4, logs / "baseline.log") != "passed":
                print(f"mutation: the tests fail without any mutant ({', '.join(union)}); see "
                      f"{logs / 'baseline.log'}" if args.logs else "mutation: the tests fail without any mutant",
                      file=sys.stderr)
                return 1
        killed, survived, timeouts = [], [], []
        for number, mutant in enumerate(runnable, 1):
            target = package_root / mutant.file
            original = target.read_text()
            target.write_text(original.replace(mutant.original, mutant.replacement, 1))
            try:
                outcome = run_tests(package_root, mutant.tests, args.timeout, logs / f"{mutant.name}.log")
            finally:
                target.write_text(original)
            (killed if outcome != "passed" else survived).append(mutant.name)
            if outcome == "timeout":
                timeouts.append(mutant.name)
            print(f"[{number}/{len(runnable)}] {mutant.name}: {'survived' if outcome == 'passed' else 'killed'}",
                  file=sys.stderr, flush=True)
    total_run = len(killed) + len(survived)
    report = {
        "total": len(selected),
        "equivalent": len(selected) - len(runnable),
        "killed": len(killed),
        "survived": survived,
        "timeouts": timeouts,
        "kill_rate": round(len(killed) / total_run, 4) if total_run else None,
        "seconds": round(time.monotonic() - started, 1),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
