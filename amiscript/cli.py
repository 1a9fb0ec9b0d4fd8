"""The command line: parse arguments, assemble the pieces, map errors to exit codes.

The only module that imports everything; nothing imports it. ``main(argv)`` returns the exit
status instead of exiting, so tests can call it directly.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from amiscript import __version__
from amiscript.engine import Interpreter, TargetOverride
from amiscript.engine.runner import RESULTS, Job, Outcome, run_jobs, summary_table, worst
from amiscript.engine.session import Cancelled
from amiscript.errors import AmiscriptError, Diagnostic, ScriptError, ScriptErrors, TransportError, UsageError
from amiscript.frontend import given_values, opener, parse_target, parse_var_options, read_vars_file, simulated_target
from amiscript.report import HumanReport
from amiscript.report.json_report import RunEntry, write_report
from amiscript.script import Script, load_script
from amiscript.script.model import MAX_SECONDS
from amiscript.script.paths import is_dir, is_file
from amiscript.script.yamlnodes import YList, YMap, load_yaml_file
from amiscript.signals import STOP_SIGNALS
from amiscript.transports.base import TlsOptions

if TYPE_CHECKING:
    import ssl

PROG = "amiscript"
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


_RESULT_WRITTEN = False  # a Nagios plugin line is out: see _write_plugin_line


class Terminated(BaseException):
    """SIGTERM, turned into an exception so that spawned children are reaped on the way out."""


RUN_EPILOG = """\
examples:
  amiscript run scripts/vmcount.yaml --var mailbox=123@default
  amiscript run scripts/vmcount.yaml --var mailbox=123@default --simulate
  amiscript run scripts/vmcount.yaml --var mailbox=123 --target tcp://10.0.0.5:5038 -v
  amiscript run scripts/vmcount.yaml --var mailbox=123 --target telnet://10.0.0.5:5038
  AMI_SECRET=s3cret amiscript run check.yaml     # script uses ${env:AMI_SECRET}

exit status:
  0  every step passed
  1  a step failed (a `fail` step, or a timeout or end of file with no handler)
  2  usage or script error: nothing was sent
  3  connection or transport error that the script did not handle
"""


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so main() stays the one place that exits."""

    def error(self, message: str) -> None:  # type: ignore[override]
        command = self.prog.removeprefix(PROG).strip()  # main() already says "amiscript: error:"
        raise UsageError(f"{command}: {message}" if command else message, hint=f"see `{self.prog} --help`")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Expect-style conversations with the Asterisk Manager Interface, written as YAML.",
        epilog="Run `amiscript COMMAND --help` for each command. Docs: docs/language.md",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = commands.add_parser(
        "run",
        help="run a script against a PBX (or the built-in simulator)",
        description="Connect, run the script's steps, and exit with its result.",
        epilog=RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "scripts",
        nargs="+",
        metavar="SCRIPT",
        help="YAML scripts to run; a directory stands for the *.yaml files directly in it",
    )
    run.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a variable the script declares (repeatable; overrides --vars-file)",
    )
    run.add_argument("--vars-file", metavar="FILE", help="a YAML mapping of variable names to values")
    run.add_argument(
        "--target",
        metavar="URL",
        action="append",
        default=[],
        help="connect here instead of the script's `connect:`: tcp://HOST:PORT, tls://HOST[:PORT] (AMI over "
        "TLS, default port 5039), or telnet://HOST:PORT to go through the telnet client as the book does; "
        "repeat it to check several PBXs",
    )
    _add_tls_options(run, "tls:// targets and `transport: tls`; over the script's `connect:`")
    run.add_argument(
        "--inventory",
        metavar="FILE",
        help="a YAML list of targets, each with a name, a url and its own vars (see docs/ci.md)",
    )
    run.add_argument(
        "--jobs", type=int, default=4, metavar="N", help="with several scripts or targets, run N at a time (default 4)"
    )
    run.add_argument(
        "--simulate",
        action="store_true",
        help="start the built-in AMI simulator on a free loopback port and run against it; "
        "with --target, only its scheme counts (--simulate --target telnet://)",
    )
    run.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="default expect timeout, overriding the script's `timeout:` (steps with their own keep it)",
    )
    run.add_argument(
        "--format",
        choices=("text", "nagios"),
        default="text",
        help="nagios: print one plugin line `SERVICE STATUS: text | perfdata` and exit 0/1/2/3 "
        "(OK/WARNING/CRITICAL/UNKNOWN), for Nagios, Icinga, Naemon, Zabbix agents and Sensu",
    )
    run.add_argument(
        "--transcript",
        metavar="FILE",
        help="write every byte sent and received, with direction and time, secrets masked (JSON Lines; "
        "one script and target)",
    )
    run.add_argument(
        "--junit",
        metavar="FILE",
        help="also write JUnit XML for CI servers: one testcase per script and target (docs/reports.md)",
    )
    run.add_argument(
        "--json",
        metavar="FILE",
        help="also write the results as JSON: each run's result, steps, times and captures, secrets masked "
        "(format: docs/reports.md)",
    )
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="print what each step would send and wait for, variables resolved and secrets masked, "
        "without connecting; exit 0 if the script and its variables are valid, else 2",
    )
    _add_include_path(run)
    run.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show the conversation on stderr (>> sent, << received; secrets masked)",
    )

    check = commands.add_parser(
        "check",
        help="validate scripts without connecting",
        description="Load and validate each script without connecting, and report every problem of every "
        "file as FILE:LINE:COL: error|warning: message (hint). Errors stop a script from running; warnings "
        "point at likely mistakes (steps that never run, captures never used, a secret printed). "
        "Exit 2 if any error, else 0.",
    )
    check.add_argument("scripts", nargs="+", metavar="SCRIPT")
    _add_include_path(check)
    check.add_argument(
        "--format", choices=("text", "json"), default="text", help="text (default) or json for editors and CI"
    )

    commands.add_parser(
        "schema",
        help="print the JSON Schema of the script language (for editors)",
        description="Print the JSON Schema of the script language: point your editor's YAML support at it for "
        "completion, hover help and checks as you type (see docs/editors.md).",
    )
    new = commands.add_parser(
        "new",
        help="write a commented starter script",
        description="Write NAME.yaml (or the path given): a commented script that logs in, runs one action "
        "and checks its answer. It passes `check` and runs with `run --simulate`.",
    )
    new.add_argument("name", metavar="NAME", help="the script's name, or a path ending in .yaml")
    new.add_argument("--force", action="store_true", help="overwrite the file if it exists")

    _add_console_commands(commands)

    sim = commands.add_parser(
        "simulate",
        help="serve the built-in AMI simulator",
        description="An AMI server that answers like Asterisk, for writing and testing scripts offline. "
        "Prints `listening on HOST:PORT` once ready and serves until interrupted (Ctrl-C).",
    )
    sim.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    sim.add_argument("--port", type=int, default=5038, help="port to listen on; 0 picks a free one (default 5038)")
    sim.add_argument(
        "--manager-conf", metavar="FILE", help="users from an Asterisk manager.conf (default: the book's [admin])"
    )
    sim.add_argument("--state", metavar="FILE", help="YAML file of mailboxes (default: built-in state)")
    sim.add_argument(
        "--tls-cert", metavar="FILE", help="serve AMI over TLS with this PEM certificate (chain), as tlscertfile"
    )
    sim.add_argument("--tls-key", metavar="FILE", help="its private key, if not in --tls-cert (tlsprivatekey)")
    sim.add_argument(
        "--tls-client-ca",
        metavar="FILE",
        help="with --tls-cert: require every client to show a certificate signed by a CA in this PEM file",
    )
    sim.add_argument(
        "--command-style",
        default="modern",
        metavar="STYLE",
        help="answer Command as Asterisk 14+ does (modern: Output headers) or as 13 and older "
        "(follows: Response: Follows and a raw body)",
    )
    sim.add_argument(
        "--login-fail-delay",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="wait before answering a failed login, as Asterisk does (default 1.0)",
    )
    sim.add_argument(
        "--auth-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="close sessions that do not log in within this time, as Asterisk's authtimeout (default 30)",
    )
    return parser


