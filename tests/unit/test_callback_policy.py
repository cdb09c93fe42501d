"""The callback allow-list, SSRF guards, signatures and settings, with a fake resolver."""

from __future__ import annotations

import ipaddress
import re

import pytest

from functions.http_callbacks import callback_url_pattern
from shared.callbacks.delivery import _host_header, _pinned_url
from shared.callbacks.policy import CallbackPolicy, CallbackRefused, parse_allow_list
from shared.callbacks.signing import signature, signature_header, verify
from shared.config import Settings
from shared.errors import ConfigError, ValidationFailed

ENTRIES = "hooks.example.com,*.partner.example,http://ci.internal,10.1.2.3,ci.internal"


def policy(answers: dict[str, list[str]], entries: str = ENTRIES) -> CallbackPolicy:
    async def resolve(host: str, port: int) -> list[str]:
        if host not in answers:
            raise OSError("Name or service not known")
        return answers[host]

    return CallbackPolicy(parse_allow_list(entries), resolver=resolve)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://evil.example/x", "not on the allow-list"),
        ("https://partner.example/x", "not on the allow-list"),  # the wildcard's own domain
        ("https://hooks.example.com.evil.example/x", "not on the allow-list"),
        ("http://hooks.example.com/x", "must use https"),
        ("http://a.partner.example/x", "must use https"),
        ("https://user:pw@hooks.example.com/x", "user name or password"),
        ("ftp://hooks.example.com/x", "absolute https"),
        ("/relative", "absolute https"),
        ("https://hooks.example.com:70000/x", "not a valid URL"),
        ("https://hooks.example.com/a b", "spaces"),
        ("https://10.1.2.4/x", "not on the allow-list"),
        ("https://" + "a" * 2050, "longer than"),
    ],
)
def test_urls_off_the_list_or_malformed_are_refused(url, why):
    with pytest.raises(CallbackRefused, match=why):
        policy({}).target(url)


def test_no_list_means_no_callbacks():
    with pytest.raises(CallbackRefused, match="callbacks are off"):
        CallbackPolicy(()).target("https://hooks.example.com/")


async def test_a_public_answer_passes_and_names_resolve_at_submit():
    allowed = policy({"a.partner.example": ["203.0.113.9", "93.184.216.34"]})
    with pytest.raises(ValidationFailed) as refused:
        await allowed.check("https://a.partner.example/hook")
    # 203.0.113.0/24 is documentation space: not global, and the list does not name it.
    assert refused.value.problems[0].field == "callback_url"
    ok = policy({"a.partner.example": ["93.184.216.34"]})
    await ok.check("https://a.partner.example/hook")
    await ok.check(None)


@pytest.mark.parametrize(
    "address", ["10.0.0.7", "127.0.0.1", "169.254.169.254", "100.64.0.1", "::1", "fe80::1",
                "::ffff:127.0.0.1", "0.0.0.0", "224.0.0.1"],
)  # fmt: skip
async def test_a_name_that_resolves_to_a_private_address_is_refused(address):
    """DNS rebinding: an allowed name answering with an internal address."""
    rebinding = policy({"x.partner.example": ["93.184.216.34", address]})
    target = rebinding.target("https://x.partner.example/")
    with pytest.raises(CallbackRefused, match="private or reserved"):
        await rebinding.addresses(target)


async def test_private_addresses_pass_only_when_the_list_names_them():
    named = policy({"ci.internal": ["10.1.2.3"]})
    assert await named.addresses(named.target("http://ci.internal:8080/x")) == [
        ipaddress.ip_address("10.1.2.3")
    ]
    assert await named.addresses(named.target("https://10.1.2.3/x")) == [
        ipaddress.ip_address("10.1.2.3")
    ]
    other = policy({"ci.internal": ["10.1.2.4"]})
    with pytest.raises(CallbackRefused, match=re.escape("10.1.2.4")):
        await other.addresses(other.target("https://ci.internal/x"))


async def test_a_name_that_does_not_resolve_is_refused():
    with pytest.raises(ValidationFailed, match="does not resolve"):
        await policy({}).check("https://hooks.example.com/x")


@pytest.mark.parametrize(
    "entry", ["http://*.example.com", "*.com", "*.10.0.0.1", "a/b", "exa*mple.com", "x:y"]
)
def test_bad_allow_list_entries_are_refused(entry):
    with pytest.raises(ValueError, match=re.escape(entry)):
        parse_allow_list(entry)


def test_the_request_goes_to_the_checked_address_with_the_name_in_host_and_sni():
    target = policy({}).target("https://hooks.example.com:8443/cb?x=1")
    assert _pinned_url(target, ipaddress.ip_address("93.184.216.34")) == (
        "https://93.184.216.34:8443/cb?x=1"
    )
    assert _pinned_url(target, ipaddress.ip_address("2001:db8::1")).startswith(
        "https://[2001:db8::1]:8443/"
    )
    assert _host_header(target) == "hooks.example.com:8443"
    assert _host_header(policy({}).target("https://hooks.example.com/")) == "hooks.example.com"


def test_signatures_verify_and_tampering_or_age_does_not():
    body = b'{"id":"1","status":"succeeded"}'
    header = signature_header("k" * 32, body, timestamp=1_700_000_000)
    assert header == f"t=1700000000,v1={signature('k' * 32, 1_700_000_000, body)}"
    assert verify("k" * 32, header, body, now=1_700_000_100)
    assert not verify("k" * 32, header, body + b" ", now=1_700_000_100)
    assert not verify("j" * 32, header, body, now=1_700_000_100)
    assert not verify("k" * 32, header, body, now=1_700_001_000)  # older than 5 minutes
    assert not verify("k" * 32, "v1=abc", body)


def test_settings_need_a_long_secret_with_an_allow_list():
    base = {"ServiceBusConnection": "Endpoint=sb://x/", "AzureWebJobsStorage": "x"}
    with pytest.raises(ConfigError, match="needs CALLBACK_SIGNING_SECRET"):
        Settings.from_env({**base, "CALLBACK_ALLOWED_HOSTS": "hooks.example.com"})
    with pytest.raises(ConfigError, match="too short"):
        Settings.from_env({**base, "CALLBACK_SIGNING_SECRET": "short"})
    with pytest.raises(ConfigError, match="CALLBACK_ALLOWED_HOSTS is not valid"):
        Settings.from_env(
            {**base, "CALLBACK_ALLOWED_HOSTS": "*.com", "CALLBACK_SIGNING_SECRET": "s" * 32}
        )
    settings = Settings.from_env(
        {**base, "CALLBACK_ALLOWED_HOSTS": ENTRIES, "CALLBACK_SIGNING_SECRET": "s" * 32,
         "WEBSITE_HOSTNAME": "app.azurewebsites.net"}
    )  # fmt: skip
    assert len(settings.callbacks.allowed_hosts) == 5
    assert settings.callbacks.public_base_url == "https://app.azurewebsites.net"
    assert "s" * 32 not in repr(settings.callbacks)


def test_the_documented_pattern_admits_only_allowed_urls():
    pattern = re.compile(callback_url_pattern(parse_allow_list(ENTRIES)))
    for url in (
        "https://hooks.example.com/x",
        "https://a.b.partner.example:8443/h-1",
        "http://ci.internal/x",
        "https://10.1.2.3/",
    ):
        assert pattern.match(url), url
    for url in (
        "http://hooks.example.com/x",
        "https://partner.example/",
        "https://evil.example/",
        "https://hooks.example.com.evil/",
        "http://10.1.2.3/",
    ):
        assert not pattern.match(url), url
