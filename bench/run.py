"""amiscript's benchmarks against Expect, pexpect and panoramisk, in one command (issue 8).

    python bench/run.py                 # everything: about 10 minutes on a quiet 2-core machine
    python bench/run.py --quick         # a smoke run in well under a minute (small sizes, few runs)
    python bench/run.py --only 2,4      # some of the benchmarks
    python bench/run.py --markdown docs/performance.md   # also write the results page

It installs what it needs first (Debian's `expect` with apt-get, panoramisk through the `bench`
extra) and byte-compiles amiscript, so start-up is measured as an installed copy runs. Each
measured client is its own process: its time comes from its own clock, its peak RSS from
``os.wait4``. Servers are separate processes too, so they do not share the client's core.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PYTHON = sys.executable
# Start-up is measured on amiscript as users get it: a regular (not editable) install in its own
# virtualenv, byte-compiled by pip. An editable install loads a path finder (pathlib, re, ...) on
# every start that a real install never does.
INSTALLED = BENCH / ".venv"
AMISCRIPT = str(INSTALLED / "bin" / "amiscript")
VMCOUNT = ROOT / "scripts" / "vmcount.yaml"
MB = 1 << 20
MIB = 1 << 20


# -- setup ------------------------------------------------------------------------------------


def setup(log: list[str]) -> None:
    """Install the peers the benchmarks compare against, if missing."""
    if shutil.which("expect") is None:
        if os.geteuid() != 0:
            raise SystemExit("bench: Debian's `expect` is missing; run `apt-get install -y expect` as root")
        log.append("installing expect (apt-get)")
        install = ["apt-get", "install", "-y", "expect"]
        if subprocess.run(install, stdout=subprocess.DEVNULL).returncode != 0:  # stale package lists?
            subprocess.run(["apt-get", "update"], check=True, stdout=subprocess.DEVNULL)
            subprocess.run(install, check=True, stdout=subprocess.DEVNULL)
    if shutil.which("telnet") is None:
        raise SystemExit("bench: a telnet client is needed for vmcount.exp: `apt-get install -y telnet`")
    try:
        import panoramisk  # noqa: F401
    except ImportError:
        log.append("installing the bench extra (panoramisk)")
        subprocess.run([PYTHON, "-m", "pip", "install", "-q", "-e", f"{ROOT}[bench]"], check=True)
    python = INSTALLED / "bin" / "python"
    if not python.exists():
        log.append(f"creating {INSTALLED} for a regular install of amiscript")
        subprocess.run([PYTHON, "-m", "venv", str(INSTALLED)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", str(ROOT)], check=True)
    # This checkout's code, every time (its dependencies are there from the first install).
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(ROOT)],
        check=True,
        stdout=subprocess.DEVNULL,
    )


# -- processes --------------------------------------------------------------------------------


class Server:
    """A server process that prints its port on its first line."""

    def __init__(self, command: Sequence[str]) -> None:
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"bench: server did not start: {' '.join(command)}")
        self.port = int(line.rsplit(":", 1)[-1].split()[-1])

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def simulator() -> Server:
    return Server([PYTHON, "-m", "amiscript", "simulate", "--port", "0", "--login-fail-delay", "0"])


def bench_server(kind: str, mb: float = 0) -> Server:
    return Server([PYTHON, str(BENCH / "servers.py"), kind, "--mb", str(mb)])


@dataclass
class Measured:
    seconds: float | None  # the client's own measurement; None if it ran out of time
    rss_mib: float
    wall: float
    cpu: float | None = None  # the client's CPU time over (about) the same part


def measure(args: Sequence[str], cap: float) -> Measured:
    """Run a client (bench/clients.py ARGS) to completion or ``cap`` seconds; its peak RSS."""
    started = time.perf_counter()
    proc = subprocess.Popen([PYTHON, str(BENCH / "clients.py"), *args], stdout=subprocess.PIPE, cwd=ROOT)
    assert proc.stdout is not None
    deadline = started + cap
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            proc.kill()
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = -9
            return Measured(None, usage.ru_maxrss / 1024, time.perf_counter() - started)
        time.sleep(0.005)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    output = proc.stdout.read().decode()
    if proc.returncode != 0:
        raise SystemExit(f"bench: client {' '.join(args)} failed ({proc.returncode}): {output}")
    reported = json.loads(output.splitlines()[-1])
    LAST_BYTES["received"] = reported.get("bytes", 0)
    return Measured(reported["seconds"], usage.ru_maxrss / 1024, wall, reported.get("cpu"))


def wall_time(command: Sequence[str], env: dict[str, str] | None = None, expect_out: str = "") -> float:
    started = time.perf_counter()
    # Not from the checkout: `python -c`/`-m` would import its amiscript instead of the installed one.
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=INSTALLED)
    seconds = time.perf_counter() - started
    if done.returncode != 0 or expect_out not in done.stdout:
        raise SystemExit(f"bench: {' '.join(command)} failed ({done.returncode}): {done.stdout}{done.stderr}")
    return seconds


# -- results ----------------------------------------------------------------------------------


@dataclass
class Row:
    bench: str
    measure: str
    amiscript: str
    peer: str = ""
    ratio: str = ""
    target: str = ""
    met: str = ""


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)  # busy PBX sizes, MB
    stream_rows: list[str] = field(default_factory=list)

    def add(self, *cells: str) -> None:
        self.rows.append(Row(*cells))
        print("  " + " | ".join(cell for cell in cells if cell), flush=True)


def verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("yes" if ok else "**no**")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


# -- 1. vmcount end to end --------------------------------------------------------------------


def bench_vmcount(res: Results, runs: int) -> None:
    print(f"1. vmcount end to end ({runs} runs each)", flush=True)
    with simulator() as sim:
        ami = [AMISCRIPT, "run", str(VMCOUNT), "--var", "mailbox=123@default", "--var", f"port={sim.port}"]
        exp = ["expect", str(BENCH / "vmcount.exp"), "123@default"]
        env = {**os.environ, "AMI_PORT": str(sim.port)}
        python = str(INSTALLED / "bin" / "python")
        bare = [python, "-c", "pass"]
        imports = [python, "-c", "import amiscript.cli"]
        # What amiscript cannot start without: its libraries and the stdlib modules it builds on.
        floor = [python, "-c", "import argparse, dataclasses, pathlib, select, socket, regex, yaml"]
        # The same script through the same telnet chain Expect drives, to show what telnet costs.
        ami_telnet = [*ami[:-2], "--target", f"telnet://127.0.0.1:{sim.port}"]
        times: dict[str, list[float]] = {
            "ami": [], "exp": [], "ami_telnet": [], "bare": [], "imports": [], "floor": []
        }  # fmt: skip
        for _ in range(2):  # warm the page cache and the simulator
            wall_time(ami, expect_out="Old messages: 0")
            wall_time(exp, env, expect_out="Old messages: 0")
        for _ in range(runs):  # interleaved, so load changes hit both alike
            times["ami"].append(wall_time(ami, expect_out="Old messages: 0"))
            times["exp"].append(wall_time(exp, env, expect_out="Old messages: 0"))
            times["ami_telnet"].append(wall_time(ami_telnet, expect_out="Old messages: 0"))
            times["bare"].append(wall_time(bare))
            times["imports"].append(wall_time(imports))
            times["floor"].append(wall_time(floor))
        med = {name: statistics.median(values) for name, values in times.items()}
        ratio = med["ami"] / med["exp"]
        res.add(
            "1 vmcount",
            "whole process, median",
            ms(med["ami"]),
            f"expect+telnet {ms(med['exp'])}",
            f"{ratio:.2f}",
            "<= 1.0",
            verdict(ratio <= 1.0),
        )
        startup = med["imports"] - med["bare"]
        conversation = med["ami"] - med["imports"]
        res.details.append(
            f"vmcount: python itself {ms(med['bare'])}, amiscript's imports {ms(startup)}, "
            f"argument parsing + script loading + conversation {ms(conversation)} (medians of {runs}). "
            f"Importing only the libraries it builds on (argparse, dataclasses, pathlib, socket, regex, PyYAML) "
            f"takes {ms(med['floor'] - med['bare'])} of those imports."
        )
        res.details.append(stalls(times["exp"], times["ami_telnet"], med["ami_telnet"], med["ami"]))
        res.details.append("The imports of one `amiscript run` (`python -X importtime`), the costliest by own time:")
        res.details.extend(f"    {line}" for line in importtime(ami))


def stalls(expect: list[float], telnet: list[float], telnet_median: float, tcp_median: float) -> str:
    """How many runs through telnet waited out a delayed ACK, which makes Expect's time bimodal.

    telnet writes each line of a packet as its own TCP segment; Nagle's algorithm holds the next
    line until the first is acknowledged, and Linux delays that ACK (up to 40 ms) once the
    connection looks interactive, because the server has nothing to answer before the blank line.
    A wait is counted against a baseline without one, so that runs that all wait are all counted:
    Expect's fastest run, but no more than NO_WAIT_EXPECT (its conversation without the wait);
    for amiscript over telnet, amiscript over tcp (which never waits) plus telnet's own start.
    """
    expect_base = min(min(expect), NO_WAIT_EXPECT)
    waited = [seconds for seconds in expect if seconds > expect_base + STALL]
    quick = [seconds for seconds in expect if seconds <= expect_base + STALL]
    telnet_base = tcp_median + TELNET_START
    slow_telnet = sum(seconds > telnet_base + STALL for seconds in telnet)
    return (
        f"Expect+telnet: {len(waited)} of {len(expect)} runs took {STALL * 1000:.0f} ms or more over "
        f"{ms(expect_base)} (median of those {ms(statistics.median(waited)) if waited else '-'}, of the others "
        f"{ms(statistics.median(quick)) if quick else '-'}): they waited for a delayed ACK, because telnet reading "
        f"its terminal line by line sends each line of a packet as its own TCP segment and Nagle's algorithm "
        f"holds the next. amiscript over `telnet://` (the same telnet, reading whole packets) took "
        f"{ms(telnet_median)}, {slow_telnet} of {len(telnet)} runs {STALL * 1000:.0f} ms or more over its "
        f"time over tcp:// plus telnet's start ({ms(telnet_base)}); over `tcp://` each packet is one write "
        f"with TCP_NODELAY."
    )


STALL = 0.025  # a run this much slower than its no-wait baseline waited for a delayed ACK (Linux: 40 ms)
NO_WAIT_EXPECT = 0.020  # Expect's vmcount through telnet without the wait takes ~9 ms on this machine
TELNET_START = 0.015  # what starting telnet (and its own exit) adds to amiscript's time over tcp://


def importtime(command: Sequence[str]) -> list[str]:
    """Where one run's imports go: the total, and the modules that cost most by themselves."""
    python = str(INSTALLED / "bin" / "python")
    done = subprocess.run(
        [python, "-X", "importtime", "-m", "amiscript", *command[1:]], capture_output=True, text=True, cwd=INSTALLED
    )
    rows = []  # (self µs, cumulative µs, depth, name)
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        own, cumulative, name = line.removeprefix("import time:").split("|")
        if own.strip().isdigit():
            depth = (len(name) - len(name.lstrip()) - 1) // 2
            rows.append((int(own), int(cumulative), depth, name.strip()))
    total = sum(cumulative for _, cumulative, depth, _ in rows if depth == 0)
    cli = next((cumulative for _, cumulative, _, name in rows if name == "amiscript.cli"), 0)
    lines = [f"{total / 1000:6.1f} ms  all imports ({cli / 1000:.1f} ms under amiscript.cli, the rest Python's own)"]
    lines += [f"{own / 1000:6.1f} ms  {name}" for own, _, _, name in sorted(rows, reverse=True)[:12]]
    return lines