def _add_console_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    console = commands.add_parser(
        "console",
        help="type AMI actions at a prompt (the book's telnet session, with editing and completion)",
        description="Connect, log in, and send what you type: `Ping`, `MailboxCount Mailbox=123@default`, "
        '`Command "core show channels"`, or raw `Action: Ping` lines and an empty line. Answers and events '
        "are shown as they come. /help lists the console's commands; Ctrl-D logs off. See docs/console.md.",
    )
    record = commands.add_parser(
        "record",
        help="a console session that is saved as a script `amiscript run` can replay",
        description="The console, writing each action you send and the stable parts of its answer to FILE "
        "as a script (the secret as ${env:NAME}, never its value). See docs/console.md.",
    )
    record.add_argument("file", metavar="FILE.yaml", help="the script to write")
    record.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    for sub in (console, record):
        sub.add_argument(
            "--target",
            metavar="URL",
            help="tcp://HOST:PORT, tls://HOST[:PORT] (AMI over TLS, default port 5039) or telnet://HOST:PORT "
            "(default tcp://127.0.0.1:5038)",
        )
        sub.add_argument(
            "--simulate", action="store_true", help="start the built-in simulator and connect to it (user admin)"
        )
        sub.add_argument("--username", metavar="NAME", help="the manager.conf user (asked for if not given)")
        sub.add_argument(
            "--secret-env", metavar="NAME", help="read the secret from this environment variable (else it is asked for)"
        )
        sub.add_argument(
            "--auth", choices=("plain", "md5"), default="plain", help="md5: the secret never crosses the wire"
        )
        sub.add_argument(
            "--var", action="append", default=[], metavar="NAME=VALUE", help="a value typed text can use as ${NAME}"
        )
        sub.add_argument(
            "--timeout",
            type=float,
            default=10.0,
            metavar="SECONDS",
            help="wait this long for the banner and each answer (default 10)",
        )
        _add_tls_options(sub, "tls:// targets")


