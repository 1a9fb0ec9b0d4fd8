"""The JSON Schema and the loader agree: every valid script passes both, every structural
mistake fails both; and the schema file shipped in the package is the one the code makes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from amiscript.script import load_script
from amiscript.script.schema import schema, schema_text
from amiscript.script.yamlnodes import YList, YMap, YNode, load_yaml_file

ROOT = Path(__file__).resolve().parents[1]
VALID = sorted((ROOT / "scripts").rglob("*.yaml")) + sorted((ROOT / "docs" / "examples").rglob("*.yaml"))
CORPUS = ROOT / "tests" / "corpus" / "invalid"
# Mistakes of structure (keys, shapes, types), which a schema can see. The others (an undeclared
# variable, a bad regex, a missing include) need the loader's own checks.
STRUCTURAL = [
    "unknown-top-key", "unknown-step", "two-steps-one-item", "unknown-step-option", "bad-newline",
    "steps-not-list", "step-is-text", "top-is-list", "no-steps", "var-unknown-option",
    "connect-unknown-key", "expect-alt-two-matchers", "expect-alt-step-directly", "expect-then-beside-list",
    "spawn-command-string", "login-missing-secret", "timeout-not-number", "exit-not-number",
    "var-required-not-bool", "foreach-without-as", "repeat-without-until-or-limit", "empty-expect",
    "wait-event-empty", "var-bad-name", "unknown-transport", "login-bad-auth", "exit-too-big",
    "sleep-negative", "timeout-negative", "timeout-zero", "spawn-without-command", "command-without-spawn",
    "wait-event-count-zero", "tls-option-without-tls", "tls-insecure-in-script", "tls-key-without-cert",
    "include-paths-not-list",
]  # fmt: skip
VALIDATOR = jsonschema.Draft7Validator(schema())


def test_the_schema_is_a_valid_draft_7_schema_with_a_description_and_example_for_each_key() -> None:
    jsonschema.Draft7Validator.check_schema(schema())
    top = schema()["properties"]
    for name, spec in top.items():
        assert spec.get("description") and spec.get("examples"), name
    for step in schema()["definitions"]["step"]["oneOf"]:
        for name, spec in step["properties"].items():
            assert spec.get("description") and spec.get("examples"), (step["title"], name)


def test_the_shipped_schema_file_is_the_one_the_code_makes() -> None:
    shipped = ROOT / "amiscript" / "script" / "schema.json"
    assert shipped.read_text(encoding="utf-8") == schema_text()
    assert json.loads(shipped.read_text(encoding="utf-8")) == schema()


def editor_view(node: YNode) -> object:
    """The script as an editor's YAML 1.2 reading types it: plain 5038 is a number, true a
    boolean, an empty value null. (amiscript itself reads every scalar as text.)"""
    if isinstance(node, YMap):
        return {key: editor_view(value) for key, value in node.items()}
    if isinstance(node, YList):
        return [editor_view(item) for item in node]
    text = str(node)
    if node.style is not None:
        return text
    if text in ("", "~", "null", "Null", "NULL"):
        return None
    if text in ("true", "True", "TRUE", "false", "False", "FALSE"):
        return text.lower() == "true"
    if re.fullmatch(r"[-+]?[0-9]+", text):
        return int(text)
    if re.fullmatch(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?", text):
        return float(text)
    return text


@pytest.mark.parametrize("path", VALID, ids=lambda path: path.name)
def test_every_valid_script_passes_the_loader_and_the_schema_as_amiscript_and_as_an_editor_read_it(
    path: Path,
) -> None:
    load_script(path)
    for view in (load_yaml_file(path), editor_view(load_yaml_file(path))):
        errors = list(VALIDATOR.iter_errors(view))
        assert errors == [], [error.message for error in errors]


@pytest.mark.parametrize("name", STRUCTURAL)
def test_every_structural_mistake_fails_the_loader_and_the_schema(name: str) -> None:
    path = CORPUS / f"{name}.yaml"
    with pytest.raises(Exception):  # noqa: B017 - the corpus test pins the exact message
        load_script(path)
    assert not VALIDATOR.is_valid(load_yaml_file(path)), f"the schema accepts {name}"
    assert not VALIDATOR.is_valid(editor_view(load_yaml_file(path))), f"the schema accepts {name} as an editor reads it"
