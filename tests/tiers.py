"""`make test`: every test tier, the slow ones in parallel processes, one summary at the end.

Pytest processes share the 2-core machine: the fault experiments and end-to-end runs (which
mostly wait on brokers, processes and timeouts) beside the unit, deploy, interop and integration
tiers, and beside them the few tests that prove the fallback broker (Tansu). Tests that restart
PostgreSQL (marker ``pg_restart``) run after those, alone. Each group writes its whole output to a
file, printed in turn at the end; the last line adds them up. Arguments after ``--`` go to every
pytest process; ``LER_TEST_SERIAL=1`` runs the groups one after another instead.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run after the parallel groups, alone: they restart a server the other tiers use.
SERIAL: dict[str, tuple[list[str], dict[str, str]]] = {
    "postgres restart": (["tests/faults", "-m", "pg_restart"], {}),
}
GROUPS: dict[str, tuple[list[str], dict[str, str]]] = {
    "faults+e2e": (["tests/faults", "tests/e2e", "-m", "not pg_restart"], {}),
    "unit+deploy+interop+integration": (
        ["tests/unit", "tests/deploy", "tests/interop", "tests/integration"],
        {},
    ),
    # Tansu stays the fallback broker where no JDK is present (make run falls back to it), so the
    # pipeline and `ler run` are proven on it too; everything else runs on Apache Kafka only.
    "fallback broker (Tansu)": (
        ["tests/integration/test_wallet_pipeline.py", "tests/e2e/test_platform.py"],
        {"LER_TEST_BROKER": "tansu", "LER_EMBEDDED_BROKER": "tansu"},
    ),
}
GROUP_LIMIT_SECONDS = 40 * 60  # a hung group fails the run instead of holding CI
Run = tuple[str, "subprocess.Popen[bytes]", Path]
COUNTS = re.compile(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed|deselected)")


def launch(name: str, args: list[str], env: dict[str, str], folder: Path) -> Run:
    out = folder / f"{name.split()[0]}.log"
    with open(out, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "pytest", *args],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return name, process, out


def finish(run: Run, deadline: float) -> int:
    """Wait for a group (killing it at the deadline); its exit code."""
    name, process, out = run
    try:
        return process.wait(max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        process.kill()
        with open(out, "a") as log:
            log.write(f"\n{name}: killed after {GROUP_LIMIT_SECONDS // 60} min\n")
        return process.wait()


def main(extra: list[str]) -> int:
    serial = os.environ.get("LER_TEST_SERIAL") == "1"
    started = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix="ler-tiers-"))
    done: list[tuple[Run, int]] = []
    parallel: list[Run] = []
    for name, (paths, env) in GROUPS.items():
        parallel.append(launch(name, [*paths, *extra], env, folder))
        if serial:
            done.append((parallel[-1], finish(parallel.pop(), started + GROUP_LIMIT_SECONDS)))
    done += [(run, finish(run, started + GROUP_LIMIT_SECONDS)) for run in parallel]
    for name, (paths, env) in SERIAL.items():
        run = launch(name, [*paths, *extra], env, folder)
        done.append((run, finish(run, time.monotonic() + GROUP_LIMIT_SECONDS)))
    return report(done, started)


def report(done: list[tuple[Run, int]], started: float) -> int:
    """Each group's output in turn, then one closing line adding them up."""
    totals: dict[str, int] = {}
    worst = 0
    for (name, _, out), code in done:
        text = out.read_text(errors="replace")
        print(f"\n{'=' * 30} {name} (exit {code}) {'=' * 30}\n{text}", flush=True)
        summary = [line for line in text.splitlines() if re.search(r" in [\d.]+s", line)]
        for count, word in COUNTS.findall(summary[-1] if summary else ""):
            key = "errors" if word.startswith("error") else word
            totals[key] = totals.get(key, 0) + int(count)
        # pytest's 5 ("no tests collected") in one group is not a failure of the whole run.
        if code not in (0, 5):  # killed (negative) or failed
            worst = worst or (code if code > 0 else 1)
    minutes = (time.monotonic() - started) / 60
    print(f"\nall tiers finished in {minutes:.1f} min")
    failed = totals.get("failed", 0) + totals.get("errors", 0)
    if worst and not failed:
        failed = 1  # a crashed pytest process counts as a failure
    line = f"{totals.get('passed', 0)} passed, {failed} failed"
    if totals.get("skipped"):
        line += f", {totals['skipped']} skipped"
    print(line)
    return worst


if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(main(args[args.index("--") + 1 :] if "--" in args else args))
