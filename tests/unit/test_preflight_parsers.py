"""Reading what a host answers: versions as the Uninstall keys show them, certificate names (with a left-most
wildcard), dates in ConvertTo-Json's and ISO forms, the Store's SQL server, and a certificate's fitness as its
store shows it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from components.preflight import certificate_problems, management_store_server, name_matches, version_tuple

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
FQDN = "tenant.contoso.com"
CA = "CN=Contoso Issuing CA"
FIT = {"Thumbprint": "AB" * 20, "Subject": f"CN={FQDN}", "Issuer": CA, "NotBefore": dt.datetime(2026, 1, 1),
       "NotAfter": dt.datetime(2027, 1, 1), "HasPrivateKey": True, "DnsNameList": [FQDN],
       "EnhancedKeyUsageList": ["Server Authentication (1.3.6.1.5.5.7.3.1)"]}


ABSENT = object()  # a property the store did not show


def problems_of(**change: Any) -> list[str]:
    cert = {k: v for k, v in {**FIT, **change}.items() if v is not ABSENT}
    problems, _ = certificate_problems(cert, FQDN, [CA, "CN=Contoso Root"], NOW)
    return problems


@pytest.mark.parametrize(("text", "version"), [
    ("3.50.48.0", (3, 50, 48, 0)), ("  7.2.1034.0", (7, 2, 1034, 0)), ("3.32.8196.12 (UR9)", (3, 32, 8196, 12)),
    ("10", (10,)), ("4.0.", (4, 0)), ("v3.50", None), ("", None), (None, None), (3.5, None), (["3.5"], None),
])
def test_a_version_is_the_leading_dotted_number_of_the_text(text: Any, version: tuple[int, ...] | None) -> None:
    assert version_tuple(text) == version


@pytest.mark.parametrize(("pattern", "fqdn", "named"), [
    (FQDN, FQDN, True), ("Tenant.Contoso.COM.", "tenant.contoso.com", True), (FQDN, "tenant.contoso.com.", True),
    ("*.contoso.com", FQDN, True), ("*.CONTOSO.com", "TENANT.contoso.com", True),
    ("*.contoso.com", "contoso.com", False), ("*.contoso.com", "a.tenant.contoso.com", False),
    ("*.contoso.com", ".contoso.com", False), ("*contoso.com", FQDN, False), ("tenant.contoso.co", FQDN, False),
    ("*.tenant.contoso.com", FQDN, False),
])
def test_a_certificate_name_names_an_fqdn_exactly_or_by_a_left_most_wildcard(pattern: str, fqdn: str,
                                                                             named: bool) -> None:
    assert name_matches(pattern, fqdn) is named


def test_a_fit_certificate_has_no_problem_and_is_summed_up_by_thumbprint_and_expiry() -> None:
    problems, summary = certificate_problems(FIT, FQDN, {CA}, NOW)
    assert (problems, summary) == ([], f"{'AB' * 20}, expires 2027-01-01")
    assert certificate_problems({k: v for k, v in FIT.items() if k != "Thumbprint"}, FQDN, {CA}, NOW)[1] == \
        "?, expires 2027-01-01"


@pytest.mark.parametrize(("change", "problems"), [
    ({"Issuer": f"CN={FQDN}"}, ["self-signed (Configure-Certificates.ps1 refuses it): use a certificate issued by a "
                                "CA"]),
    ({"Issuer": "CN=Fabrikam CA"}, ["its issuer 'CN=Fabrikam CA' is not in the host's Root or CA store: import the "
                                    "issuing CA chain"]),
    ({"Subject": ABSENT, "Issuer": ABSENT}, []),  # nothing to say of a chain nobody named
    ({"Subject": ABSENT}, []),
    ({"Issuer": "CN=Contoso Root"}, []),
    ({"DnsNameList": ["www.contoso.com", "*.fabrikam.com"]},
     [f"its names (www.contoso.com, *.fabrikam.com) do not include {FQDN}"]),
    ({"DnsNameList": []}, [f"its names (none) do not include {FQDN}"]),
    ({"DnsNameList": None}, [f"its names (none) do not include {FQDN}"]),
    ({"DnsNameList": FQDN}, []),  # a single name arrives as a value, not a list
    ({"DnsNameList": [{"Punycode": FQDN, "Unicode": None}]}, []),
    ({"DnsNameList": [{"Unicode": "", "Punycode": ""}, "*.contoso.com"]}, []),
    ({"DnsNameList": [{"Unicode": None}, ""]}, [f"its names (none) do not include {FQDN}"]),  # entries naming nothing
    ({"HasPrivateKey": False}, ["no private key on this host"]),
    ({"HasPrivateKey": None}, ["no private key on this host"]),
    ({"EnhancedKeyUsageList": ["Client Authentication (1.3.6.1.5.5.7.3.2)"]},
     ["not for server authentication (its usages: Client Authentication (1.3.6.1.5.5.7.3.2))"]),
    ({"EnhancedKeyUsageList": [{"FriendlyName": "Client Authentication", "ObjectId": "1.3.6.1.5.5.7.3.2"}]},
     ["not for server authentication (its usages: Client Authentication, 1.3.6.1.5.5.7.3.2)"]),
    ({"EnhancedKeyUsageList": [{"FriendlyName": "Server Authentication", "ObjectId": "1.3.6.1.5.5.7.3.1"}]}, []),
    ({"EnhancedKeyUsageList": [{"FriendlyName": "Server Authentication"}]},
     ["not for server authentication (its usages: Server Authentication)"]),
    ({"EnhancedKeyUsageList": [{"ObjectId": "1.3.6.1.5.5.7.3.2"}, {"ObjectId": "1.3.6.1.5.5.7.3.1"}]}, []),
    ({"EnhancedKeyUsageList": None}, []),  # no EKU extension: any purpose
])
def test_each_problem_of_a_certificate_is_said_in_the_operators_words(change: dict[str, Any],
                                                                      problems: list[str]) -> None:
    assert problems_of(**change) == problems


@pytest.mark.parametrize(("not_before", "not_after", "problems"), [
    (dt.datetime(2026, 1, 1), NOW, ["expired on 2026-06-01"]),  # the moment it ends it is expired
    (dt.datetime(2026, 1, 1), NOW + dt.timedelta(seconds=1), ["expires in 0 day(s)"]),
    (NOW, dt.datetime(2027, 1, 1), []),  # valid from this very moment
    (NOW + dt.timedelta(days=1), dt.datetime(2027, 1, 1), ["not valid before 2026-06-02"]),
    (NOW + dt.timedelta(days=1), NOW - dt.timedelta(days=1), ["expired on 2026-05-31"]),
    (None, NOW + dt.timedelta(days=29, hours=23), ["expires in 29 day(s)"]),
    (None, NOW + dt.timedelta(days=30), []),  # 30 days left: no warning yet
    (None, None, []),  # no dates shown: nothing guessed
])
def test_validity_is_judged_at_now_and_an_approaching_end_is_said(not_before: dt.datetime | None,
                                                                  not_after: dt.datetime | None,
                                                                  problems: list[str]) -> None:
    assert problems_of(NotBefore=not_before, NotAfter=not_after) == problems


def test_an_approaching_end_is_said_only_of_an_otherwise_fit_certificate() -> None:
    soon = NOW + dt.timedelta(days=3)
    assert problems_of(NotAfter=soon, HasPrivateKey=False) == ["no private key on this host"]


@pytest.mark.parametrize(("shown", "problems"), [
    ("/Date(1780272000000)/", ["expired on 2026-06-01"]),  # ConvertTo-Json: 2026-06-01 00:00 UTC
    ("\\/Date(1798761600000)\\/", []),  # escaped as in a JSON document: 2027-01-01
    ("/Date(-1000)/", ["expired on 1969-12-31"]),
    ("2026-05-31T23:59:59", ["expired on 2026-05-31"]), ("2026-06-01T13:00:00+02:00", ["expired on 2026-06-01"]),
    ("2026-06-01T13:00:00", ["expires in 0 day(s)"]),
    (dt.datetime(2026, 6, 1, 13, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))), ["expired on 2026-06-01"]),
    (dt.datetime(2026, 6, 1, 11, 59), ["expired on 2026-06-01"]), (dt.datetime(2026, 6, 1, 12, 1),
                                                                   ["expires in 0 day(s)"]),
    ("Sunday, 31 May 2026", []), (1780272000000, []),  # not a date preflight can read: nothing said
])
def test_dates_are_read_in_each_form_a_host_gives_them_naive_ones_as_utc(shown: Any, problems: list[str]) -> None:
    assert problems_of(NotAfter=shown) == problems
    if not problems:
        assert certificate_problems({**FIT, "NotAfter": shown}, FQDN, {CA}, NOW)[1].endswith(
            "expires 2027-01-01" if "Date" in str(shown) else "expires ?")


def test_the_store_names_its_sql_server_in_the_managementstore_setting() -> None:
    store = {"Name": "ManagementStore", "Value": "Data Source=sql01\\WAP;Initial Catalog=Microsoft.MgmtSvc.Store"}
    assert management_store_server([store]) == "sql01\\WAP"
    assert management_store_server(["text", {"Name": "Other", "Value": "Data Source=x"}, store]) == "sql01\\WAP"
    assert management_store_server([{**store, "Name": "MANAGEMENTSTORE"}]) == "sql01\\WAP"
    assert management_store_server([{"Name": "ManagementStore", "Value": None}]) is None
    assert management_store_server([{"Value": store["Value"]}]) is None
    assert management_store_server([{**store, "Value": "Initial Catalog=x;Integrated Security=True"}]) is None
    assert management_store_server([{**store, "Value": "Data Source=bad server;"}, store]) is None
    assert management_store_server([]) is None
