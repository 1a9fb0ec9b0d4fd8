"""`amiscript console` and `amiscript record`: the book's telnet session, for people.

The pure parts (short-form parsing, rendering, completion, turning a session into a script)
do no I/O and are tested directly; ``repl.py`` is the loop that joins them to a terminal and
a transport.
"""
