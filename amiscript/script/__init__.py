"""The script language: YAML in, typed frozen steps out, with positions for every error."""

from amiscript.script.loader import compile_pattern, load_script, load_script_text
from amiscript.script.model import Script

__all__ = ["Script", "compile_pattern", "load_script", "load_script_text"]
