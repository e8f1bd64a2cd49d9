"""The rules every transport shares when a host reports an error (providers/transport/_base.py): which record the
error names, what else it carries, and that no secret that was sent comes back in it. Pure functions."""

from __future__ import annotations

import re
from collections.abc import Iterable

import pytest

from providers.errors import RemoteCommandFailed
from providers.transport import Command, ErrorRecordInfo, HostConnection, VerbosePredicate
from providers.transport._base import check_errors, matcher, scrub

pytestmark = pytest.mark.unit

CONN = HostConnection(fqdn="wapcomputer1.contoso.com", auth="ntlm", username="u", password="p")
STEP = "install the connector"
SECRET = "Hunter2-Not-Real"
CMD = Command("Get-Item", {"Path": "C:\\a"}) | Command("Remove-Item", {"Path": "C:\\b"})
FIRST = ErrorRecordInfo("first went wrong", "First,Cmd", "ObjectNotFound", target="C:\\a", command="Get-Item")
LAST = ErrorRecordInfo(f"last went wrong with {SECRET}", "Last,Cmd", "PermissionDenied",
                       target=f"C:\\{SECRET}\\b", command="Remove-Item")


def raised(errors: Iterable[ErrorRecordInfo], *, failed: bool, accept_errors: bool = False,
           secrets: Iterable[str] = (SECRET,)) -> RemoteCommandFailed:
    with pytest.raises(RemoteCommandFailed) as err:
        check_errors(CONN, STEP, CMD, list(errors), failed=failed, accept_errors=accept_errors, secrets=secrets)
    return err.value


def test_a_failed_pipeline_names_its_terminating_error_the_last_record() -> None:
    err = raised([FIRST, LAST], failed=True)
    assert (err.error_id, err.category, err.failed_command) == ("Last,Cmd", "PermissionDenied", "Remove-Item")
    assert err.terminating is True and err.more_errors == 1


def test_error_records_of_a_pipeline_that_went_on_name_the_first() -> None:
    err = raised([FIRST, LAST, LAST], failed=False)
    assert (err.error_id, err.target, err.failed_command) == ("First,Cmd", "C:\\a", "Get-Item")
    assert err.terminating is False and err.more_errors == 2
    assert "(+2 more error record(s))" in str(err)


def test_one_record_has_no_more_errors() -> None:
    err = raised([FIRST], failed=False)
    assert err.more_errors == 0 and "more error record" not in str(err)


def test_a_failed_pipeline_without_a_record_still_says_so() -> None:
    err = raised([], failed=True)
    assert err.remote_message == "the pipeline failed without an error record"
    assert err.more_errors == 0 and err.target is None and err.error_id is None


def test_the_secrets_sent_never_come_back_in_message_or_target() -> None:
    err = raised([FIRST, LAST], failed=True)
    assert SECRET not in str(err) and SECRET not in err.remote_message and SECRET not in (err.target or "")
    assert err.target == "C:\\****\\b" and err.remote_message == "last went wrong with ****"


def test_accepted_errors_are_returned_not_raised_unless_the_pipeline_failed() -> None:
    check_errors(CONN, STEP, CMD, [FIRST], failed=False, accept_errors=True)
    check_errors(CONN, STEP, CMD, [], failed=False, accept_errors=False)
    assert raised([FIRST], failed=True, accept_errors=True).error_id == "First,Cmd"


# -- scrub ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("secrets", [["abc", "abcdef"], ["abcdef", "abc"]])
def test_a_longer_secret_is_masked_whole_before_a_shorter_one_inside_it(secrets: list[str]) -> None:
    assert scrub("user pw=abcdef and abc", secrets) == "user pw=**** and ****"


@pytest.mark.parametrize("secrets", [["xyz", "abxyzcd"], ["abxyzcd", "xyz"]])
def test_a_secret_inside_another_leaves_no_part_of_the_longer_one(secrets: list[str]) -> None:
    """Whatever their spelling: a short secret masked first would leave the longer one's ends in clear."""
    assert scrub("pw=abxyzcd", secrets) == "pw=****"


@pytest.mark.parametrize("secret, masked", [("ab", False), ("abc", True), ("", False)])
def test_secrets_of_three_characters_or_more_are_masked(secret: str, masked: bool) -> None:
    text = f"value [{secret}] end"
    assert (scrub(text, [secret]) == "value [****] end") is masked
    if not masked:
        assert scrub(text, [secret]) == text


# -- verbose predicates --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("predicate", ["success", re.compile(r"succ\w+"), lambda line: "success" in line])
def test_each_kind_of_verbose_predicate_matches_only_its_line(predicate: VerbosePredicate) -> None:
    match = matcher(predicate)
    assert match("VERBOSE: success at last") is True
    assert match("VERBOSE: still waiting") is False


def test_a_verbose_predicate_of_another_kind_is_refused_naming_the_kinds() -> None:
    with pytest.raises(TypeError) as err:
        matcher(42)  # type: ignore[arg-type]  # the wrong kind on purpose
    assert str(err.value) == "verbose_predicate is a str, a compiled regex or a function of one str"