# -- 2. busy PBX ------------------------------------------------------------------------------

STREAM_KINDS = {
    "action": "(a) amiscript action",
    "expect": "(b) amiscript expect",
    "pexpect": "(c) pexpect socket",
    "panoramisk": "(d) panoramisk",
}


@dataclass
class Cell:
    """One client at one size: MB/s (wall and CPU time, medians) and peak RSS; None if not run."""

    rate: float | None = None
    cpu_rate: float | None = None
    rss: float | None = None
    seconds: float | None = None

    def shown(self, cap: float) -> str:
        if self.rss is None:
            return "not run"
        if self.rate is None:
            return f"> {cap:g} s, {self.rss:.0f} MiB"
        return f"{self.rate:.0f} ({self.cpu_rate:.0f} CPU) MB/s, {self.rss:.0f} MiB"


def projected(done: dict[int, Cell], size: int) -> float:
    """Seconds a client would take at ``size``, from how its time grew over the sizes it ran
    (at least linearly): pexpect's grows with the square of the stream."""
    if any(cell.rate is None for cell in done.values()):
        return math.inf  # a smaller size already ran out of time
    timed = sorted((n, cell.seconds) for n, cell in done.items() if cell.seconds)
    if not timed:
        return 0.0
    (last, seconds), growth = timed[-1], 1.0
    if len(timed) > 1:
        before, earlier = timed[-2]
        growth = max(1.0, math.log(seconds / earlier) / math.log(last / before))
    return seconds * (size / last) ** growth