def _add_tls_options(command: argparse.ArgumentParser, applies: str) -> None:
    """The TLS options, the same for every command that connects; _tls_options reads them."""
    tls = command.add_argument_group(f"TLS ({applies})")
    tls.add_argument(
        "--cacert", metavar="FILE", help="trust the CA certificates in this PEM file instead of the system's"
    )
    tls.add_argument("--cert", metavar="FILE", help="client certificate (PEM), for servers that ask for one")
    tls.add_argument("--key", metavar="FILE", help="the client certificate's unencrypted key, if not in --cert")
    tls.add_argument(
        "--server-name",
        metavar="NAME",
        help="the name the server's certificate must hold (and SNI), when it differs from the host connected to",
    )
    tls.add_argument(
        "--insecure",
        action="store_true",
        help="do not verify the server's certificate (warns on stderr; for tests only)",
    )


def _add_include_path(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--include-path",
        action="append",
        default=[],
        metavar="DIR",
        help="also allow `include` to read from DIR (repeatable); by default only from the script's own "
        "folder and the folders its `include_paths:` lists",
    )


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exit_:  # --help and --version
            return int(exit_.code or 0)
        except UsageError as exc:
            scripts = _nagios_scripts(parser, argv)
            if scripts is None:
                raise
            return _nagios_unknown(scripts, exc, out)
        if args.command == "run":
            try:
                _check_include_paths(args.include_path)
                return _run(args, out, err)
            except AmiscriptError as exc:
                if args.format != "nagios":
                    raise
                return _nagios_unknown(args.scripts, exc, out)
            except (KeyboardInterrupt, Terminated) as stop:  # before the check started (--simulate)
                if args.format != "nagios" or _RESULT_WRITTEN:
                    raise
                return _nagios_stopped(Path(args.scripts[0]).stem.upper(), stop, out, err)
        if args.command == "check":
            _check_include_paths(args.include_path)
            return _check(args.scripts, args.format, out, args.include_path)
        if args.command == "simulate":
            return _simulate(args, out)
        if args.command == "schema":
            from amiscript.script.schema import schema_text

            out.write(schema_text())
            return 0
        if args.command == "new":
            return _new(args.name, args.force, out)
        if args.command in ("console", "record"):
            from amiscript.console.command import run as run_console

            # at a prompt Ctrl-C clears the line, every time: not the one-shot stop of a run
            signal.signal(signal.SIGINT, signal.default_int_handler)
            return run_console(args, parse_var_options(args.var, "--var"), _tls_options(args, err), out)
        parser.print_help(out)
        return 2
    except AmiscriptError as exc:
        return _report_error(exc, err)
    except KeyboardInterrupt:
        err.write(f"{PROG}: interrupted\n")
        return EXIT_INTERRUPTED
    except Terminated:
        err.write(f"{PROG}: terminated\n")
        return EXIT_TERMINATED


def _check_include_paths(folders: Sequence[str]) -> None:
    for folder in folders:
        if not is_dir(Path(folder)):
            raise UsageError(f"--include-path {folder}: not a folder")


def _report_error(exc: AmiscriptError, err: TextIO) -> int:
    """The one place an error becomes lines on stderr and an exit status."""
    problems = exc.problems if isinstance(exc, ScriptErrors) else [exc]
    for problem in problems:
        err.write(f"{PROG}: error: {problem}\n")
    for line in exc.details:
        err.write(f"{line}\n")
    return exc.exit_code


def main_entry() -> None:
    signal.signal(signal.SIGINT, _stop_on_signal)
    signal.signal(signal.SIGTERM, _stop_on_signal)
    try:
        code = main()
        # decided: a late signal must not turn it into 130/143, nor kill the exit (Python puts
        # the default handlers back while it shuts down)
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        sys.stdout.flush()
    except (KeyboardInterrupt, Terminated) as stop:  # arrived outside main's own handling
        code = EXIT_INTERRUPTED if isinstance(stop, KeyboardInterrupt) else EXIT_TERMINATED
    except BrokenPipeError:
        # the reader went away (`| head`); do not print a traceback about it
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = 1
    sys.exit(code)


def _stop_on_signal(signum: int, frame: object) -> None:
    """The first Ctrl-C or SIGTERM unwinds the run: Logoff if logged in, close, reap children.
    More of them meanwhile are ignored, so that short, bounded cleanup is not cut in half;
    so are those after a plugin line was written (its status is the exit status)."""
    if _RESULT_WRITTEN:
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt if signum == signal.SIGINT else Terminated


# -- run ------------------------------------------------------------------------------------


