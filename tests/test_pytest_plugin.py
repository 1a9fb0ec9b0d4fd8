"""The pytest plugin: amiscript scripts collected as test items, run through pytester."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

import pytest
import xmlschema

from .published_schema import published_junit_xsd

PASSING = (
    "vars:\n  mailbox: {required: true}\nconnect: {}\nsteps:\n"
    "  - login: {username: admin, secret: secret5}\n"
    "  - action: {Action: MailboxCount, Mailbox: '${mailbox}'}\n    save: {new: NewMessages}\n"
    "  - assert: new <= 5\n"
)
FAILING = (
    "connect: {}\nsteps:\n  - login: {username: admin, secret: secret5}\n"
    "  - action: {Action: MailboxCount, Mailbox: 200@sales}\n    save: {new: NewMessages}\n"
    "  - assert: new <= 1\n    message: too many new messages\n"
)


def test_scripts_become_items_and_a_failure_shows_the_step_and_its_yaml(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", amiscript_ok=PASSING, amiscript_full=FAILING, not_a_check="steps: []\n")
    result = pytester.runpytest("--ami-simulate", "--ami-var", "mailbox=124@default", "--junitxml=junit.xml")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*amiscript: error: *amiscript_full.yaml:6:5: assert failed: too many new messages: new <= 1 (new = '5')",
            "*  > 6 |   - assert: new <= 1",
        ]
    )
    xmlschema.XMLSchema(str(published_junit_xsd())).validate(str(pytester.path / "junit.xml"))
    cases = ElementTree.parse(pytester.path / "junit.xml").getroot().iter("testcase")
    assert sorted(case.get("name") for case in cases) == ["amiscript_full.yaml", "amiscript_ok.yaml"]


def test_one_item_per_target_and_the_file_pattern_is_configurable(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", check_mailbox=PASSING)
    pytester.makeini("[pytest]\namiscript_files = check_*.yaml\n")
    result = pytester.runpytest(
        "-v", "--ami-simulate", "--ami-target", "tcp://", "--ami-target", "telnet://", "--ami-var", "mailbox=1"
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*check_mailbox.yaml?tcp://?*PASSED*", "*check_mailbox.yaml?telnet://?*PASSED*"])


def test_an_unreachable_pbx_fails_the_item_with_the_reason(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", amiscript_down="connect: {port: '1'}\nsteps:\n  - expect: Manager\n")
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*cannot connect to tcp://127.0.0.1:1: connection refused*"])


def test_includes_from_a_folder_the_plugin_is_told_to_allow(pytester: pytest.Pytester) -> None:
    pytester.mkdir("shared")
    (pytester.path / "shared" / "login.yaml").write_text("steps:\n  - login: {username: admin, secret: secret5}\n")
    pytester.mkdir("checks")
    (pytester.path / "checks" / "amiscript_ping.yaml").write_text(
        "connect: {}\nsteps:\n  - include: ../shared/login.yaml\n  - action: {Action: Ping}\n"
    )
    refused = pytester.runpytest("checks", "--ami-simulate")
    refused.assert_outcomes(failed=1)
    refused.stdout.fnmatch_lines(["*--include-path*"])
    allowed = pytester.runpytest("checks", "--ami-simulate", "--ami-include-path", "shared")
    allowed.assert_outcomes(passed=1)


def test_a_malformed_ami_var_fails_the_item_without_showing_it(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", amiscript_ok=PASSING)
    result = pytester.runpytest("--ami-simulate", "--ami-var", "S3cretWord")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*--ami-var number 1 has no '=': write --ami-var NAME=VALUE*"])
    assert "S3cretWord" not in result.stdout.str()
