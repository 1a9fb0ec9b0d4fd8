"""The script language's structure, once: the JSON Schema editors use, and the key tables the
loader checks against. Both come from the tables below, so they cannot disagree.

`amiscript schema` prints the schema; docs/editors.md shows how to point an editor at it.
Values are typed loosely (a number may be written as text) because amiscript reads every
scalar as the text the author typed and decides itself what is a number.
"""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]

# An editor reads YAML 1.2 types (`5038` is a number, `true` a boolean, an empty value null);
# amiscript reads the same scalars as the text typed. Both views must pass.
TEXT: Json = {"type": ["string", "number", "boolean", "null"]}
TEMPLATE = r"\$\{"  # a value with a variable is checked when the run renders it
BOOLEAN_WORDS = ("true", "false", "yes", "no", "True", "False", "Yes", "No", "TRUE", "FALSE", "YES", "NO")
BOOLEAN: Json = {"anyOf": [{"type": "boolean"}, {"enum": list(BOOLEAN_WORDS)}]}
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
NAME: Json = {"type": "string", "pattern": NAME_PATTERN}
STEPS: Json = {"anyOf": [{"$ref": "#/definitions/steps"}, {"type": "null"}, {"const": ""}]}
MATCHERS: Json = {"$ref": "#/definitions/matchers"}


def seconds(*, positive: bool = True, maximum: float = 86400) -> Json:
    """A number of seconds, as a number or as the text of one (a plain decimal)."""
    bound = {"exclusiveMinimum": 0} if positive else {"minimum": 0}
    text = (
        r"^\s*\+?(?=.*[1-9])[0-9]*\.?[0-9]*(e[+-]?[0-9]+)?\s*$"
        if positive
        else r"^\s*\+?[0-9]*\.?[0-9]*(e[+-]?[0-9]+)?\s*$"
    )
    return {"anyOf": [{"type": "number", **bound, "maximum": maximum}, {"type": "string", "pattern": text}]}


def whole(minimum: int, maximum: int | None = None, text: str | None = None) -> Json:
    limit = {"maximum": maximum} if maximum is not None else {}
    text = text or (r"^0*[1-9][0-9]*$" if minimum >= 1 else r"^[0-9]+$")
    return {"anyOf": [{"type": "integer", "minimum": minimum, **limit}, {"type": "string", "pattern": text}]}


def choice(*words: str) -> Json:
    """One of fixed words, or a value with a variable (checked when used)."""
    return {"anyOf": [{"enum": list(words)}, {"type": "string", "pattern": TEMPLATE}]}


NUMBER = seconds()
WHOLE = whole(1)


def key(schema: Json, description: str, example: Any) -> Json:
    return {**schema, "description": description, "examples": [example]}


