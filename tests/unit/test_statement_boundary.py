"""Several statements in one remote call come back apart because a boundary text is written between them. The
boundary is new for every call, so no object a host returns (an echoed earlier boundary, a file that happens to
hold one) can split the outputs in the wrong place; and the privileged endpoint, which runs one statement per
call, refuses several before anything is sent. Pure functions and the in-memory transport: no sockets."""

from __future__ import annotations

import pytest

from providers.transport import Call, Command, FakeTransport, HostConnection, Pipeline, Result
from providers.transport._base import BOUNDARY_PREFIX, statement_boundary
from providers.transport._wire import split_outputs

pytestmark = pytest.mark.unit

WAP = HostConnection(fqdn="wapcomputer1.contoso.com", auth="ntlm", username="u", password="p")
PEP = HostConnection(fqdn="azs-ercs01.azurestack.local", auth="credssp", username="u", password="p",
                     configuration_name="PrivilegedEndpoint")
TWO = [Pipeline((Command("Get-Item", {"Path": "C:\\a"}),)), Pipeline((Command("Get-Item", {"Path": "C:\\b"}),))]


def test_one_statement_needs_no_boundary() -> None:
    assert statement_boundary(WAP, TWO[:1]) is None
    assert statement_boundary(PEP, TWO[:1]) is None


def test_every_call_gets_a_boundary_of_its_own() -> None:
    seen = {statement_boundary(WAP, TWO) for _ in range(50)}
    assert len(seen) == 50
    assert all(isinstance(b, str) and b.startswith(BOUNDARY_PREFIX) and len(b) > len(BOUNDARY_PREFIX) + 16
               for b in seen)


def test_an_earlier_calls_boundary_among_the_output_does_not_split_it() -> None:
    """A host that hands back a boundary it saw before (a log file it read, say) splits nothing: only this
    call's own boundary separates the statements."""
    earlier, now = statement_boundary(WAP, TWO), statement_boundary(WAP, TWO)
    assert split_outputs(["a1", earlier, "a2", now, "b1"], 2, now) == [["a1", earlier, "a2"], ["b1"]]


def test_the_privileged_endpoint_refuses_several_statements_naming_the_host() -> None:
    with pytest.raises(ValueError, match="azs-ercs01.azurestack.local: the PrivilegedEndpoint endpoint runs one "
                                         "statement per call, got 2"):
        statement_boundary(PEP, TWO)


def test_the_transport_refuses_them_before_anything_is_sent() -> None:
    sent: list[Call] = []
    def answer(call: Call) -> Result:
        sent.append(call)
        return Result(outputs=[[] for _ in call.statements])

    fake = FakeTransport(answer)
    with pytest.raises(ValueError, match="one statement per call"):
        fake.run(PEP, "configure multi-cloud mode", TWO)
    assert sent == [] and fake.calls == []
    fake.run(PEP, "configure multi-cloud mode", TWO[0])
    fake.run(WAP, "read", TWO)
    assert len(sent) == 2