def bench_stream(res: Results, sizes: Sequence[int], cap: float) -> None:
    print(f"2. busy PBX: {', '.join(map(str, sizes))} MB of events before the answer", flush=True)
    cells: dict[str, dict[int, Cell]] = {kind: {} for kind in STREAM_KINDS}
    for size in sizes:
        with bench_server("stream", size) as server:
            for kind in STREAM_KINDS:
                if projected(cells[kind], size) > cap:
                    cells[kind][size] = Cell()  # a smaller size ran out of time or projects past the cap
                    continue
                runs = [measure([kind, str(server.port)], cap) for _ in range(3 if size <= 10 else 1)]
                cell = Cell(rss=max(run.rss_mib for run in runs))
                if all(run.seconds for run in runs):
                    cell.seconds = statistics.median(run.seconds or 0.0 for run in runs)
                    cell.rate = size * MB / cell.seconds / 1e6
                    cell.cpu_rate = size * MB / statistics.median(run.cpu or 0.0 for run in runs) / 1e6
                cells[kind][size] = cell
                print(f"  {STREAM_KINDS[kind]:22} {size:5} MB: {cell.shown(cap)}", flush=True)
    for kind, label in STREAM_KINDS.items():
        res.stream_rows.append(f"| {label} | " + " | ".join(cells[kind][size].shown(cap) for size in sizes) + " |")
    small, large = sizes[min(1, len(sizes) - 1)], sizes[-1]
    pexpect_best = max((c.rate for c in cells["pexpect"].values() if c.rate), default=None)  # generous to it
    panoramisk = cells["panoramisk"][large].rate
    for kind, floor in (("action", 250), ("expect", 100)):
        rate = cells[kind][large].rate or 0.0
        ok = bool(pexpect_best and panoramisk) and rate >= floor and rate >= 10 * pexpect_best and rate > panoramisk
        res.add(
            "2 busy PBX",
            f"{STREAM_KINDS[kind]}, {large} MB",
            f"{rate:.0f} MB/s",
            f"pexpect {pexpect_best or 0:.1f} (its best), panoramisk {panoramisk or 0:.0f} MB/s",
            f"{rate / (pexpect_best or 1):.0f}x, {rate / (panoramisk or 1):.1f}x",
            f">= {floor} MB/s, >= 10x pexpect, > panoramisk",
            verdict(ok),
        )
        base = cells[kind][small].rate
        if base and large != small:
            res.add(
                "2 busy PBX",
                f"{STREAM_KINDS[kind]}: rate at {large} MB / at {small} MB",
                f"{rate / base:.2f}",
                "",
                "",
                ">= 0.8",
                verdict(rate / base >= 0.8),
            )
        peak = max(c.rss for c in cells[kind].values() if c.rss is not None)
        label = f"{STREAM_KINDS[kind]}: peak RSS, any size"
        res.add("2 busy PBX", label, f"{peak:.0f} MiB", "", "", "< 64 MiB", verdict(peak < 64))
    res.notes.append(
        "Busy PBX cells: MB/s by wall time (and by the client's CPU time, which other load on the machine "
        "disturbs less) and the client's peak RSS; `> N s`: it did not finish within the cap; `not run`: a "
        "smaller size already ran out of time or projects past the cap."
    )


