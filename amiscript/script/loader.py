"""YAML script -> ``Script``: the one validation pass, every error with file:line:col."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import regex

from amiscript.errors import Location, ScriptError, ScriptErrors
from amiscript.script.model import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_EVENT_BACKLOG,
    DEFAULT_MATCH_MAX,
    DEFAULT_TIMEOUT,
    MAX_SECONDS,
    MIN_MATCH_MAX,
    TRANSPORTS,
    Action,
    Assert,
    Connect,
    Exit,
    Expect,
    Fail,
    Foreach,
    HeaderMatch,
    Include,
    ItemsCheck,
    Login,
    Metric,
    Newline,
    Pattern,
    PatternKind,
    Print,
    Repeat,
    Script,
    Send,
    Set,
    Sleep,
    Step,
    VarSpec,
    WaitEvent,
)
from amiscript.script.paths import is_dir, is_file, no_nul, resolved
from amiscript.script.ranges import parse_range
from amiscript.script.schema import (
    ALTERNATIVE_KEYS,
    BOOLEAN_WORDS,
    CONNECT_KEYS,
    HANDLER_KEYS,
    ITEMS_KEYS,
    LOGIN_KEYS,
    MATCHER_KEYS,
    METRIC_KEYS,
    METRIC_UNITS,
    SPAWN_KEYS,
    STEP_KINDS,
    STEP_OPTIONS,
    TLS_KEYS,
    TOP_KEYS,
    VAR_KEYS,
)
from amiscript.script.template import NAME, Template, Value, connect_file, parse_template
from amiscript.script.yamlnodes import YList, YMap, YNode, YStr, describe, load_yaml_file, parse_yaml

if TYPE_CHECKING:  # the expression language loads only for scripts that use it (assert, until)
    from amiscript.script.expr import Expression

AUTH_METHODS = ("plain", "md5")
# Variables every AMI step sets: the answer's Response, Message, Output text, and why it failed.
AMI_RESULT_VARS = ("response", "message", "output", "error")
MAX_INCLUDE_DEPTH = 16
T = TypeVar("T")


def load_script(
    path: str | Path,
    *,
    include_paths: Sequence[str | Path] = (),
    _including: tuple[Path, ...] = (),
    _roots: tuple[Path, ...] | None = None,
) -> Script:
    """Load a script and what it includes. Includes may come only from its own folder, the
    folders its `include_paths:` lists, and ``include_paths`` (--include-path, from the
    current directory); symlinks count where they point."""
    file = Path(path)
    builder = _Builder(str(path), (*_including, resolved(file)), _roots, include_paths)
    return builder.script(load_yaml_file(file, str(path)))


def load_script_text(text: str, name: str = "<script>") -> Script:
    return build_script(parse_yaml(text, name), name)


def build_script(root: YNode, name: str) -> Script:
    return _Builder(name, (resolved(Path(name)),)).script(root)


def compile_pattern(
    kind: PatternKind,
    source: Template,
    values: Mapping[str, Value] | None = None,
    environ: Mapping[str, str] | None = None,
) -> regex.Pattern[str]:
    """Compile a pattern; a variable's value always matches as literal text, never as regex.

    Without ``values`` (load time) a harmless literal stands in for each variable.
    """
    if values is None:
        text = "".join(part if isinstance(part, str) else "x" for part in source.parts)
        return regex.compile(regex.escape(text) if kind is PatternKind.TEXT else text)
    if kind is PatternKind.TEXT:
        return regex.compile(regex.escape(source.render(values, environ=environ)))
    return regex.compile(source.render(values, escape=lambda ref, value: regex.escape(value), environ=environ))


class _Builder:
    def __init__(
        self,
        file: str,
        including: tuple[Path, ...],
        roots: tuple[Path, ...] | None = None,
        extra_roots: Sequence[str | Path] = (),
    ) -> None:
        self.file = file
        self.problems: list[ScriptError] = []  # every problem found, so check can show them all
        self.including = including  # the chain of files being loaded, for include cycles
        # Folders includes may come from (resolved); None until the script that is run sets them.
        self.roots = roots
        self.extra_roots = extra_roots
        self.expressions: list[Expression] = []
        self.declared: set[str] = set()
        self.implicit: set[str] = set()
        self.templates: list[Template] = []

    # -- helpers ---------------------------------------------------------------------------

    def attempt(self, build: Callable[[], T], fallback: T) -> T:
        """Build one part; on a problem, note it and go on with ``fallback``."""
        try:
            return build()
        except ScriptErrors as errors:
            self.problems.extend(errors.problems)
        except ScriptError as error:
            self.problems.append(error)
        return fallback

    def mapping(self, node: YNode, what: str) -> YMap:
        if isinstance(node, YStr) and not node and not node.quoted:
            raise ScriptError(
                f"{what} is empty",
                node.location,
                hint="its `key: value` lines go under it, indented by two more spaces",
            )
        if not isinstance(node, YMap):
            raise ScriptError(
                f"{what} must be a mapping, not {describe(node)}",
                node.location,
                hint="write `key: value` lines" + (" such as `steps:`" if what == "a script" else ""),
            )
        return node

    def text(self, node: YNode, what: str) -> YStr:
        if not isinstance(node, YStr):
            raise ScriptError(f"{what} must be text, not {describe(node)}", node.location)
        return node

    def template(self, node: YNode, what: str) -> Template:
        value = self.text(node, what)
        template = parse_template(str(value), value.location)
        self.templates.append(template)
        return template

    def check_keys(self, node: YMap, allowed: Iterable[str], what: str) -> None:
        """Note every unknown key (and go on: the known ones can still be checked)."""
        allowed = tuple(allowed)
        previous = None
        for key in node:
            if key not in allowed:
                hint = _split_at_comma(node, previous, key) or _suggest(key, allowed)
                self.problems.append(ScriptError(f"unknown key {key!r} in {what}", node.key_locations[key], hint=hint))
            previous = key

    def number(self, node: YNode, what: str, *, positive: bool = True) -> float:
        value = self.text(node, what)
        try:
            number = float(value)
        except ValueError:
            raise ScriptError(
                f"{what} must be a number of seconds, not {value!r}", value.location, hint=f"e.g. {what}: 5"
            ) from None
        if number != number or abs(number) > MAX_SECONDS:
            raise ScriptError(
                f"{what} must be a number of seconds up to {MAX_SECONDS:g}, not {value!r}",
                value.location,
                hint=f"e.g. {what}: 30",
            )
        if positive and number <= 0:
            raise ScriptError(f"{what} must be greater than 0, not {value!r}", value.location, hint=f"e.g. {what}: 5")
        if number < 0:
            raise ScriptError(f"{what} must not be negative, not {value!r}", value.location, hint=f"e.g. {what}: 0.5")
        return number

    def boolean(self, node: YNode, what: str) -> bool:
        value = self.text(node, what)
        if value in BOOLEAN_WORDS:
            return value.lower() in ("true", "yes")
        raise ScriptError(f"{what} must be true or false, not {value!r}", value.location, hint=f"{what}: true")

    def match_max(self, node: YNode) -> int:
        value = self.text(node, "match_max")
        if not _DIGITS.fullmatch(value) or not MIN_MATCH_MAX <= int(value) <= 1 << 30:
            raise ScriptError(
                f"match_max must be a whole number of characters from {MIN_MATCH_MAX} to {1 << 30}, not {value!r}",
                value.location,
            )
        return int(value)

    def newline(self, node: YNode) -> Newline:
        value = self.text(node, "newline")
        try:
            return Newline(value)
        except ValueError:
            choices = ", ".join(mode.value for mode in Newline)
            raise ScriptError(
                f"newline must be one of {choices}, not {value!r}", value.location, hint="newline: lf"
            ) from None

    # -- the script ------------------------------------------------------------------------

    def script(self, root: YNode) -> Script:
        if isinstance(root, YStr) and not root.strip():
            raise ScriptError("the file is empty", Location(self.file, 0), hint="a script needs at least `steps:`")
        top = self.mapping(root, "a script")
        self.check_keys(top, TOP_KEYS, "the script")
        self.attempt(lambda: self.include_roots(top), None)
        if "steps" not in top:
            self.problems.append(ScriptError("the script has no `steps:`", top.location, hint="add a list of steps"))
        variables = self.attempt(lambda: self.variables(top["vars"]), ()) if "vars" in top else ()
        self.declared.update(spec.name for spec in variables)
        # Captures and `set` targets declare names too; collect them before checking references.
        self.attempt(lambda: self.collect_implicit(top), None)
        self.declared.update(self.implicit)
        connect = self.attempt(lambda: self.connect(top["connect"]), None) if "connect" in top else None
        timeout = DEFAULT_TIMEOUT
        if "timeout" in top:
            timeout = self.attempt(lambda: self.number(top["timeout"], "timeout"), DEFAULT_TIMEOUT)
        newline = self.attempt(lambda: self.newline(top["newline"]), Newline.CRLF) if "newline" in top else Newline.CRLF
        match_max = DEFAULT_MATCH_MAX
        if "match_max" in top:
            match_max = self.attempt(lambda: self.match_max(top["match_max"]), DEFAULT_MATCH_MAX)
        backlog = DEFAULT_EVENT_BACKLOG
        if "event_backlog" in top:
            backlog = self.attempt(lambda: self.whole(top["event_backlog"], "event_backlog", 1), backlog)
        on_eof = on_timeout = None
        if "on" in top:
            handlers = self.attempt(lambda: self.mapping(top["on"], "`on`"), None)
            if handlers is not None:
                self.check_keys(handlers, HANDLER_KEYS, "`on`")
                if "eof" in handlers:
                    on_eof = self.attempt(lambda: self.steps(handlers["eof"], newline), ())
                if "timeout" in handlers:
                    on_timeout = self.attempt(lambda: self.steps(handlers["timeout"], newline), ())
        steps = self.attempt(lambda: self.steps(top["steps"], newline), ()) if "steps" in top else ()
        name = self.attempt(lambda: str(self.text(top["name"], "name")), "") if "name" in top else ""
        description = ""
        if "description" in top:
            description = self.attempt(lambda: str(self.text(top["description"], "description")), "")
        metrics = self.attempt(lambda: self.metrics(top["metrics"]), ()) if "metrics" in top else ()
        self.check_references()
        if self.problems:
            raise ScriptErrors(sorted(self.problems, key=_position))
        return Script(
            path=self.file,
            name=name,
            description=description,
            vars=variables,
            connect=connect,
            timeout=timeout,
            newline=newline,
            match_max=match_max,
            event_backlog=backlog,
            on_eof=on_eof,
            on_timeout=on_timeout,
            steps=steps,
            location=top.location,
            implicit_vars=frozenset(self.implicit),
            metrics=metrics,
            timeout_set="timeout" in top,
        )

    def include_roots(self, top: YMap) -> None:
        """The script that is run decides where includes may come from: its own folder, the
        folders its `include_paths:` names (relative to it) and --include-path."""
        if self.roots is not None:
            if "include_paths" in top:
                raise ScriptError(
                    "`include_paths` counts only in the script that is run, not in an included one",
                    top.key_locations["include_paths"],
                    hint="move it to the script that includes this one",
                )
            return
        base = Path(self.file).parent
        self.roots = (resolved(base), *(resolved(Path(extra)) for extra in self.extra_roots))
        if "include_paths" not in top:
            return
        node = top["include_paths"]
        if not isinstance(node, YList):
            raise ScriptError(
                f"include_paths must be a list of folders, not {describe(node)}",
                node.location,
                hint="include_paths: [../common]",
            )
        for item in node:
            folder = self.text(item, "an include_paths entry")
            path = base / folder  # an absolute path stays itself
            if not is_dir(path):
                raise ScriptError(
                    f"include_paths entry {str(folder)!r} is not a folder",
                    folder.location,
                    hint="a folder relative to this script, like ../common",
                )
            self.roots = (*self.roots, resolved(path))

    def variables(self, node: YNode) -> tuple[VarSpec, ...]:
        specs = []
        for name, value in self.mapping(node, "vars").items():
            where = node.key_locations[name]
            if not NAME.fullmatch(name):
                raise ScriptError(
                    f"invalid variable name {name!r}",
                    where,
                    hint="use letters, digits and _, not starting with a digit",
                )
            if isinstance(value, YMap):
                self.check_keys(value, VAR_KEYS, f"variable {name!r}")
                default = self.template(value["default"], f"default of {name!r}") if "default" in value else None
                required = self.boolean(value["required"], "required") if "required" in value else False
                secret = self.boolean(value["secret"], "secret") if "secret" in value else False
                help_text = str(self.text(value["help"], "help")) if "help" in value else ""
                if required and default is not None:
                    raise ScriptError(
                        f"variable {name!r} is required and has a default",
                        where,
                        hint="drop `required` or the default",
                    )
                specs.append(VarSpec(name, default, required, secret, help_text, where))
            else:
                specs.append(VarSpec(name, self.template(value, f"variable {name!r}"), False, False, "", where))
            default = specs[-1].default
            above = {spec.name for spec in specs[:-1]}
            for ref in default.refs if default else ():
                if not ref.env and ref.name not in above:
                    raise ScriptError(
                        f"the default of {name!r} uses ${{{ref.name}}}, which is not declared above it",
                        default.location,  # type: ignore[union-attr]
                        hint="defaults may use variables declared earlier under `vars:` and ${env:NAME}",
                    )
        return tuple(specs)

    def metrics(self, node: YNode) -> tuple[Metric, ...]:
        found = []
        spec = self.mapping(node, "metrics")
        for name, value in spec.items():
            where = spec.key_locations[name]
            if name not in self.declared:
                self.problems.append(
                    ScriptError(
                        f"metric {name!r} is not a variable of this script",
                        where,
                        hint=_suggest(name, sorted(self.declared)) or "a metric reports a variable the script sets",
                    )
                )
            options = value if isinstance(value, YMap) else YMap()
            if not isinstance(value, (YMap, YStr)) or (isinstance(value, YStr) and value):
                raise ScriptError(f"metric {name!r} takes label, warning, critical and uom", value.location)
            self.check_keys(options, METRIC_KEYS, f"metric {name!r}")
            ranges = {}
            for kind in ("warning", "critical"):
                ranges[kind] = None
                if kind in options:
                    text = self.text(options[kind], kind)
                    try:
                        ranges[kind] = parse_range(str(text))
                    except ValueError as exc:
                        raise ScriptError(str(exc), text.location, hint=f"e.g. {kind}: '10' or '5:20'") from None
            uom = self.metric_unit(options["uom"]) if "uom" in options else ""
            label = self.metric_label(options["label"]) if "label" in options else name
            found.append(Metric(name, label, ranges["warning"], ranges["critical"], uom, where))
        return tuple(found)

    def metric_unit(self, node: YNode) -> str:
        uom = str(self.text(node, "uom"))
        if uom not in METRIC_UNITS:
            units = ", ".join(unit or "''" for unit in METRIC_UNITS)
            raise ScriptError(
                f"uom {uom!r} is not a unit of the plugin guidelines: use one of {units}",
                node.location,
                hint="'' (no unit) is a count of things; c is a counter that only grows",
            )
        return uom

    def metric_label(self, node: YNode) -> str:
        """Any text may be a perfdata label (it is quoted as needed), but a line break would end the plugin line."""
        label = str(self.text(node, "label"))
        if not label:
            raise ScriptError("a metric's label must not be empty", node.location, hint="leave it out to use the name")
        if any(not char.isprintable() for char in label):
            raise ScriptError(
                f"a metric's label must be one line of printable text, not {label!r}",
                node.location,
                hint="monitors read the plugin output line by line",
            )
        return label

    def connect(self, node: YNode) -> Connect:
        conn = self.mapping(node, "connect")
        if "insecure" in conn:
            self.problems.append(
                ScriptError(
                    "a script cannot turn off the TLS certificate check",
                    conn.key_locations["insecure"],
                    hint="remove it; whoever runs the check can pass --insecure, which warns on stderr",
                )
            )
        self.check_keys(conn, (*CONNECT_KEYS, "insecure"), "connect")
        tls_port = "transport" in conn and isinstance(conn["transport"], YStr) and str(conn["transport"]) == "tls"
        defaults = {
            "transport": "tcp",
            "host": "127.0.0.1",
            "port": "5039" if tls_port else "5038",
            "timeout": str(DEFAULT_CONNECT_TIMEOUT),
        }
        fields: dict[str, Template] = {}
        for key, default in defaults.items():
            if key in conn:
                fields[key] = self.template(conn[key], f"connect {key}")
            else:
                fields[key] = parse_template(default, conn.location)
        if "timeout" in conn and fields["timeout"].is_literal:
            self.number(conn["timeout"], "connect timeout")
        host = fields["host"]
        if host.is_literal and not host.raw.strip():
            raise ScriptError("host is empty", host.location, hint="name the PBX, such as host: pbx.example.net")
        port = fields["port"]
        if port.is_literal and not (_DIGITS.fullmatch(port.raw.strip()) and 0 < int(port.raw) < 65536):
            raise ScriptError(
                f"port must be a number from 1 to 65535, not {port.raw!r}", port.location, hint="AMI listens on 5038"
            )
        transport = fields["transport"]
        if transport.is_literal and transport.raw not in TRANSPORTS:
            raise ScriptError(
                f"unknown transport {transport.raw!r}",
                transport.location,
                hint=f"choose one of: {', '.join(TRANSPORTS)}",
            )
        spawn = transport.raw == "spawn"
        if transport.is_literal:
            _only_for(conn, "spawn", SPAWN_KEYS, transport.raw)
            _only_for(conn, "tls", TLS_KEYS, transport.raw)
        tls = tuple((key, self.template(conn[key], f"connect {key}")) for key in TLS_KEYS if key in conn)
        if "key" in conn and "cert" not in conn:
            raise ScriptError(
                "`key` is the client certificate's key: it needs `cert:` too",
                conn.key_locations["key"],
                hint="add `cert: FILE`, or drop `key:` if the key is in the certificate file",
            )
        for key, template in tls:
            if key != "server_name" and template.is_literal:  # one with variables is checked when it runs
                connect_file(key, template.render({}), self.file, template.location)
        command = self.command(conn["command"]) if "command" in conn else ()
        if spawn and not command:
            raise ScriptError(
                "`transport: spawn` needs `command:`, a list of the program and its arguments",
                conn.location,
                hint="e.g. command: [ssh, pbx, nc, localhost, '5038']",
            )
        env = ()
        if "env" in conn:
            mapping = self.mapping(conn["env"], "env")
            env = tuple((name, self.template(value, f"env {name}")) for name, value in mapping.items())
            for name in mapping:
                if not name or "=" in name:
                    raise ScriptError(f"invalid environment variable name {name!r}", mapping.key_locations[name])
        cwd = self.template(conn["cwd"], "cwd") if "cwd" in conn else None
        return Connect(
            transport, fields["host"], fields["port"], fields["timeout"], conn.location, command, env, cwd, tls
        )

    def command(self, node: YNode) -> tuple[Template, ...]:
        if isinstance(node, YStr):
            raise ScriptError(
                "command must be a list of the program and its arguments, not one string",
                node.location,
                hint=f"e.g. command: {str(node).split()!r}; for a shell, write [sh, -c, '...']",
            )
        if not isinstance(node, YList) or not node:
            raise ScriptError("command must be a non-empty list", node.location)
        return tuple(self.template(item, "a command argument") for item in node)

    # -- steps -----------------------------------------------------------------------------

    def steps(self, node: YNode, newline: Newline) -> tuple[Step, ...]:
        if isinstance(node, YStr) and not node:
            return ()
        if not isinstance(node, YList):
            raise ScriptError(
                f"steps must be a list (each item starting with `- `), not {describe(node)}",
                node.location,
                hint="e.g. steps: [{print: hello}], or one `- print: hello` per line",
            )
        built = (self.attempt(lambda item=item: self.step(item, newline), None) for item in node)
        return tuple(step for step in built if step is not None)

    def step(self, node: YNode, newline: Newline) -> Step:
        if isinstance(node, YStr):
            raise ScriptError(
                f"a step must be a mapping such as `- print: text`, not the text {str(node)!r}",
                node.location,
                hint=_suggest(str(node), STEP_KINDS),
            )
        item = self.mapping(node, "a step")
        kinds = [key for key in item if key in STEP_KINDS]
        if len(kinds) > 1:  # `expect` is also an option of `action`
            owners = [k for k in kinds if all(o == k or o in STEP_OPTIONS.get(k, ()) for o in kinds)]
            kinds = owners or kinds
        if not kinds:
            key = next(iter(item), "")
            raise ScriptError(
                f"unknown step {key!r}" if key else "empty step",
                item.key_locations.get(key, item.location),
                hint=_suggest(key, STEP_KINDS) or f"steps are: {', '.join(STEP_KINDS)}",
            )
        if len(kinds) > 1:
            raise ScriptError(
                f"one step per list item: found both {kinds[0]!r} and {kinds[1]!r}",
                item.key_locations[kinds[1]],
                hint="start the second with its own `- `",
            )
        kind = kinds[0]
        self.check_keys(item, (kind, *STEP_OPTIONS.get(kind, ())), f"a `{kind}` step")
        where = item.key_locations[kind]
        value = item[kind]
        if kind == "send":
            mode = self.newline(item["newline"]) if "newline" in item else newline
            allow = (
                self.boolean(item["allow_line_breaks"], "allow_line_breaks") if "allow_line_breaks" in item else False
            )
            return Send(self.template(value, "send"), mode, where, allow)
        if kind == "expect":
            return self.expect(item, newline, where)
        if kind == "print":
            return Print(self.template(value, "print"), where)
        if kind == "fail":
            return Fail(self.template(value, "fail"), where)
        if kind == "set":
            pairs = []
            for name, text in self.mapping(value, "set").items():
                pairs.append((name, self.template(text, f"set {name}")))
            return Set(tuple(pairs), where)
        if kind == "sleep":
            return Sleep(self.number(value, "sleep", positive=False), where)
        if kind in ("login", "action", "wait_event"):
            return getattr(self, kind)(item, newline, where)
        if kind == "assert":
            message = self.template(item["message"], "message") if "message" in item else None
            return Assert(self.expression(value, "assert"), message, where)
        if kind == "foreach":
            return self.foreach(item, newline, where)
        if kind == "repeat":
            return self.repeat(item, newline, where)
        if kind == "include":
            return self.include(item, where)
        code_text = self.text(value, "exit")
        if not _DIGITS.fullmatch(code_text) or int(code_text) > 255:
            raise ScriptError(
                f"exit takes a status from 0 to 255, not {str(code_text)!r}", code_text.location, hint="e.g. exit: 1"
            )
        return Exit(int(code_text), where)

    # -- AMI steps -------------------------------------------------------------------------

    def login(self, item: YMap, newline: Newline, where: Location) -> Login:
        spec = self.mapping(item["login"], "login")
        self.check_keys(spec, LOGIN_KEYS, "login")
        for key in ("username", "secret"):
            if key not in spec:
                raise ScriptError(f"login needs `{key}`", spec.location, hint="login: {username: ..., secret: ...}")
        auth = self.template(spec["auth"], "auth") if "auth" in spec else parse_template("plain", spec.location)
        if auth.is_literal and auth.raw.lower() not in AUTH_METHODS:
            raise ScriptError(f"auth must be plain or md5, not {auth.raw!r}", auth.location, hint="auth: md5")
        return Login(
            self.template(spec["username"], "username"),
            self.template(spec["secret"], "secret"),
            self.template(spec["events"], "events") if "events" in spec else None,
            auth,
            self.number(item["timeout"], "timeout") if "timeout" in item else None,
            self.steps(item["on_error"], newline) if "on_error" in item else None,
            where,
        )

    def action(self, item: YMap, newline: Newline, where: Location) -> Action:
        spec = self.mapping(item["action"], "action")
        headers = []
        seen: dict[str, str] = {}
        previous: str | None = None
        for name, value in spec.items():
            if ":" in name or not name.strip() or name != name.strip():
                raise ScriptError(f"invalid header name {name!r}", spec.key_locations[name])
            if spec.flow and isinstance(value, YStr) and not value and not value.quoted:
                raise ScriptError(
                    f"header {name!r} has no value", spec.key_locations[name], hint=_valueless(spec, previous, name)
                )
            previous = name
            if name.lower() in seen:
                raise ScriptError(
                    f"header {name!r} is given twice (as {seen[name.lower()]!r} too); AMI names ignore case",
                    spec.key_locations[name],
                    hint="keep one of them",
                )
            seen[name.lower()] = name
            template = self.template(value, f"header {name}")
            self.no_line_breaks(template, f"the {name} header")
            headers.append((name, template))
        if not any(name.lower() == "action" for name, _ in headers):
            raise ScriptError("an action needs an `Action:` header", spec.location, hint="e.g. action: {Action: Ping}")
        save = ()
        if "save" in item:
            pairs = self.mapping(item["save"], "save")
            save = tuple((self.var_name(name, pairs.key_locations[name]), str(self.text(header, "save")))
                         for name, header in pairs.items())  # fmt: skip
        expect = self.matchers(item["expect"], "expect") if "expect" in item else ()
        list_var = self.var_name(self.text(item["list"], "list"), item["list"].location) if "list" in item else None
        items = self.items_check(item["items"]) if "items" in item else None
        if items is not None and list_var is None:
            raise ScriptError(
                "`items` checks a list, but this action collects none",
                item.key_locations["items"],
                hint="add `list: NAME` to the step",
            )
        return Action(
            tuple(headers),
            save,
            expect,
            list_var,
            items,
            self.number(item["timeout"], "timeout") if "timeout" in item else None,
            self.steps(item["on_error"], newline) if "on_error" in item else None,
            where,
        )

    def wait_event(self, item: YMap, newline: Newline, where: Location) -> WaitEvent:
        matches = self.matchers(item["wait_event"], "wait_event")
        if not matches:
            raise ScriptError(
                "wait_event needs at least one header to match", where, hint="e.g. wait_event: {Event: Hangup}"
            )
        return WaitEvent(
            matches,
            self.whole(item["count"], "count", 1) if "count" in item else 1,
            self.var_name(self.text(item["list"], "list"), item["list"].location) if "list" in item else None,
            self.number(item["timeout"], "timeout") if "timeout" in item else None,
            self.steps(item["on_timeout"], newline) if "on_timeout" in item else None,
            where,
        )

    def matchers(self, node: YNode, what: str) -> tuple[HeaderMatch, ...]:
        found = []
        for header, value in self.mapping(node, what).items():
            where = node.key_locations[header]
            if isinstance(value, YMap):
                self.check_keys(value, MATCHER_KEYS, f"the matcher of {header}")
                if len(value) != 1:
                    raise ScriptError(f"the matcher of {header} takes one of `re` or `text`", value.location)
                key = next(iter(value))
                kind = PatternKind.REGEX if key == "re" else PatternKind.TEXT
                source_node = value[key]
            else:
                kind, source_node = PatternKind.TEXT, value
            pattern = self.pattern(kind, source_node, ())
            found.append(HeaderMatch(header, kind, pattern.source, where))
        return tuple(found)

    def items_check(self, node: YNode) -> ItemsCheck:
        spec = self.mapping(node, "items")
        self.check_keys(spec, ITEMS_KEYS, "items")
        bounds = {key: self.whole(spec[key], key, 0) if key in spec else None for key in ("count", "min", "max")}
        low, high, exact = bounds["min"], bounds["max"], bounds["count"]
        if (low is not None and high is not None and low > high) or (
            exact is not None and ((low is not None and exact < low) or (high is not None and exact > high))
        ):
            raise ScriptError(
                "items: count, min and max contradict each other; no list could pass",
                spec.location,
                hint="min must not exceed max, and count must lie between them",
            )
        return ItemsCheck(
            bounds["count"],
            bounds["min"],
            bounds["max"],
            self.matchers(spec["every"], "every") if "every" in spec else (),
            self.matchers(spec["any"], "any") if "any" in spec else (),
            spec.location,
        )

    # -- flow --------------------------------------------------------------------------------

    def foreach(self, item: YMap, newline: Newline, where: Location) -> Foreach:
        for key in ("as", "steps"):
            if key not in item:
                raise ScriptError(
                    f"foreach needs `{key}:`", where, hint="foreach: ${numbers}, as: number, steps: [...]"
                )
        value = item["foreach"]
        items: Template | tuple[Template, ...]
        if isinstance(value, YList):
            items = tuple(self.template(entry, "a foreach item") for entry in value)
        else:
            items = self.template(value, "foreach")
        name = self.var_name(self.text(item["as"], "as"), item["as"].location)
        return Foreach(items, name, self.steps(item["steps"], newline), where)

    def repeat(self, item: YMap, newline: Newline, where: Location) -> Repeat:
        if "until" not in item and "limit" not in item:
            raise ScriptError(
                "repeat needs `until:` (the condition that ends it) or `limit:` (how many times)",
                where,
                hint="e.g. until: len(channels) > 0 and limit: 10",
            )
        return Repeat(
            self.steps(item["repeat"], newline),
            self.expression(item["until"], "until") if "until" in item else None,
            self.whole(item["limit"], "limit", 1) if "limit" in item else 10,
            self.number(item["delay"], "delay", positive=False) if "delay" in item else 1.0,
            where,
        )

    def include(self, item: YMap, where: Location) -> Include:
        path_text = self.text(item["include"], "include")
        if "${" in path_text:
            raise ScriptError(
                "an include path is read when the script loads; it cannot use variables",
                where,
                hint="write the path itself; pass values with the include's `vars:`",
            )
        no_nul(path_text, "include path", path_text.location)
        base = Path(self.file).parent
        path = Path(path_text) if Path(path_text).is_absolute() else base / path_text
        roots = self.roots or (resolved(base),)
        real = resolved(path)
        if not any(real.is_relative_to(root) for root in roots):
            raise ScriptError(
                f"included file {str(path_text)!r} is outside the folders includes may come from",
                path_text.location,
                hint="the run script's folder and its `include_paths:`, symlinks followed; "
                "add the folder to `include_paths:` or pass --include-path DIR",
            )
        if real in self.including:
            chain = " -> ".join(str(p) for p in (*self.including, real))
            raise ScriptError(f"include cycle: {chain}", path_text.location)
        if len(self.including) >= MAX_INCLUDE_DEPTH:
            raise ScriptError(f"includes nested deeper than {MAX_INCLUDE_DEPTH}", path_text.location)
        if not is_file(path):
            what = "is not a file that can be read" if os.path.lexists(path) else "does not exist"
            raise ScriptError(
                f"included file {str(path_text)!r} {what}",
                path_text.location,
                hint="an include path is relative to the folder of the file that includes it",
            )
        included = load_script(path, _including=self.including, _roots=roots)
        given: list[tuple[str, Template]] = []
        if "vars" in item:
            spec = self.mapping(item["vars"], "vars")
            for name, value in spec.items():
                if included.var(name) is None:
                    declared = [v.name for v in included.vars]
                    raise ScriptError(
                        f"{path_text} declares no variable {name!r}",
                        spec.key_locations[name],
                        hint=_suggest(name, declared) or f"it declares: {', '.join(declared) or 'none'}",
                    )
                given.append((name, self.template(value, f"include var {name}")))
        names = {name for name, _ in given}
        for var in included.vars:
            if var.required and var.name not in names:
                raise ScriptError(f"{path_text} requires variable {var.name!r}", where, hint="add it under `vars:`")
        return Include(included, tuple(given), where)

    # -- small values ------------------------------------------------------------------------

    def no_line_breaks(self, template: Template, what: str) -> None:
        """Text written in the script itself obeys the same rule as substituted values."""
        for part in template.parts:
            if isinstance(part, str) and any(char in part for char in "\r\n\0"):
                raise ScriptError(
                    f"{what} contains a line break or NUL; it would add lines to the packet",
                    template.location,
                    hint="one header per key; a value is one line",
                )

    def whole(self, node: YNode, what: str, minimum: int) -> int:
        value = self.text(node, what)
        if not _DIGITS.fullmatch(value) or int(value) < minimum:
            raise ScriptError(
                f"{what} must be a whole number of at least {minimum}, not {str(value)!r}",
                value.location,
                hint=f"e.g. {what}: {max(minimum, 1)}",
            )
        return int(value)

    def var_name(self, name: str, where: Location) -> str:
        if not NAME.fullmatch(name):
            raise ScriptError(f"invalid variable name {name!r}", where)
        return str(name)

    def expression(self, node: YNode, what: str) -> Expression:
        from amiscript.script.expr import parse_expression  # only assert and until need the language

        value = self.text(node, what)
        expression = parse_expression(str(value), value.location)
        self.expressions.append(expression)
        return expression

    def expect(self, item: YMap, newline: Newline, where: Location) -> Expect:
        value = item["expect"]
        timeout = self.number(item["timeout"], "timeout") if "timeout" in item else None
        if isinstance(value, YStr):
            if not value:
                raise ScriptError(
                    "expect needs a pattern", item.key_locations["expect"], hint="write `expect: 'some regex'`"
                )
            then = self.steps(item["then"], newline) if "then" in item else ()
            pattern = self.pattern(PatternKind.REGEX, value, then)
            return Expect((pattern,), None, None, timeout, where)
        if "then" in item:
            raise ScriptError(
                "`then` beside a list of alternatives is ambiguous",
                item.key_locations["then"],
                hint="put `then:` inside the alternative it belongs to",
            )
        if not isinstance(value, YList) or not value:
            raise ScriptError(
                "expect takes a regex, or a list of alternatives (`- re: ...`, `- text: ...`, `- eof:`, `- timeout:`)",
                value.location,
            )
        patterns: list[Pattern] = []
        on_eof = on_timeout = None
        for alt_node in value:
            alt = self.mapping(alt_node, "an expect alternative")
            for key in alt:
                if key not in ALTERNATIVE_KEYS and (key in STEP_KINDS or _suggest(key, STEP_KINDS)):
                    raise ScriptError(
                        f"{key!r} is not allowed directly in an expect alternative",
                        alt.key_locations[key],
                        hint="steps to run on a match go under `then:`, e.g. `then: [{fail: Login failed.}]`",
                    )
            self.check_keys(alt, ALTERNATIVE_KEYS, "an expect alternative")
            matchers = [key for key in ("re", "text", "eof", "timeout") if key in alt]
            if len(matchers) != 1:
                raise ScriptError(
                    "each alternative needs exactly one of `re`, `text`, `eof`, `timeout`",
                    alt.location,
                    hint="give each pattern its own `- re:` or `- text:` item",
                )
            key = matchers[0]
            if key in ("eof", "timeout"):
                if "then" in alt:
                    raise ScriptError(
                        f"`{key}:` takes its steps directly; `then` is for `re` and `text`",
                        alt.key_locations["then"],
                    )
                steps = self.steps(alt[key], newline)
                if key == "eof":
                    on_eof = steps
                else:
                    on_timeout = steps
                continue
            then = self.steps(alt["then"], newline) if "then" in alt else ()
            kind = PatternKind.REGEX if key == "re" else PatternKind.TEXT
            patterns.append(self.pattern(kind, alt[key], then))
        return Expect(tuple(patterns), on_eof, on_timeout, timeout, where)

    def pattern(self, kind: PatternKind, node: YNode, then: tuple[Step, ...]) -> Pattern:
        source = self.template(node, "a pattern")
        try:
            compiled = compile_pattern(kind, source)
        except regex.error as exc:
            position = f" at position {exc.pos}" if exc.pos is not None else ""
            raise ScriptError(
                f"invalid regex {source.raw!r}: {exc.msg}{position}",
                _column_of(node, exc.pos),
                hint="a ( [ { + * ? \\ or | that should match itself needs a backslash before it, e.g. \\(",
            ) from None
        captures = tuple(compiled.groupindex)
        return Pattern(kind, source, then, source.location, captures)

    # -- variables -------------------------------------------------------------------------

    def collect_implicit(self, node: YNode) -> None:
        """Names a script sets itself: regex named groups and `set` targets, anywhere in it."""
        if isinstance(node, YMap):
            for key, value in node.items():
                if key in ("re", "expect") and isinstance(value, YStr):
                    # a bad regex is reported with its position when the pattern itself is built
                    with contextlib.suppress(regex.error):
                        self.implicit.update(regex.compile(_stub_refs(value)).groupindex)
                elif key in ("set", "save") and isinstance(value, YMap):
                    for name in value:
                        if not NAME.fullmatch(name):
                            raise ScriptError(f"invalid variable name {name!r} in `{key}`", value.key_locations[name])
                        self.implicit.add(name)
                elif key in ("list", "as") and isinstance(value, YStr) and NAME.fullmatch(value):
                    self.implicit.add(str(value))
                if key in ("action", "login"):
                    self.implicit.update(AMI_RESULT_VARS)
                self.collect_implicit(value)
        elif isinstance(node, YList):
            for item in node:
                self.collect_implicit(item)

    def check_references(self) -> None:
        for expression in self.expressions:
            for name in expression.names:
                if name not in self.declared:
                    self.problems.append(
                        ScriptError(
                            f"undeclared variable {name!r} in expression {expression.source!r}",
                            expression.location,
                            hint=_suggest(name, sorted(self.declared)) or "declare it under `vars:`",
                        )
                    )
        for template in self.templates:
            for ref in template.refs:
                if not ref.env and ref.name not in self.declared:
                    self.problems.append(
                        ScriptError(
                            f"undeclared variable {ref.name!r}",
                            template.location,
                            hint=_suggest(ref.name, sorted(self.declared))
                            or f"declare it under `vars:` (e.g. `{ref.name}: default`)",
                        )
                    )


_DIGITS = regex.compile(r"[0-9]{1,10}")


def _only_for(conn: YMap, transport: str, keys: Iterable[str], chosen: str) -> None:
    """A key of one transport (spawn's `command:`, TLS's `cacert:`) under another is a mistake."""
    if chosen == transport:
        return
    for key in keys:
        if key in conn:
            raise ScriptError(
                f"`{key}` is only for `transport: {transport}`",
                conn.key_locations[key],
                hint=f"remove it, or set `transport: {transport}`",
            )


def _valueless(spec: YMap, previous: str | None, name: str) -> str:
    """`{Data: SIP/100,30}`: in a flow mapping a comma ends a plain value, and what follows it is
    a header of its own with no value: the action would send another header than written."""
    value = spec[previous] if previous is not None else None
    if not isinstance(value, YStr) or value.quoted or not value:
        return f'write {name}: VALUE, or {name}: "" for an empty value'
    before, after = value.location, spec.key_locations[name]
    gap = after.column - before.column - len(value) if before.line == after.line else 2
    joined = f"{value},{' ' * max(gap - 1, 0)}{name}"
    return f'quote a value that contains a comma: {previous}: "{joined}"'


def _split_at_comma(node: YMap, previous: str | None, key: str) -> str:
    """`{help: the mailbox, such as 123}`: in a flow mapping a comma ends a plain value, so the
    rest of the text became a key of its own. Words with spaces after a text value give it away."""
    if not (node.flow and previous is not None and " " in key.strip()):
        return ""
    value = node[previous]
    if not isinstance(value, YStr) or value.quoted or not value:
        return ""
    return f'quote the value if it contains a comma: {previous}: "{value}, {key}"'


def _column_of(node: YNode, offset: int | None) -> Location:
    """Where in the file a character of a one-line scalar is (its start if that is unclear)."""
    where = node.location
    text = str(node)
    if offset is None or not isinstance(node, YStr) or "\n" in text or node.style in ("|", ">"):
        return where
    if (node.style == "'" and "'" in text) or (node.style == '"' and ("\\" in text or '"' in text)):
        return where  # escapes make the file's columns differ from the text's
    return Location(where.file, where.line, where.column + offset + (1 if node.style else 0))


def _position(error: ScriptError) -> tuple[str, int, int]:
    where = error.location
    return (where.file, where.line, where.column) if where else ("", 0, 0)


def _stub_refs(text: str) -> str:
    return regex.sub(r"\$\{[^}]*\}", "x", text)


# Words people reach for that amiscript spells differently.
ALIASES = {"regex": "re", "password": "secret", "do": "steps", "regexp": "re", "pattern": "re", "user": "username"}


def _suggest(word: str, choices: Iterable[str]) -> str:
    choices = list(choices)
    if ALIASES.get(word) in choices:
        return f"did you mean {ALIASES[word]!r}?"
    import difflib  # only a misspelling needs it: kept out of every run's start-up

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""