def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.timeout is not None and not 0 < args.timeout <= MAX_SECONDS:
        raise UsageError(f"--timeout must be greater than 0 and at most {MAX_SECONDS:g} seconds, not {args.timeout:g}")
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    paths = _script_paths(args.scripts)
    variables = read_vars_file(args.vars_file) if args.vars_file else {}
    variables.update(parse_var_options(args.var, "--var"))
    args.load = _Scripts(args.include_path)
    targets = [_Target(url, parse_target(url, scheme_only=args.simulate), {}) for url in args.target]
    if args.inventory:
        targets += _read_inventory(args.inventory, scheme_only=args.simulate)
    args.tls = _tls_options(args, err, used=lambda: _may_use_tls(args, paths, targets))
    if args.simulate and any(target.override.transport == "tls" for target in targets):
        err.write(f"{PROG}: note: the built-in simulator speaks plain AMI: tls:// targets run over TCP\n")
    started = time.time()
    single = len(paths) == 1 and len(targets) <= 1
    if args.transcript is not None and not single:
        raise UsageError("--transcript records one conversation: give one script and at most one target")
    if args.format == "nagios":
        if not single or args.dry_run:
            raise UsageError("--format nagios checks one script against one target (no --dry-run)")
        if args.json is not None or args.junit is not None or args.transcript is not None:
            raise UsageError(
                "--format nagios prints the plugin line only; --json, --junit and --transcript go with the "
                "normal format"
            )
        with _maybe_simulator(args.simulate) as address:
            return _run_nagios(args, paths[0], targets[0] if targets else None, variables, address, out, err)
    from amiscript.report.paths import check_report_paths

    reports = [("--json", args.json), ("--junit", args.junit), ("--transcript", args.transcript)]
    check_report_paths(reports, [*paths, *filter(None, [args.vars_file, args.inventory])])
    if single and args.dry_run:
        return _dry_run(args, paths[0], targets[0] if targets else None, variables, out)
    if not single:
        _check_declared_somewhere(paths, variables, args.load)
    pairs = [(path, target) for path in paths for target in (targets or [None])]
    entries: dict[int, RunEntry] = {}
    try:
        if single:
            return _run_one(args, *pairs[0], variables, entries, started, out, err)
        return _run_many(args, pairs, variables, entries, started, out, err)
    except (KeyboardInterrupt, Terminated) as stop:
        # CI reads the reports: an interrupted run must not leave the previous run's result there
        code = EXIT_INTERRUPTED if isinstance(stop, KeyboardInterrupt) else EXIT_TERMINATED
        _write_reports(args, _stopped(pairs, entries, code), started)
        raise


class _Scripts:
    """The scripts of one `run`, each read once for every use (the variable and TLS checks,
    each target's job; a Script is a frozen value). One that does not load raises each time."""

    def __init__(self, include_paths: Sequence[str]) -> None:
        self._include_paths = include_paths
        self._loaded: dict[str, Script] = {}

    def __call__(self, path: str) -> Script:
        if path not in self._loaded:
            self._loaded[path] = load_script(path, include_paths=self._include_paths)
        return self._loaded[path]


def _run_one(
    args: argparse.Namespace,
    path: str,
    target: _Target | None,
    variables: dict[str, str],
    entries: dict[int, RunEntry],
    started: float,
    out: TextIO,
    err: TextIO,
) -> int:
    with _maybe_simulator(args.simulate) as address:
        if args.json is None and args.junit is None:  # the common case: output streams straight through
            return _execute(args, path, target, variables, address, out, err, entries, 0, strict=True)
        tee_out, tee_err = _Tee(out), _Tee(err)
        try:
            code = _execute(args, path, target, variables, address, tee_out, tee_err, entries, 0, strict=True)
        finally:
            if 0 in entries:
                entries[0].stdout, entries[0].stderr = tee_out.text(), tee_err.text()
    _write_reports(args, [entries[0]], started)
    return code


def _run_many(
    args: argparse.Namespace,
    pairs: list[tuple[str, _Target | None]],
    variables: dict[str, str],
    entries: dict[int, RunEntry],
    started: float,
    out: TextIO,
    err: TextIO,
) -> int:
    with _maybe_simulator(args.simulate) as address:

        def job_for(index: int, path: str, target: _Target | None) -> Callable[[TextIO, TextIO, threading.Event], int]:
            def job(job_out: TextIO, job_err: TextIO, cancel: threading.Event) -> int:
                if args.dry_run:
                    return _dry_run(args, path, target, variables, job_out, job_err, strict=False)
                try:
                    return _execute(
                        args, path, target, variables, address, job_out, job_err, entries, index, strict=False,
                        cancel=cancel,
                    )  # fmt: skip
                except (Cancelled, KeyboardInterrupt, Terminated):
                    # no Outcome will carry what it printed: keep it for the reports now
                    if index in entries and isinstance(job_out, io.StringIO) and isinstance(job_err, io.StringIO):
                        entries[index].stdout, entries[index].stderr = job_out.getvalue(), job_err.getvalue()
                    raise

            return job

        jobs = [Job(path, _label(target), job_for(index, path, target)) for index, (path, target) in enumerate(pairs)]
        sections = _Sections(jobs, out, err, entries)
        try:
            outcomes = run_jobs(jobs, args.jobs, sections)
        except (KeyboardInterrupt, Terminated):
            sections.show_held()  # a stopped CI job needs the log of what did finish
            raise
    out.write("\n" + "\n".join(summary_table(outcomes)) + "\n")
    _write_reports(args, [entries[index] for index in sorted(entries)], started)
    return worst(outcomes)


def _stopped(pairs: list[tuple[str, _Target | None]], entries: dict[int, RunEntry], code: int) -> list[RunEntry]:
    """Every run of an interrupted invocation: those that ended as they ended, the others (cut
    short, or never started) as interrupted or terminated."""
    result = RESULTS[code]
    runs = []
    for index, (path, target) in enumerate(pairs):
        entry = entries.get(index) or RunEntry(path, _label(target), result, code, 0.0, None)
        if entry.exit_code in (EXIT_INTERRUPTED, EXIT_TERMINATED):
            entry.result, entry.exit_code = result, code  # a parallel job only saw the cancel
        runs.append(entry)
    return runs