# -- 3. many targets --------------------------------------------------------------------------


def bench_many(res: Results, count: int, jobs: int) -> None:
    print(f"3. many targets: {count} checks, --jobs {jobs}, against one simulator", flush=True)
    with simulator() as sim:
        target = f"tcp://127.0.0.1:{sim.port}"
        script = [str(VMCOUNT), "--var", "mailbox=123@default"]
        many = [AMISCRIPT, "run", *script]
        for _ in range(count):
            many += ["--target", target]
        parallel = wall_time([*many, "--jobs", str(jobs)], expect_out="Old messages: 0")
        in_one = wall_time([*many, "--jobs", "1"], expect_out="Old messages: 0")
        started = time.perf_counter()
        for _ in range(count):
            wall_time([AMISCRIPT, "run", *script, "--target", target], expect_out="Old messages: 0")
        one_by_one = time.perf_counter() - started
    res.add(
        "3 many targets",
        f"{count} checks, --jobs {jobs}",
        f"{parallel:.2f} s",
        f"{count} runs one after another {one_by_one:.1f} s",
        f"1/{one_by_one / parallel:.0f}",
        "< 3 s and < 1/20",
        verdict(parallel < 3 and parallel < one_by_one / 20),
    )
    res.add("3 many targets", f"{count} checks, --jobs 1 (one process)", f"{in_one:.2f} s", "", "", "", "")


