"""pytest plugin: amiscript scripts as test items (entry point `pytest11`).

Files named `amiscript_*.yaml` or `*.amiscript.yaml` (ini option `amiscript_files`) are
collected, one item per script, or per script and target with `--ami-target`. A failing item
shows the error, the failing step's YAML with a marker, and what the script printed; so
`pytest --junitxml` reports amiscript checks like any other test.

    pytest checks/ --ami-target tcp://pbx:5038 --ami-var mailbox=124@default
    pytest checks/ --ami-simulate
"""

from __future__ import annotations

import fnmatch
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from amiscript.engine import Interpreter, TargetOverride
from amiscript.errors import AmiscriptError, ScriptErrors
from amiscript.frontend import opener, parse_target, parse_var_options, read_vars_file, simulated_target
from amiscript.report import HumanReport
from amiscript.script import Script, load_script
from amiscript.transports.base import TlsOptions

DEFAULT_FILES = "amiscript_*.yaml *.amiscript.yaml"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("amiscript", "amiscript checks")
    group.addoption(
        "--ami-target",
        action="append",
        default=[],
        metavar="URL",
        help="run each amiscript script against this target (tcp://HOST:PORT, tls://HOST[:PORT] or "
        "telnet://…); repeatable",
    )
    group.addoption(
        "--ami-var",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a variable for the amiscript scripts (each takes the ones it declares)",
    )
    group.addoption("--ami-vars-file", metavar="FILE", help="a YAML mapping of variables for the scripts")
    group.addoption(
        "--ami-include-path",
        action="append",
        default=[],
        metavar="DIR",
        help="also allow `include` to read from DIR (repeatable), as `amiscript run --include-path`",
    )
    group.addoption("--ami-simulate", action="store_true", help="run the scripts against the built-in simulator")
    group.addoption("--ami-cacert", metavar="FILE", help="tls targets: trust the CA certificates in this PEM file")
    group.addoption("--ami-cert", metavar="FILE", help="tls targets: client certificate (PEM)")
    group.addoption("--ami-key", metavar="FILE", help="tls targets: the client certificate's key, if not in it")
    group.addoption(
        "--ami-server-name", metavar="NAME", help="tls targets: the name the server's certificate must hold"
    )
    parser.addini("amiscript_files", "glob patterns of amiscript script files", default=DEFAULT_FILES)  # fmt: skip


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    patterns = str(parent.config.getini("amiscript_files")).split()
    if any(fnmatch.fnmatch(file_path.name, pattern) for pattern in patterns):
        return ScriptFile.from_parent(parent, path=file_path)
    return None


def pytest_sessionfinish(session: pytest.Session) -> None:
    simulator = getattr(session.config, "_amiscript_simulator", None)
    if simulator is not None:
        simulator.stop()


class ScriptFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        targets = self.config.getoption("--ami-target") or [None]
        for target in targets:
            name = self.path.name if target is None else f"{self.path.name}[{target}]"
            yield ScriptItem.from_parent(self, name=name, target=target)


class ScriptFailed(Exception):
    def __init__(self, error: AmiscriptError | None, code: int, output: str) -> None:
        super().__init__(str(error) if error else f"exit status {code}")
        self.error = error
        self.code = code
        self.output = output


class ScriptItem(pytest.Item):
    def __init__(self, *, target: str | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target = target

    def runtest(self) -> None:

        out, err = io.StringIO(), io.StringIO()
        try:
            script = load_script(self.path, include_paths=self.config.getoption("--ami-include-path"))
            vars_file = self.config.getoption("--ami-vars-file")
            variables = read_vars_file(vars_file) if vars_file else {}
            variables.update(parse_var_options(self.config.getoption("--ami-var"), "--ami-var"))
            given = {name: value for name, value in variables.items() if script.var(name) is not None}
            override = self._target(script)
            tls = TlsOptions(
                *(self.config.getoption(f"--ami-{name}") for name in ("cacert", "cert", "key", "server-name"))
            )
            code = Interpreter(script, opener(tls), HumanReport(out, err), variables=given, target=override).run()
        except AmiscriptError as error:
            raise ScriptFailed(error, error.exit_code, out.getvalue()) from None
        if code != 0:
            raise ScriptFailed(None, code, out.getvalue())

    def _target(self, script: Script) -> TargetOverride | None:
        simulate = self.config.getoption("--ami-simulate")
        override = parse_target(self.target, scheme_only=simulate) if self.target else None
        if not simulate:
            return override
        simulator = getattr(self.config, "_amiscript_simulator", None)
        if simulator is None:
            from amiscript.sim import Simulator, default_config

            simulator = Simulator(default_config(), port=0)
            simulator.start()
            self.config._amiscript_simulator = simulator  # type: ignore[attr-defined]
        return simulated_target(script, override, simulator.address)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if not isinstance(excinfo.value, ScriptFailed):
            return str(super().repr_failure(excinfo))
        failure = excinfo.value
        lines = []
        if failure.error is not None:
            problems = failure.error.problems if isinstance(failure.error, ScriptErrors) else [failure.error]
            lines += [f"amiscript: error: {problem}" for problem in problems]
            lines += failure.error.details
        else:
            lines.append(f"amiscript: the script ended with exit status {failure.code}")
        if failure.output:
            lines += ["", "--- what the script printed", failure.output.rstrip()]
        return "\n".join(lines)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, 0, f"amiscript: {self.name}"