TOP: dict[str, Json] = {
    "name": key(TEXT, "A short name for reports.", "vmcount"),
    "description": key(TEXT, "What the script checks.", "Count messages in a voicemail box"),
    "vars": key({"$ref": "#/definitions/vars"}, "The variables the script uses, with defaults.", {"mailbox": "123"}),
    "connect": key({"$ref": "#/definitions/connect"}, "Where to connect.", {"host": "127.0.0.1", "port": "5038"}),
    "timeout": key(seconds(), "Seconds each step waits for its answer by default (10).", 10),
    "newline": key({"enum": ["crlf", "lf"]}, "How a newline in `send` text goes out (crlf).", "crlf"),
    "match_max": key(whole(64, 1 << 30), "Characters of received text kept for matching (1048576).", 1048576),
    "event_backlog": key(WHOLE, "Events kept for wait_event while other AMI steps wait (1000).", 1000),
    "on": key({"$ref": "#/definitions/handlers"}, "Handlers for end of file and timeout.", {"eof": [{"exit": 1}]}),
    "metrics": key(
        {"$ref": "#/definitions/metrics"},
        "Variables reported as perfdata by --format nagios, with warning/critical ranges.",
        {"new": {"label": "new_messages", "warning": "10", "critical": "20"}},
    ),
    "include_paths": key(
        {"type": "array", "items": {"type": "string"}},
        "Folders besides this script's own that `include` may read from (relative to this script; "
        "only the script that is run counts).",
        ["../common"],
    ),
    "steps": key(STEPS, "The steps, in order.", [{"print": "hello"}]),
}
VAR_OPTIONS: dict[str, Json] = {
    "default": key(TEXT, "The value when none is given.", "123@default"),
    "required": key(BOOLEAN, "The run stops (exit 2) if no value is given.", True),
    "secret": key(BOOLEAN, "Mask the value as **** in every output.", True),
    "help": key(TEXT, "What the value means; shown when it is missing.", "the mailbox to query"),
}
CONNECT: dict[str, Json] = {
    "transport": key(
        choice("tcp", "tls", "telnet", "spawn"), "tcp (default), tls (AMI over TLS), telnet or spawn.", "tcp"
    ),
    "host": key(TEXT, "Host for tcp, tls and telnet (127.0.0.1).", "pbx.example.net"),
    "port": key(
        {
            "anyOf": [
                {"type": "integer", "minimum": 1, "maximum": 65535},
                {"type": "string", "pattern": r"^[0-9]+$|\$\{"},
            ]
        },
        "Port for tcp and telnet (5038), and tls (5039).",
        "5038",
    ),
    "timeout": key(
        {"anyOf": [seconds(), {"type": "string", "pattern": TEMPLATE}]}, "Seconds to wait for the connection (10).", 5
    ),
    "command": key(
        {"type": "array", "items": TEXT, "minItems": 1},
        "spawn: the program and its arguments.",
        ["ssh", "pbx", "nc", "localhost", "5038"],
    ),
    "env": key(
        {"type": "object", "propertyNames": {"pattern": "^[^=]+$"}, "additionalProperties": TEXT},
        "spawn: added to the environment.",
        {"LC_ALL": "C"},
    ),
    "cwd": key(TEXT, "spawn: working directory.", "/tmp"),
    "cacert": key(TEXT, "tls: trust the CA certificates in this PEM file instead of the system's.", "certs/pbx-ca.pem"),
    "cert": key(TEXT, "tls: client certificate (PEM), for servers that ask for one.", "certs/monitor.pem"),
    "key": key(TEXT, "tls: the client certificate's unencrypted key, if not in `cert`.", "certs/monitor.key"),
    "server_name": key(TEXT, "tls: the name the server's certificate must hold, if not `host`.", "pbx.example.net"),
}
SPAWN_KEYS = ("command", "env", "cwd")
TLS_KEYS = ("cacert", "cert", "key", "server_name")
HANDLERS: dict[str, Json] = {
    "eof": key(STEPS, "Run on end of file, or when the connection fails or breaks.", [{"print": "Failed to connect."}]),
    "timeout": key(STEPS, "Run when an expect times out with no handler of its own.", [{"fail": "No answer."}]),
}
LOGIN: dict[str, Json] = {
    "username": key(TEXT, "The manager.conf user.", "admin"),
    "secret": key(TEXT, "Its secret (masked everywhere).", "${secret}"),
    "events": key(TEXT, "The Events header, as typed: on, off, or classes.", "off"),
    "auth": key(
        choice("plain", "md5"),
        "plain (default) or md5: Challenge, then the key; the secret never crosses the wire.",
        "md5",
    ),
}
# The units of measure the Nagios plugin guidelines define for perfdata (none: a count).
METRIC_UNITS = ("", "s", "ms", "us", "%", "B", "KB", "MB", "TB", "c")
METRIC: dict[str, Json] = {
    "label": key({"type": "string"}, "The perfdata label (default: the variable's name).", "new_messages"),
    "warning": key({"type": ["string", "number"]}, "Nagios range: WARNING when the value is outside it.", "10"),
    "critical": key({"type": ["string", "number"]}, "Nagios range: CRITICAL when the value is outside it.", "20"),
    "uom": key({"enum": list(METRIC_UNITS)}, "Unit of measure.", "s"),
}
ITEMS: dict[str, Json] = {
    "count": key(whole(0), "The list must have exactly this many items.", 0),
    "min": key(whole(0), "At least this many items.", 1),
    "max": key(whole(0), "At most this many items.", 10),
    "every": key(MATCHERS, "Headers every item must match.", {"Event": "Status"}),
    "any": key(MATCHERS, "Headers at least one item must match.", {"Channel": {"re": "^PJSIP/100-"}}),
}
ON_ERROR = key(STEPS, "Run instead of failing when the answer is an Error or a check fails.", [{"fail": "Failed."}])
STEP_TIMEOUT = key(NUMBER, "Seconds this step waits (overrides `timeout`).", 5)

# What a step needs beyond its own key: options it cannot do without, or cannot have.
STEP_REQUIRES: dict[str, Json] = {
    "foreach": {"required": ["foreach", "as", "steps"]},
    "repeat": {"anyOf": [{"required": ["until"]}, {"required": ["limit"]}]},
    "expect": {"if": {"properties": {"expect": {"type": "array"}}}, "then": {"not": {"required": ["then"]}}},
}

