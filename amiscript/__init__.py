"""amiscript: Expect-style conversations with the Asterisk Manager Interface."""

__version__ = "0.1.0"