def _tls_options(args: argparse.Namespace, err: TextIO, *, used: Callable[[], bool] = lambda: True) -> TlsOptions:
    """The TLS options of the command line; their files are checked now, before any connection.
    ``used()`` tells whether any connection may be TLS: if none is, one warning says the options
    apply to nothing (instead of the --insecure warning, or silence)."""
    options = TlsOptions(args.cacert, args.cert, args.key, args.server_name, args.insecure)
    if options.cacert or options.cert or options.key:
        from amiscript.transports.tls import client_context

        client_context(options)
    if options == TlsOptions():
        return options
    if not used():
        named = {"--cacert": options.cacert, "--cert": options.cert, "--key": options.key}
        named |= {"--server-name": options.server_name, "--insecure": options.insecure}
        given = [option for option, value in named.items() if value]
        why = (
            "the built-in simulator speaks plain TCP"
            if args.simulate
            else "no target or script connects with TLS (tls:// or `transport: tls`)"
        )
        err.write(f"{PROG}: warning: {' '.join(given)}: not used: {why}\n")
    elif options.insecure:
        from amiscript.transports.tls import INSECURE_WARNING

        err.write(f"{PROG}: {INSECURE_WARNING}\n")
    return options


def _may_use_tls(args: argparse.Namespace, paths: Sequence[str], targets: Sequence[_Target]) -> bool:
    """Whether a run may connect over TLS, as far as the command line and the scripts tell: a
    target's scheme decides; without targets, each script's `connect:` (a transport written with
    variables, or a script that does not load, counts as maybe)."""
    if args.simulate:
        return False
    if targets:
        return any(target.override.transport == "tls" for target in targets)
    for path in paths:
        try:
            spec = args.load(path).connect
        except AmiscriptError:
            return True  # its own run reports the problem
        if spec is not None and (not spec.transport.is_literal or spec.transport.raw == "tls"):
            return True
    return False


def _write_reports(args: argparse.Namespace, entries: list[RunEntry], started: float) -> None:
    try:
        if args.json is not None:
            write_report(args.json, entries, started)
        if args.junit is not None:
            from amiscript.report.junit import write_junit

            write_junit(args.junit, entries, started)
    except OSError as exc:
        raise UsageError(f"cannot write the report {exc.filename or ''}: {exc.strerror or exc}") from None


@dataclass(frozen=True)
class _Target:
    label: str
    override: TargetOverride
    variables: dict[str, str]


def _execute(
    args: argparse.Namespace,
    path: str,
    target: _Target | None,
    variables: dict[str, str],
    address: tuple[str, int] | None,
    out: TextIO,
    err: TextIO,
    entries: dict[int, RunEntry],
    index: int,
    *,
    strict: bool,
    cancel: threading.Event | None = None,
) -> int:
    """Run one check; errors become its exit status and lines on ``err``, as main() does. Its
    report entry goes into ``entries[index]``, also when Ctrl-C, SIGTERM or a cancel stops it."""
    started = time.monotonic()
    interpreter: Interpreter | None = None
    error: AmiscriptError | None = None

    def entry(code: int) -> RunEntry:
        return RunEntry(
            path,
            _label(target),
            RESULTS.get(code, f"exit {code}"),
            code,
            time.monotonic() - started,
            {"message": error.message, "location": str(error.location) if error.location else None} if error else None,
            interpreter.records if interpreter is not None else [],
        )

    try:
        script = args.load(path)
        override = _override(script, target, address)
        given = _given(script, target, variables, strict=strict)
        report = HumanReport(out, err, verbose=args.verbose)
        interpreter = Interpreter(
            script, opener(args.tls), report, variables=given, timeout=args.timeout, target=override, cancel=cancel
        )
        code = interpreter.run() if args.transcript is None else _run_with_transcript(interpreter, args.transcript)
    except AmiscriptError as exc:
        error = exc
        code = _report_error(exc, err)
    except (KeyboardInterrupt, Terminated, Cancelled) as stop:
        entries[index] = entry(EXIT_TERMINATED if isinstance(stop, Terminated) else EXIT_INTERRUPTED)
        raise
    entries[index] = entry(code)
    return code


def _label(target: _Target | None) -> str:
    return target.label if target else "(script's connect)"


def _run_with_transcript(interpreter: Interpreter, path: str) -> int:
    from amiscript.report.transcript import Transcript

    try:
        handle = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed below, after the run
    except OSError as exc:
        raise UsageError(f"cannot write the transcript: {exc.strerror or exc}") from None
    with handle:
        transcript = Transcript(handle, interpreter.mask)
        interpreter.session.recorder = transcript.record
        try:
            return interpreter.run()
        finally:
            transcript.end("end")


def _nagios_unknown(scripts: Sequence[str], exc: AmiscriptError, out: TextIO) -> int:
    """The plugin guidelines: a check that cannot run as asked is UNKNOWN (3), not CRITICAL."""
    from amiscript.report import nagios

    service = Path(scripts[0]).stem.upper() if scripts else "AMISCRIPT"
    _write_plugin_line(out, nagios.plugin_line(service, nagios.UNKNOWN, str(exc), []))
    return nagios.UNKNOWN


