"""Running many (script, target) checks at once, with a bound, each on its own connection.

Each job is a function that runs one check with its own output buffers and deadline; one
failing or hanging target never stops the others (every wait in a check has its timeout).
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

from amiscript.signals import leave_signals_to_main_thread

SIGNAL_CHECK = 0.25  # seconds the main thread waits for jobs at a time

RESULTS = {0: "ok", 1: "failed", 2: "error", 3: "unreachable", 130: "interrupted", 143: "terminated"}


@dataclass(frozen=True, slots=True)
class Job:
    script: str
    target: str
    run: Callable[[TextIO, TextIO, threading.Event], int]  # (stdout, stderr, cancel) -> exit status


@dataclass(frozen=True, slots=True)
class Outcome:
    job: Job
    code: int
    seconds: float
    stdout: str
    stderr: str

    @property
    def result(self) -> str:
        return RESULTS.get(self.code, f"exit {self.code}")


def run_jobs(
    jobs: Sequence[Job],
    limit: int,
    on_done: Callable[[Outcome, int], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> list[Outcome]:
    """Run every job, at most ``limit`` at a time; outcomes come back in the jobs' order.

    Ctrl-C (or SIGTERM turned into an exception) stops it at once: jobs not started never
    start, running ones see the cancel flag within a fraction of a second and unwind, closing
    their connections and reaping what they spawned; then the interrupt goes on up.
    """
    # Only a run of several checks needs threads: kept out of a single run's start-up.
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    cancel = threading.Event()

    def one(job: Job) -> Outcome:
        out, err = io.StringIO(), io.StringIO()
        started = clock()
        code = job.run(out, err, cancel)
        return Outcome(job, code, clock() - started, out.getvalue(), err.getvalue())

    outcomes: dict[int, Outcome] = {}
    pool = ThreadPoolExecutor(
        max_workers=max(1, limit), thread_name_prefix="amiscript-job", initializer=leave_signals_to_main_thread
    )
    try:
        futures = {pool.submit(one, job): index for index, job in enumerate(jobs)}
        pending = set(futures)
        while pending:
            # a bounded wait: the main thread gets back to Python (and its signal handlers) often
            finished, pending = wait(pending, timeout=SIGNAL_CHECK, return_when=FIRST_COMPLETED)
            for future in finished:
                outcome = future.result()
                outcomes[futures[future]] = outcome
                if on_done is not None:
                    on_done(outcome, len(outcomes))
    except BaseException:
        cancel.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return [outcomes[index] for index in range(len(jobs))]


def worst(outcomes: Sequence[Outcome]) -> int:
    """The exit status of the whole run: the highest one (3 unreachable > 2 error > 1 failed > 0)."""
    return max((outcome.code for outcome in outcomes), default=0)


def summary_table(outcomes: Sequence[Outcome]) -> list[str]:
    rows = [("target", "script", "result", "time")] + [
        (o.job.target, o.job.script, o.result, f"{o.seconds:.2f} s") for o in outcomes
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    return [f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:<{widths[2]}}  {row[3]}" for row in rows]