# step kind -> (its own value, {option: schema}, description, example)
STEP_SPECS: dict[str, tuple[Json, dict[str, Json], str, Any]] = {
    "send": (
        TEXT,
        {
            "newline": key({"enum": ["crlf", "lf"]}, "This step's newline mode.", "lf"),
            "allow_line_breaks": key(BOOLEAN, "Let substituted values hold CR/LF (you take responsibility).", True),
        },
        "Send text; a newline goes out as CR LF.",
        "Action: Ping\n\n",
    ),
    "expect": (
        {
            "oneOf": [
                {"type": "string", "minLength": 1},
                {"type": "array", "items": {"$ref": "#/definitions/alternative"}, "minItems": 1},
            ]
        },
        {
            "then": key(STEPS, "Steps to run when the regex matches.", [{"print": "Connected."}]),
            "timeout": STEP_TIMEOUT,
        },
        "Wait for a regex, or the earliest of several alternatives.",
        "Response:\\s*Success",
    ),
    "print": (TEXT, {}, "Write a line to standard output.", "New messages: ${new}"),
    "fail": (TEXT, {}, "Write the message, stop, exit 1.", "Login failed."),
    "set": (
        {"type": "object", "propertyNames": {"pattern": NAME_PATTERN}, "additionalProperties": TEXT},
        {},
        "Set variables.",
        {"total": "${new}/${old}"},
    ),
    "sleep": (seconds(positive=False), {}, "Wait this many seconds.", 0.5),
    "exit": (
        whole(0, 255, r"^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$"),
        {},
        "Stop with this exit status (0-255).",
        0,
    ),
    "login": (
        {"type": "object", "properties": LOGIN, "required": ["username", "secret"], "additionalProperties": False},
        {
            "timeout": STEP_TIMEOUT,
            "on_error": ON_ERROR,
        },
        "Log in to the AMI; a refused login fails with the server's message.",
        {"username": "admin", "secret": "x"},
    ),
    "action": (
        {
            "type": "object",
            "propertyNames": {"pattern": "^[^:\\s][^:]*$"},
            "additionalProperties": TEXT,
            "minProperties": 1,
        },
        {
            "save": key(
                {"type": "object", "propertyNames": {"pattern": NAME_PATTERN}, "additionalProperties": TEXT},
                "Variables from headers of the answer.",
                {"new": "NewMessages"},
            ),
            "expect": key(MATCHERS, "Headers the answer must have: exact text, or {re: ...}.", {"Message": "Success"}),
            "list": key(NAME, "Collect an event list (EventList: start ... Complete) into this variable.", "channels"),
            "items": key(
                {"type": "object", "properties": ITEMS, "additionalProperties": False},
                "Checks on the collected list.",
                {"min": 1},
            ),
            "timeout": STEP_TIMEOUT,
            "on_error": ON_ERROR,
        },
        "Send one AMI action and wait for the answer with its ActionID.",
        {"Action": "Ping"},
    ),
    "wait_event": (
        {"allOf": [MATCHERS], "minProperties": 1},
        {
            "count": key(WHOLE, "How many matching events to wait for (1).", 2),
            "list": key(NAME, "Keep the matching events as a list variable.", "hangups"),
            "timeout": STEP_TIMEOUT,
            "on_timeout": key(STEPS, "Run instead of failing on timeout.", [{"print": "no event"}]),
        },
        "Wait for events whose headers match.",
        {"Event": "Hangup"},
    ),
    "assert": (
        TEXT,
        {
            "message": key(TEXT, "Said when the assert fails.", "too many messages"),
        },
        "Check an expression; a false one fails the run.",
        "new <= 10",
    ),
    "foreach": (
        {"oneOf": [TEXT, {"type": "array", "items": TEXT}]},
        {
            "as": key(NAME, "The variable each item is put in.", "number"),
            "steps": key(STEPS, "Steps to run for each item.", [{"print": "${number}"}]),
        },
        "Run steps for each item of a list (or comma-separated text).",
        "${friends}",
    ),
    "repeat": (
        STEPS,
        {
            "until": key(TEXT, "The expression that ends the loop.", "len(channels) > 0"),
            "limit": key(WHOLE, "At most this many rounds (10).", 10),
            "delay": key(seconds(positive=False), "Seconds between rounds (1).", 0.5),
        },
        "Run steps again until a condition holds.",
        [{"action": {"Action": "Status"}}],
    ),
    "include": (
        TEXT,
        {
            "vars": key(
                {"type": "object", "additionalProperties": TEXT},
                "Values for the included script.",
                {"username": "admin"},
            ),
        },
        "Run another script's steps on this connection.",
        "common/login.yaml",
    ),
}