def _nagios_stopped(service: str, stop: BaseException, out: TextIO, err: TextIO) -> int:
    """A monitor that gives up on a check stops it: it still reads one plugin line (UNKNOWN)."""
    from amiscript.report import nagios

    how = "interrupted (SIGINT)" if isinstance(stop, KeyboardInterrupt) else "terminated (SIGTERM)"
    _write_plugin_line(out, nagios.plugin_line(service, nagios.UNKNOWN, f"check {how} before it finished", []))
    err.write(f"{PROG}: {how.split()[0]}\n")
    return nagios.UNKNOWN


def _write_plugin_line(out: TextIO, line: str) -> None:
    """The one line a monitor reads decides the status: from here on no signal may change it."""
    global _RESULT_WRITTEN
    _RESULT_WRITTEN = True
    out.write(line + "\n")


def _nagios_scripts(parser: argparse.ArgumentParser, argv: Sequence[str]) -> list[str] | None:
    """For a `run --format nagios` command line that argparse refused: its SCRIPT words, so that the
    monitor still reads one plugin line naming the check; None if it does not ask for nagios.
    The words are read as argparse reads them: options by unique prefix, `--opt=value`, `--`."""
    if not argv or argv[0] != "run":
        return None
    run = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["run"]
    options = {option: action for action in run._actions for option in action.option_strings}
    output_format, scripts = None, []
    words = iter(argv[1:])
    for word in words:
        if word == "--":
            scripts += words
        elif word.startswith("-") and len(word) > 1:
            name, equals, value = word.partition("=")
            found = [option for option in options if option.startswith(name)]
            action = options.get(name) or (options[found[0]] if len(found) == 1 else None)
            if action is not None and action.nargs != 0 and not equals:
                value = next(words, "")
            if action is not None and action.dest == "format":
                output_format = value
        else:
            scripts.append(word)
    return scripts if output_format == "nagios" else None


def _run_nagios(
    args: argparse.Namespace,
    path: str,
    target: _Target | None,
    variables: dict[str, str],
    address: tuple[str, int] | None,
    out: TextIO,
    err: TextIO,
) -> int:
    """One plugin line on stdout; what the script prints becomes its text, errors its status."""
    from amiscript.report import nagios

    service = Path(path).stem.upper()
    captured = io.StringIO()
    interpreter: Interpreter | None = None
    try:
        script = args.load(path)
        service = (script.name or Path(path).stem).upper()
        override = _override(script, target, address)
        given = _given(script, target, variables, strict=True)
        interpreter = Interpreter(
            script, opener(args.tls), HumanReport(captured, err, verbose=args.verbose), variables=given,
            timeout=args.timeout, target=override,
        )  # fmt: skip
        code = interpreter.run()
        error = None
    except AmiscriptError as exc:
        code, error = exc.exit_code, str(exc)
    except (KeyboardInterrupt, Terminated) as stop:
        return _nagios_stopped(service, stop, out, err)
    lines = [line for line in captured.getvalue().splitlines() if line.strip()]
    text = error or (lines[-1] if lines else "check passed")
    status = {0: nagios.OK, 2: nagios.UNKNOWN}.get(code, nagios.CRITICAL)
    perf: list[str] = []
    if interpreter is not None and code == 0:
        for metric in interpreter.script.metrics:
            raw = interpreter.values.get(metric.name)
            number = nagios.perf_number(str(raw))
            if number is None:
                shown = interpreter.mask(str(raw))  # a value captured from the peer may hold the secret
                status, text = nagios.UNKNOWN, f"metric {metric.name!r} has no numeric value ({shown!r})"
                break
            perf.append(nagios.perfdata(metric.label, number, metric.uom, metric.warning, metric.critical))
            status = max(status, nagios.metric_status(float(number), metric.warning, metric.critical))
    _write_plugin_line(out, nagios.plugin_line(service, status, text, perf))
    return status


def _dry_run(
    args: argparse.Namespace,
    path: str,
    target: _Target | None,
    variables: dict[str, str],
    out: TextIO,
    err: TextIO | None = None,
    *,
    strict: bool = True,
) -> int:
    """What the run would send; ``strict`` as the run itself (one script: an unknown --var is an error)."""
    from amiscript.engine.dryrun import DryRun

    try:
        script = args.load(path)
        given = _given(script, target, variables, strict=strict)
        shown = "the built-in simulator" if args.simulate else (target.label if target else None)
        report = HumanReport(out, err or out)
        return DryRun(script, report.print, variables=given, timeout=args.timeout, target=shown).run()
    except AmiscriptError as exc:
        if err is None:
            raise
        return _report_error(exc, err)


