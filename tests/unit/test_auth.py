"""The credential rules without any I/O: key format and hashing, the API_KEYS setting, the
authenticator's answers, and AUTH_MODE=off."""

from __future__ import annotations

import json
import logging

import pytest

from shared.auth.api_keys import hash_key, key_id_of, new_key, record_from_setting, setting_entry
from shared.auth.authenticator import Authenticator
from shared.auth.caller import UNAUTHENTICATED
from shared.config import Settings
from shared.errors import ConfigError, Unauthenticated

BASE = {
    "ServiceBusConnection": "Endpoint=sb://x/",
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
}


def test_a_new_key_carries_its_id_and_only_its_hash_is_kept():
    key_id, key = new_key()
    assert key_id_of(key) == key_id
    record = record_from_setting({"id": key_id, "owner": "a", "sha256": hash_key(key)})
    assert record.matches(key)
    assert not record.matches(key + "x")
    assert key not in json.dumps(setting_entry(record))
    assert record_from_setting(setting_entry(record)) == record


@pytest.mark.parametrize("key", ["", "cvy_", "cvy_AB_" + "x" * 43, "abc_abcd_" + "x" * 43])
def test_malformed_keys_have_no_id(key):
    assert key_id_of(key) is None


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ("not json", "expected a JSON list"),
        ('{"id": "abcd"}', "list"),
        ('[{"id": "abcd", "owner": "a"}]', "sha256 must be 64 hex digits"),
        ('[{"id": "AB", "owner": "a", "sha256": "' + "0" * 64 + '"}]', "a-z and 0-9"),
        ('[{"id": "abcd", "sha256": "' + "0" * 64 + '"}]', "needs an owner"),
        ('[{"id": "abcd", "owner": "a", "sha256": "' + "0" * 64 + '", "x": 1}]', "unknown"),
        (
            '[{"id": "abcd", "owner": "a", "sha256": "'
            + "0" * 64
            + '", "submits_per_minute": -1}]',
            "submits_per_minute",
        ),
        (json.dumps([{"id": "abcd", "owner": o, "sha256": "0" * 64} for o in "ab"]), "same id"),
    ],
)
def test_a_bad_api_keys_setting_fails_at_start_up_naming_it(entries, message):
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**BASE, "API_KEYS": entries})
    assert "API_KEYS" in caught.value.message
    assert message in caught.value.message


def test_an_issuer_without_an_audience_is_a_configuration_error():
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**BASE, "AUTH_JWT_ISSUER": "https://login.example/t/v2.0"})
    assert "AUTH_JWT_AUDIENCE" in caught.value.message


def test_auth_is_on_by_default():
    assert Settings.from_env(BASE).auth.enabled


async def test_auth_off_accepts_everyone_as_admin_and_says_so(caplog):
    with caplog.at_level(logging.WARNING):
        authenticator = Authenticator(enabled=False)
    assert "AUTH_MODE=off" in caplog.text
    assert await authenticator.authenticate(api_key=None, bearer_token=None) is UNAUTHENTICATED
    assert UNAUTHENTICATED.admin


async def test_a_key_from_settings_needs_no_io_and_a_bad_one_is_refused():
    key_id, key = new_key()
    record = record_from_setting(
        {"id": key_id, "owner": "team", "sha256": hash_key(key), "submits_per_minute": 3}
    )
    authenticator = Authenticator(enabled=True, keys=[record])  # no key table at all
    caller = await authenticator.authenticate(api_key=key, bearer_token=None)
    assert (caller.owner, caller.admin, caller.submits_per_minute) == ("team", False, 3)
    assert caller.credential == f"api-key:{key_id}"
    tampered = key[:-1] + ("Q" if key[-1] != "Q" else "R")
    for wrong in (tampered, new_key(key_id)[1], "nonsense"):
        with pytest.raises(Unauthenticated) as caught:
            await authenticator.authenticate(api_key=wrong, bearer_token=None)
        assert caught.value.code == "invalid_api_key"
        assert caught.value.challenge
    with pytest.raises(Unauthenticated) as caught:
        await authenticator.authenticate(api_key=None, bearer_token="a.b.c")
    assert "does not accept bearer tokens" in caught.value.message
