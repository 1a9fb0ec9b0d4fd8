"""The corpus of mistakes: each invalid script is reported at the right place, with a hint."""

from __future__ import annotations

from pathlib import Path

import pytest

from amiscript.errors import ScriptError, ScriptErrors
from amiscript.script import load_script

CORPUS = Path(__file__).parent / "corpus" / "invalid"


def expectations() -> list[tuple[str, str, str, str]]:
    rows = []
    for line in (CORPUS / "expected.tsv").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, location, message, hint = line.split("\t")
            rows.append((name, location, message, hint))
    return rows


def test_the_corpus_has_at_least_40_mistakes_and_every_file_is_listed() -> None:
    listed = {row[0] for row in expectations()}
    assert len(listed) >= 40
    assert listed == {path.name for path in CORPUS.glob("*.yaml")}


@pytest.mark.parametrize(("name", "location", "message", "hint"), expectations(), ids=lambda value: str(value)[:40])
def test_each_mistake_is_reported_at_its_line_and_column_with_a_hint(
    name: str, location: str, message: str, hint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(CORPUS)
    with pytest.raises(ScriptError) as raised:
        load_script(name)
    first = raised.value.problems[0] if isinstance(raised.value, ScriptErrors) else raised.value
    assert (str(first.location), first.message, first.hint) == (location, message, hint)
    assert hint, "every mistake in the corpus comes with a hint that fixes it"