class _Tee(io.StringIO):
    """A stream that also keeps what was written, for the JSON report."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self._stream = stream

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", None) or "utf-8"

    def write(self, text: str) -> int:
        self._stream.write(text)
        return super().write(text)

    def flush(self) -> None:
        self._stream.flush()

    def text(self) -> str:
        return self.getvalue()


def _override(script: Script, target: _Target | None, address: tuple[str, int] | None) -> TargetOverride | None:
    """Where this check connects: the --target or inventory entry, or the simulator if running."""
    override = target.override if target else None
    return simulated_target(script, override, address) if address is not None else override


def _given(script: Script, target: _Target | None, variables: dict[str, str], *, strict: bool) -> dict[str, str]:
    """The target's variables, then --var/--vars-file over them. With one script every --var must
    be its own (so typos show); with several, each takes the ones it declares."""
    given = _declared(script, target.variables if target else {})
    given.update(variables if strict else _declared(script, variables))
    return given


def _declared(script: Script, values: dict[str, str]) -> dict[str, str]:
    """Variables given for many scripts (an inventory's, or --var with several scripts): each
    script takes those it declares."""
    return {name: value for name, value in values.items() if script.var(name) is not None}


def _check_declared_somewhere(paths: Sequence[str], variables: dict[str, str], load: _Scripts) -> None:
    """With several scripts, a --var no script declares is still a typo worth stopping for."""
    declared: set[str] = set()
    for path in paths:
        try:
            declared |= {spec.name for spec in load(path).vars}
        except AmiscriptError:
            continue  # that script's own run reports it
    for name in variables:
        if name not in declared:
            raise UsageError(f"variable {name!r} was given (--var or --vars-file) but none of the scripts declares it")


def _script_paths(items: Sequence[str]) -> list[str]:
    paths: list[str] = []
    for item in items:
        path = Path(item)
        if is_dir(path):  # else loading it says what is wrong: missing, a loop, a name too long
            found = sorted(str(child) for child in path.glob("*.yaml") if is_file(child))
            if not found:
                raise UsageError(f"{item}: a directory with no *.yaml scripts in it")
            paths.extend(found)
        else:
            paths.append(item)
    return paths


def _read_inventory(path: str, *, scheme_only: bool) -> list[_Target]:
    """targets: [{name, url, vars}]; values may read the environment (${env:NAME}), so
    credentials need not be written in the inventory."""
    root = load_yaml_file(Path(path), path, "inventory")
    entries = root.get("targets") if isinstance(root, YMap) else None
    if not isinstance(entries, YList) or not entries:
        where = root.location if hasattr(root, "location") else None
        raise ScriptError("an inventory is a mapping with `targets:`, a list of {name, url, vars}", where)
    targets = []
    for entry in entries:
        if not isinstance(entry, YMap) or "url" not in entry:
            raise ScriptError("each target needs `url:` (and may have `name:` and `vars:`)", entry.location)
        unknown = [key for key in entry if key not in ("name", "url", "vars")]
        if unknown:
            raise ScriptError(f"unknown key {unknown[0]!r} in a target", entry.key_locations[unknown[0]])
        url = str(entry["url"])
        name = str(entry.get("name", url))
        values: dict[str, str] = {}
        given = entry.get("vars")
        if given is not None:
            if not isinstance(given, YMap):
                raise ScriptError("a target's vars are a mapping of names to values", given.location)
            values = given_values(given)
        try:
            override = parse_target(url, scheme_only=scheme_only, given_as="url")
        except UsageError as exc:
            raise ScriptError(exc.message, entry["url"].location) from None
        targets.append(_Target(name, override, values))
    return targets


class _Sections:
    """Each check's output under its `--- SCRIPT @ TARGET` line, as soon as it and every check
    before it have ended: a CI log grows while the run goes, in an order that does not depend on
    timing. On a terminal, a progress line on stderr says how many have ended. What a check
    printed also goes to its report entry as soon as it ends."""

    def __init__(self, jobs: Sequence[Job], out: TextIO, err: TextIO, entries: dict[int, RunEntry]) -> None:
        self._order = {id(job): index for index, job in enumerate(jobs)}
        self._total = len(jobs)
        self._out, self._err, self._entries = out, err, entries
        self._ended: dict[int, Outcome] = {}
        self._shown = 0
        self._progress = hasattr(err, "isatty") and err.isatty()

    def __call__(self, outcome: Outcome, count: int) -> None:
        index = self._order[id(outcome.job)]
        self._ended[index] = outcome
        if index in self._entries:
            self._entries[index].stdout, self._entries[index].stderr = outcome.stdout, outcome.stderr
        if self._progress:
            self._err.write("\r\x1b[K")
        while self._shown in self._ended:
            self._show(self._ended.pop(self._shown))
            self._shown += 1
        if self._progress:
            end = "\n" if count == self._total else ""
            self._err.write(f"{PROG}: {count}/{self._total} done ({outcome.job.target}: {outcome.result}){end}")
        self._err.flush()

    def show_held(self) -> None:
        """The run was stopped: what ended behind a check still running, in order."""
        if self._progress and self._ended:
            self._err.write("\r\x1b[K")
        for index in sorted(self._ended):
            self._show(self._ended.pop(index))
        self._err.flush()

    def _show(self, section: Outcome) -> None:
        self._out.write(
            f"--- {section.job.script} @ {section.job.target}: {section.result} ({section.seconds:.2f} s)\n"
        )
        self._out.write(section.stdout)
        self._out.flush()
        self._err.write(section.stderr)


@contextmanager
def _maybe_simulator(enabled: bool) -> Iterator[tuple[str, int] | None]:
    if not enabled:
        yield None
        return
    from amiscript.sim import Simulator, default_config

    with Simulator(default_config(), host="127.0.0.1", port=0) as sim:
        yield sim.address


# -- check ----------------------------------------------------------------------------------


def _check(paths: Sequence[str], output_format: str, out: TextIO, include_paths: Sequence[str] = ()) -> int:
    """Every problem of every file: errors stop a script from running, warnings do not."""
    import json  # `check` alone needs these: kept out of a run's start-up

    from amiscript.script.lint import lint

    diagnostics: list[Diagnostic] = []
    clean = 0
    paths = _script_paths(paths)
    for path in paths:
        try:
            script = load_script(path, include_paths=include_paths)
        except ScriptErrors as errors:
            diagnostics += [Diagnostic.of(problem) for problem in errors.problems]
            continue
        except AmiscriptError as error:
            diagnostics.append(Diagnostic.of(error))
            continue
        warnings = lint(script)
        diagnostics += warnings
        clean += 1
    diagnostics = list(dict.fromkeys(diagnostics))  # an included file's problem, reported once
    errors = sum(1 for d in diagnostics if d.severity == "error")
    warnings_count = len(diagnostics) - errors
    summary = (
        f"{len(paths)} script{'s' if len(paths) != 1 else ''} checked: "
        f"{errors} error{'s' if errors != 1 else ''}, {warnings_count} warning{'s' if warnings_count != 1 else ''}"
    )
    if output_format == "json":
        json.dump(
            {
                "version": 1,
                "scripts": list(paths),
                "errors": errors,
                "warnings": warnings_count,
                "diagnostics": [_diagnostic_json(d) for d in diagnostics],
            },
            out,
            indent=2,
        )
        out.write("\n")
    else:
        for diagnostic in diagnostics:
            out.write(f"{diagnostic}\n")
        out.write(f"{summary}\n")
    return 2 if errors else 0


def _diagnostic_json(diagnostic: Diagnostic) -> dict[str, object]:
    where = diagnostic.location
    return {
        "file": where.file if where else None,
        "line": where.line if where else None,
        "column": where.column if where else None,
        "severity": diagnostic.severity,
        "message": diagnostic.message,
        "hint": diagnostic.hint,
    }


def _new(name: str, force: bool, out: TextIO) -> int:
    from amiscript.script.starter import starter

    path = Path(name if name.endswith((".yaml", ".yml")) else f"{name}.yaml")
    stem = path.stem
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", stem):
        raise UsageError(f"new: {stem!r} is not a usable script name (letters, digits, . _ -)")
    if os.path.lexists(path) and not force:  # lexists: a name too long is for the write to report
        raise UsageError(f"new: {path} exists; choose another name or pass --force")
    try:
        path.write_text(starter(stem), encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"new: cannot write {path}: {exc.strerror or exc}") from None
    out.write(f"wrote {path}; try: amiscript run {path} --simulate\n")
    return 0


# -- simulate -------------------------------------------------------------------------------


def _simulate(args: argparse.Namespace, out: TextIO) -> int:
    from amiscript.sim import SimConfig, Simulator, default_config, load_manager_conf, load_state

    if not 0 <= args.port <= 65535:  # else bind() refuses it as if the network were at fault (exit 3)
        raise UsageError(f"simulate: --port must be a number from 0 to 65535, not {args.port} (0 picks a free port)")
    if not 0 <= args.login_fail_delay <= MAX_SECONDS or not 0 < args.auth_timeout <= MAX_SECONDS:
        raise UsageError("--login-fail-delay must be >= 0 and --auth-timeout > 0 (seconds, at most one day)")
    base = default_config()
    try:
        config = SimConfig(
            users=load_manager_conf(Path(args.manager_conf)) if args.manager_conf else base.users,
            mailboxes=load_state(Path(args.state)) if args.state else base.mailboxes,
            login_fail_delay=args.login_fail_delay,
            auth_timeout=args.auth_timeout,
            command_style=args.command_style,
        )
    except ValueError as exc:
        raise UsageError(f"simulate: {exc}") from None
    stop = threading.Event()
    tls = _server_tls(args)
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    sim = Simulator(config, host=args.host, port=args.port, tls=tls)
    try:
        try:
            host, port = sim.start()
        except OSError as exc:
            raise TransportError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
        shown = f"[{host}]" if ":" in host else host
        out.write(f"listening on {shown}:{port}{' (TLS)' if tls is not None else ''}\n")
        out.flush()
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        return 0
    finally:
        sim.stop()
        signal.signal(signal.SIGTERM, previous)


def _server_tls(args: argparse.Namespace) -> ssl.SSLContext | None:
    if args.tls_cert is None:
        if args.tls_key or args.tls_client_ca:
            raise UsageError("simulate: --tls-key and --tls-client-ca go with --tls-cert FILE")
        return None
    import ssl  # a run that needs no TLS does not pay for loading OpenSSL

    from amiscript.sim.server import server_context

    try:
        return server_context(args.tls_cert, args.tls_key, args.tls_client_ca)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
        raise UsageError(
            f"simulate: cannot serve TLS with --tls-cert {args.tls_cert!r}: {reason}",
            hint="give a PEM certificate, and its unencrypted key in it or with --tls-key",
        ) from None
