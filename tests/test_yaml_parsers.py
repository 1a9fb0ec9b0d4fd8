"""Scripts are parsed with libyaml where PyYAML has it, and with PyYAML's own parser where
libyaml refuses the text (so errors keep PyYAML's words). Both must give the same nodes, at
the same places, for every script in the repository and for odd input."""

from __future__ import annotations

from pathlib import Path

import pytest

from amiscript.errors import ScriptError
from amiscript.script import yamlnodes
from amiscript.script.yamlnodes import YList, YMap, YNode, parse_yaml

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(
    path for folder in ("scripts", "docs", "tests") for path in (ROOT / folder).rglob("*.yaml") if path.is_file()
)
ODD = [
    "a: b\r\nc: d\r\n",
    "a: |\n  x\n   y\n",
    "a: >-\n  x\n\n  y\n",
    "a: 'it''s'\n",
    'a: "\\x41\\u00e9"\n',
    "? a\n: b\n",
    "{a: [b, {c: d}]}\n",
    "a: ÄÖÜ \u2013 x\nb: [é, 'ü', \"€\"]\n",
    "a:\tb\n",  # PyYAML refuses the tab, libyaml would not: the tab goes to PyYAML
    "a: 'unterminated\n",
    "a: 1\na: 2\n",
    "a: !!int 3\n",
    "a: &x 1\nb: *x\n",
    "%YAML 1.2\n---\na: b\n",
    "a: b\x00c\n",
    "[" * 500,
]


def shape(node: YNode) -> object:
    if isinstance(node, YMap):
        return ("map", str(node.location), [(k, str(node.key_locations[k]), shape(v)) for k, v in node.items()])
    if isinstance(node, YList):
        return ("list", str(node.location), [shape(item) for item in node])
    return ("text", str(node), str(node.location), node.quoted, node.style)


def parsed(text: str) -> object:
    try:
        return shape(parse_yaml(text, "t.yaml"))
    except ScriptError as error:
        return ("error", str(error))


@pytest.mark.parametrize("text", [path.read_text(encoding="utf-8") for path in SCRIPTS] + ODD)
def test_libyaml_and_pyyaml_read_a_script_the_same(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with_libyaml = parsed(text)
    monkeypatch.setattr(yamlnodes, "_FastLoader", None)  # PyYAML's own parser only
    assert with_libyaml == parsed(text)
