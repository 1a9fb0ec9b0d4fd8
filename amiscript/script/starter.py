"""`amiscript new NAME`: a commented starter script that passes `check` and runs with --simulate."""

from __future__ import annotations

STARTER = """\
# {name}.yaml: a starter amiscript check. Try it against the built-in simulator:
#   amiscript check {name}.yaml
#   amiscript run {name}.yaml --simulate
#   amiscript run {name}.yaml --target tcp://pbx.example.net:5038 --var secret=...
# The language reference is docs/language.md; `amiscript run --dry-run` shows what it would send.
name: {name}
description: Log in, ask for one mailbox's message counts, and check them.

vars:
  host: 127.0.0.1
  port: "5038"
  username: admin
  secret:
    default: secret5              # better: default: ${{env:AMI_SECRET}}, so it is not in the file
    secret: true                  # masked as **** in every output
  mailbox:
    default: 124@default
    help: the mailbox to check, such as 123@default
  max_new:
    default: "10"
    help: the most new messages that are still fine

connect:
  host: ${{host}}
  port: ${{port}}
  timeout: 5                      # seconds to wait for the connection

timeout: 10                       # seconds each step waits for its answer

# No `on: eof` handler: if the PBX cannot be reached, the run stops with exit 3 and says where it
# tried (after --target or --simulate) and why (connection refused, host not found, no answer).

steps:
  # 1. Log in. A refused login stops the run with the server's message.
  - login:
      username: ${{username}}
      secret: ${{secret}}
    on_error:
      - fail: "CRITICAL: login refused: ${{error}}"

  # 2. One action: the answer is found by its ActionID, whatever events arrive first.
  - action:
      Action: MailboxCount
      Mailbox: ${{mailbox}}
    save:
      new: NewMessages
      old: OldMessages

  # 3. One check: a failed assert exits 1 and shows the values it saw.
  - assert: new <= max_new
    message: too many new messages in ${{mailbox}}

  - print: "OK: ${{mailbox}} has ${{new}} new and ${{old}} old messages"
"""


def starter(name: str) -> str:
    return STARTER.format(name=name)