# -- 4. round trips, 5. the simulator ---------------------------------------------------------


def bench_pings(res: Results, count: int) -> None:
    print(f"4. round trips: {count} sequential Pings on one connection", flush=True)
    ours: dict[str, float] = {}
    bare: dict[str, float] = {}
    piped: dict[str, tuple[float, float]] = {}
    with simulator() as sim, bench_server("echo") as echo:
        for name, server in (("simulator", sim), ("echo server", echo)):
            ours[name] = count / _median_seconds(["ping-amiscript", str(server.port), str(count)])
            theirs = count / _median_seconds(["ping-panoramisk", str(server.port), str(count)])
            bare[name] = count / _median_seconds(["ping-raw", str(server.port), str(count)])
            res.add(
                "4 round trips",
                f"Pings/s vs {name}",
                f"{ours[name]:.0f}/s",
                f"panoramisk {theirs:.0f}/s",
                f"{ours[name] / theirs:.2f}",
                ">= 5000/s, > panoramisk",
                verdict(ours[name] >= 5000 and ours[name] > theirs),
            )
        print("5. the simulator's own ceiling", flush=True)
        for name, server in (("simulator", sim), ("echo server", echo)):
            burst = count * 5
            seconds = _median_seconds(["ping-pipelined", str(server.port), str(burst)])
            piped[name] = (burst / seconds, LAST_BYTES["received"] / seconds / 1e6)
    (sim_rate, sim_mbps), (echo_rate, echo_mbps) = piped["simulator"], piped["echo server"]
    res.add(
        "5 simulator",
        f"Pings/s it answers, {count * 5} written at once",
        f"{sim_rate:.0f}/s, {sim_mbps:.1f} MB/s",
        f"echo server {echo_rate:.0f}/s, {echo_mbps:.1f} MB/s",
        f"{sim_rate / ours['simulator']:.1f}x amiscript's",
        ">= 3x amiscript's sequential rate",
        verdict(sim_rate >= 3 * ours["simulator"]),
    )
    res.add(
        "5 simulator",
        "sequential Pings/s it answers a bare socket client",
        f"{bare['simulator']:.0f}/s",
        f"echo server {bare['echo server']:.0f}/s",
        f"{bare['simulator'] / bare['echo server']:.2f}",
        "",
        "",
    )
    res.notes.append(
        "Ratios: benchmark 1 is amiscript's time over expect's (lower is better); 2 and 4, amiscript's "
        "rate over the peer's (higher is better); 3, the parallel run's share of the sequential time; "
        "5, the simulator's pipelined ceiling over amiscript's sequential rate against it, and its sequential "
        "rate over the echo server's. pexpect's best rate at any size is "
        "the one compared, which favours it: it slows down as its buffer grows."
    )


