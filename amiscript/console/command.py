"""`amiscript console` and `amiscript record FILE.yaml`: from parsed arguments to a session."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TextIO

from amiscript.console.repl import Console, ConsoleOptions
from amiscript.errors import UsageError
from amiscript.frontend import parse_target
from amiscript.script.model import MAX_SECONDS
from amiscript.transports.base import Target, TlsOptions

DEFAULT_TARGET = "tcp://127.0.0.1:5038"
CONNECT_TIMEOUT = 10.0


def run(args: argparse.Namespace, variables: dict[str, str], tls: TlsOptions, out: TextIO) -> int:
    """``tls`` is the command line's TLS options, already checked (cli's _tls_options)."""
    if not 0 < args.timeout <= MAX_SECONDS:
        raise UsageError(f"--timeout must be greater than 0 and at most {MAX_SECONDS:g} seconds, not {args.timeout:g}")
    if args.simulate:
        if args.target:
            raise UsageError("give --simulate or --target, not both")
        from amiscript.sim import Simulator, default_config

        with Simulator(default_config(), host="127.0.0.1", port=0) as sim:
            host, port = sim.address
            return _run(args, Target("tcp", host, port, CONNECT_TIMEOUT), variables, out, simulated=True)
    where = parse_target(args.target or DEFAULT_TARGET)
    target = Target(where.transport, where.host, where.port, CONNECT_TIMEOUT, tls=tls)
    return _run(args, target, variables, out)


def _run(
    args: argparse.Namespace, target: Target, variables: dict[str, str], out: TextIO, *, simulated: bool = False
) -> int:
    options = ConsoleOptions(
        target=target,
        simulated=simulated,
        username=args.username or ("admin" if simulated else None),
        secret_env=args.secret_env,
        auth=args.auth,
        variables=variables,
        record=getattr(args, "file", None),
        force=getattr(args, "force", False),
        timeout=args.timeout,
    )
    return Console(options, out, os.environ, sys.stdin).run()
