import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from amiscript.sim import SimConfig, Simulator, default_config

pytest_plugins = ["pytester"]

# Fuzzing budget (tests/test_fuzz.py). "ci" keeps the suite quick on a small machine and writes no
# example database; "long" is for a fuzz session by hand: HYPOTHESIS_PROFILE=long pytest tests/test_fuzz.py
_QUICK = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("ci", max_examples=120, database=None, derandomize=False, **_QUICK)
settings.register_profile("dev", max_examples=100, **_QUICK)
settings.register_profile("long", max_examples=20_000, **_QUICK)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(autouse=True)
def _simulator_secret_exported(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped checks read the secret from AMI_SECRET, as a user exports it; the simulator's
    admin secret is secret5. A test that needs it unset or different says so itself."""
    monkeypatch.setenv("AMI_SECRET", "secret5")


@pytest.fixture
def sim() -> Iterator[tuple[str, int]]:
    """The built-in simulator on a free port, its address; it refuses a login at once (Asterisk
    waits a second, which the simulator does by default)."""
    config = default_config()
    fast = SimConfig(users=config.users, mailboxes=config.mailboxes, login_fail_delay=0.0)
    with Simulator(fast, host="127.0.0.1", port=0) as server:
        yield server.address
