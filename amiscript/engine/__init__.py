"""The engine: a pure matcher, the step interpreter, and what it tells the outside world."""

from amiscript.engine.interpreter import Interpreter, Opener, TargetOverride
from amiscript.engine.matcher import Found, Searcher, StreamBuffer
from amiscript.engine.output import MASK, Masker, Output

__all__ = [
    "MASK",
    "Found",
    "Interpreter",
    "Masker",
    "Opener",
    "Output",
    "Searcher",
    "StreamBuffer",
    "TargetOverride",
]
