"""Reporters: how a run's results and conversation are shown (human text for now)."""

from amiscript.report.human import HumanReport

__all__ = ["HumanReport"]