LAST_BYTES = {"received": 0}  # what the last pipelined client received, for MB/s


def _median_seconds(args: list[str], repeats: int = 3) -> float:
    values = [measure(args, 120).seconds for _ in range(repeats)]
    if any(value is None for value in values):
        raise SystemExit(f"bench: {' '.join(args)} ran out of time")
    return statistics.median(v for v in values if v is not None)


# -- the page ---------------------------------------------------------------------------------


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()
    return (
        f"{os.cpu_count()} CPUs ({cpu}), Linux {platform.release()}, Python {platform.python_version()}, "
        f"load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )


def table(rows: list[Row]) -> list[str]:
    lines = [
        "| benchmark | measure | amiscript | peer (same run) | ratio | target | met |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(f"| {r.bench} | {r.measure} | {r.amiscript} | {r.peer} | {r.ratio} | {r.target} | {r.met} |")
    return lines


START, END = "<!-- bench/run.py writes from here -->", "<!-- to here -->"


def markdown(res: Results, command: str, when: str) -> str:
    """The measured part of docs/performance.md (between the markers; the prose is by hand)."""
    parts = [
        START,
        "",
        f"Measured {when} on {machine()}, with:",
        "",
        "```sh",
        command,
        "```",
        "",
        *table(res.rows),
        "",
    ]
    if res.stream_rows:
        parts += [
            "Busy PBX, every size:",
            "",
            "| client | " + " | ".join(f"{size} MB" for size in res.sizes) + " |",
            "| --- | " + " | ".join("---" for _ in res.sizes) + " |",
            *res.stream_rows,
            "",
        ]
    block: list[str] = []
    for line in res.details:
        if line.startswith("    "):
            block.append(line[4:])
            continue
        if block:
            parts += ["", "```", *block, "```", ""]
            block = []
        parts.append(f"- {line}")
    if block:
        parts += ["", "```", *block, "```"]
    parts += ["", *(f"{note}\n" for note in res.notes), END]
    return "\n".join(parts)


def write_page(path: Path, section: str) -> None:
    """Replace the measured part of the page, or start the page if it has none yet."""
    text = path.read_text() if path.exists() else "# Performance\n\n"
    if START in text and END in text:
        text = text[: text.index(START)] + section + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes and few runs: a smoke test of the harness")
    parser.add_argument("--only", default="1,2,3,4", help="which benchmarks (5 runs with 4), comma-separated")
    parser.add_argument("--markdown", metavar="FILE", help="write the results page (docs/performance.md)")
    parser.add_argument("--note", default="", help="a line to add under the table (such as the machine's load)")
    parser.add_argument("--no-setup", action="store_true", help="skip installing expect and panoramisk")
    args = parser.parse_args(argv)
    only = {part.strip() for part in args.only.split(",")}
    log: list[str] = []
    if not args.no_setup:
        setup(log)
    res = Results()
    res.sizes = [1, 10] if args.quick else [1, 10, 100, 1000]
    when = time.strftime("%Y-%m-%d %H:%M %Z")
    if "1" in only:
        bench_vmcount(res, 5 if args.quick else 40)
    if "2" in only:
        bench_stream(res, res.sizes, 20 if args.quick else 120)
    if "3" in only:
        bench_many(res, 20 if args.quick else 200, 50)
    if "4" in only or "5" in only:
        bench_pings(res, 1000 if args.quick else 5000)
    if args.note:
        res.notes.insert(0, args.note)
    print()
    print("\n".join(table(res.rows)))
    for line in [*res.stream_rows, *res.details]:
        print(line)
    if args.markdown:
        command = "python bench/run.py" + (" --quick" if args.quick else "") + f" --markdown {args.markdown}"
        write_page(Path(args.markdown), markdown(res, command, when))
        print(f"wrote {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
