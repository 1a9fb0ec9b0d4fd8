"""The reference's examples run: each one in docs/examples against the simulator, and together
they show every step and every option of the language, so the docs cannot rot. The YAML written
inline in the pages is checked too: every block parses, and every whole script (a mapping with
`steps:`) passes `amiscript check`, unless the line before its fence is `<!-- fragment: why -->`."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from amiscript.errors import ScriptError
from amiscript.script.schema import STEP_OPTIONS, TOP_KEYS
from amiscript.script.yamlnodes import YList, YMap, load_yaml_file, parse_yaml

from .helpers import AMISCRIPT

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "examples"
OUTPUT = {
    "send-expect.yaml": "AMI version 11.0.0\nPing: Pong\n",
    "vars-and-flow.yaml": "Hello, 100,200 (2 of them)\ncalling 100\ncalling 200\na\nb\n",
    "ami-steps.yaml": (
        "124@default: 2 new, 1 old\nVoicemail user list will follow\nAsterisk 22.10.1\n"
        "originate refused: Originate failed\nevent said hello\n"
    ),
    "include.yaml": "Pong\n",
    "spawn.yaml": "HELLO\n",
}
NO_SIMULATOR = {"spawn.yaml"}  # it talks to its own program


@pytest.mark.parametrize("name", sorted(OUTPUT))
def test_each_example_runs_and_prints_what_the_reference_says(name: str) -> None:
    extra = [] if name in NO_SIMULATOR else ["--simulate"]
    result = subprocess.run(
        [*AMISCRIPT, "run", str(EXAMPLES / name), *extra], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert (result.returncode, result.stdout) == (0, OUTPUT[name]), result.stderr


def test_every_example_file_is_run() -> None:
    assert {path.name for path in EXAMPLES.glob("*.yaml")} == set(OUTPUT)


def used_keys() -> tuple[set[str], set[str], dict[str, set[str]]]:
    top: set[str] = set()
    kinds: set[str] = set()
    options: dict[str, set[str]] = {kind: set() for kind in STEP_OPTIONS}

    def walk(node: object) -> None:
        if isinstance(node, YMap):
            for kind in STEP_OPTIONS:
                if kind in node and (kind != "expect" or "action" not in node):
                    kinds.add(kind)
                    options[kind].update(key for key in node if key != kind)
            for value in node.values():
                walk(value)
        elif isinstance(node, YList):
            for item in node:
                walk(item)

    for path in EXAMPLES.rglob("*.yaml"):
        root = load_yaml_file(path)
        assert isinstance(root, YMap)
        top.update(root)
        walk(root)
    return top, kinds, options


def test_the_examples_show_every_step_and_every_option() -> None:
    top, kinds, options = used_keys()
    assert set(TOP_KEYS) - top == set(), "top-level keys without an example"
    assert set(STEP_OPTIONS) - kinds == set(), "steps without an example"
    missing = {kind: set(allowed) - options[kind] for kind, allowed in STEP_OPTIONS.items()}
    assert {kind: keys for kind, keys in missing.items() if keys} == {}


PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
FENCE = re.compile(r"^```ya?ml\n(.*?)^```", re.DOTALL | re.MULTILINE)
FRAGMENT = "<!-- fragment:"


def inline_yaml() -> list[tuple[str, str]]:
    """(PAGE-LINE, text) of every ```yaml block in the pages that is not marked a fragment."""
    blocks = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            before = text[: match.start()].rstrip("\n").rpartition("\n")[2]
            if not before.startswith(FRAGMENT):
                blocks.append((f"{page.stem}-{text.count(chr(10), 0, match.start()) + 1}", match.group(1)))
    return blocks


def test_every_inline_yaml_block_of_the_docs_parses() -> None:
    broken = []
    for name, text in inline_yaml():
        try:
            parse_yaml(text, name)
        except ScriptError as error:
            broken.append(str(error))
    assert broken == []


def test_every_whole_script_written_in_the_docs_passes_check(tmp_path: Path) -> None:
    """docs/examples run, but the scripts written inline in the pages were never loaded: the
    first example of language.md had a comma that split its `help:` text and did not load."""
    scripts = []
    for name, text in inline_yaml():
        root = parse_yaml(text, name)
        if isinstance(root, YMap) and "steps" in root:
            (tmp_path / f"{name}.yaml").write_text(text, encoding="utf-8")
            scripts.append(f"{name}.yaml")
    assert "language-7.yaml" in scripts  # the reference's opening example is among them
    result = subprocess.run([*AMISCRIPT, "check", *scripts], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert ": error:" not in result.stdout