ALTERNATIVE: dict[str, Json] = {
    "re": key(TEXT, "A regex; named groups become variables.", "NewMessages: (?P<new>\\d+)"),
    "text": key(TEXT, "Exact text.", "Response: Success"),
    "then": key(STEPS, "Steps to run when it matches.", [{"print": "ok"}]),
    "eof": key(STEPS, "Steps to run on end of file.", [{"fail": "closed"}]),
    "timeout": key(STEPS, "Steps to run on timeout.", [{"fail": "no answer"}]),
}

# The key tables the loader checks against.
TOP_KEYS = tuple(TOP)
VAR_KEYS = tuple(VAR_OPTIONS)
CONNECT_KEYS = tuple(CONNECT)
HANDLER_KEYS = tuple(HANDLERS)
LOGIN_KEYS = tuple(LOGIN)
METRIC_KEYS = tuple(METRIC)
ITEMS_KEYS = tuple(ITEMS)
ALTERNATIVE_KEYS = tuple(ALTERNATIVE)
STEP_KINDS = tuple(STEP_SPECS)
STEP_OPTIONS = {kind: tuple(options) for kind, (_, options, _, _) in STEP_SPECS.items()}
MATCHER_KEYS = ("re", "text")


def schema() -> Json:
    """The JSON Schema (draft-07, as yaml-language-server reads it)."""
    steps_one_of = []
    for kind, (value, options, description, example) in STEP_SPECS.items():
        steps_one_of.append(
            {
                "type": "object",
                "title": kind,
                "description": description,
                "properties": {kind: {**value, "description": description, "examples": [example]}, **options},
                "required": [kind],
                "additionalProperties": False,
                **STEP_REQUIRES.get(kind, {}),
            }
        )
    matcher = {
        "oneOf": [
            TEXT,
            {"type": "object", "properties": {"re": TEXT}, "required": ["re"], "additionalProperties": False},
            {"type": "object", "properties": {"text": TEXT}, "required": ["text"], "additionalProperties": False},
        ]
    }
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": "https://amiscript.invalid/schema/script-v1.json",
        "title": "amiscript script",
        "description": "An amiscript script: a conversation with the Asterisk Manager Interface, in steps.",
        "type": "object",
        "properties": TOP,
        "required": ["steps"],
        "additionalProperties": False,
        "definitions": {
            "steps": {"type": "array", "items": {"$ref": "#/definitions/step"}},
            "step": {"oneOf": steps_one_of},
            "vars": {
                "type": "object",
                "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                "additionalProperties": {
                    "oneOf": [
                        TEXT,
                        {"type": "object", "properties": VAR_OPTIONS, "additionalProperties": False},
                    ]
                },
            },
            "connect": {
                "type": "object",
                "properties": CONNECT,
                "additionalProperties": False,
                "dependencies": {"key": ["cert"]},
                "allOf": [
                    {
                        "if": {"properties": {"transport": {"const": "spawn"}}, "required": ["transport"]},
                        "then": {"required": ["command"]},
                    },
                    {
                        "if": {"properties": {"transport": {"enum": ["tcp", "tls", "telnet"]}}},
                        "then": {"not": {"anyOf": [{"required": [key]} for key in SPAWN_KEYS]}},
                    },
                    {
                        "if": {"properties": {"transport": {"enum": ["tcp", "telnet", "spawn"]}}},
                        "then": {"not": {"anyOf": [{"required": [key]} for key in TLS_KEYS]}},
                    },
                ],
            },
            "handlers": {"type": "object", "properties": HANDLERS, "additionalProperties": False},
            "metrics": {
                "type": "object",
                "propertyNames": {"pattern": NAME_PATTERN},
                "additionalProperties": {
                    "anyOf": [
                        {"type": "object", "properties": METRIC, "additionalProperties": False},
                        {"type": "null"},
                        {"const": ""},
                    ]
                },
            },
            "alternative": {
                "type": "object",
                "properties": ALTERNATIVE,
                "additionalProperties": False,
                "oneOf": [{"required": [name]} for name in ("re", "text", "eof", "timeout")],
                "not": {"anyOf": [{"required": ["eof", "then"]}, {"required": ["timeout", "then"]}]},
            },
            "matchers": {"type": "object", "additionalProperties": matcher},
        },
    }


def schema_text() -> str:
    import json  # only `amiscript schema` needs it: kept out of a run's start-up

    return json.dumps(schema(), indent=2, ensure_ascii=False) + "\n"
