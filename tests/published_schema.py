"""The published JUnit schema, fetched from the package registry rather than copied into this tree.

The schema CI servers are checked against is Jenkins xunit's ``junit-10.xsd`` (Gregory Boissinot, MIT).
pytest's own tests validate ``--junitxml`` against it and its source distribution on PyPI carries it,
so the tests download that sdist once (pinned version, pinned file hash) and cache the schema.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest

SDIST = "pytest==8.3.3"
MEMBER = "pytest-8.3.3/testing/example_scripts/junit-10.xsd"
SHA256 = "a1a816f58d1bf95ebabf371994df0b9246dee66ea9572fbec4f9296f1b2c0ff6"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "amiscript-tests"


def _download(target: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:", SDIST, "-d", tmp],
            check=True,
            capture_output=True,
            timeout=180,
        )
        (archive,) = Path(tmp).glob("pytest-*.tar.gz")
        with tarfile.open(archive) as tar:
            member = tar.extractfile(MEMBER)
            assert member is not None
            data = member.read()
    if hashlib.sha256(data).hexdigest() != SHA256:
        raise RuntimeError(f"{MEMBER} from {SDIST} does not have the pinned hash")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


def published_junit_xsd() -> Path:
    """The schema's path; downloads it on first use. Outside CI a machine offline skips, in CI it fails."""
    target = cache_dir() / "junit-10.xsd"
    if target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == SHA256:
        return target
    try:
        _download(target)
    except (OSError, subprocess.SubprocessError, RuntimeError, tarfile.TarError, KeyError) as error:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"cannot fetch the published JUnit schema ({SDIST} sdist from PyPI): {error}")
    return target
