"""Turns a request's credential (an API key or a bearer token) into a Caller, or refuses it.

The HTTP edge extracts the credential; this decides. API keys are looked up first in the
API_KEYS setting (no I/O), then in the key table; bearer tokens go to the TokenValidator.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from shared.auth.api_keys import ApiKeyRecord, hash_key, key_id_of
from shared.auth.caller import UNAUTHENTICATED, Caller
from shared.auth.key_table import ApiKeyTable
from shared.errors import Unauthenticated

if TYPE_CHECKING:  # PyJWT is imported only when tokens are accepted
    from shared.auth.tokens import TokenValidator

log = logging.getLogger(__name__)

API_KEY_HEADER = "x-api-key"
REALM = "conveyor"
_NO_SUCH_HASH = "0" * 64

KeyTableGetter = Callable[[], Awaitable[ApiKeyTable]]


class Authenticator:
    def __init__(
        self,
        *,
        enabled: bool,
        keys: Sequence[ApiKeyRecord] = (),
        key_table: KeyTableGetter | None = None,
        tokens: TokenValidator | None = None,
    ) -> None:
        self.enabled = enabled
        self._keys = {record.id: record for record in keys}
        self._key_table = key_table
        self._tokens = tokens
        if not enabled:
            log.warning(
                "AUTH_MODE=off: every request is accepted as an administrator. "
                "For local experiments only; never in a shared deployment."
            )

    @property
    def accepts_tokens(self) -> bool:
        return self._tokens is not None

    async def authenticate(self, *, api_key: str | None, bearer_token: str | None) -> Caller:
        if not self.enabled:
            return UNAUTHENTICATED
        if api_key:
            return await self._by_key(api_key)
        if bearer_token:
            if self._tokens is None:
                raise self._refusal(
                    f"this API does not accept bearer tokens; send an API key in {API_KEY_HEADER}",
                    code="invalid_token",
                )
            return await self._tokens.validate(bearer_token)
        how = f"an API key in the {API_KEY_HEADER} header"
        if self._tokens is not None:
            how += " or an Entra ID bearer token (Authorization: Bearer ...)"
        raise self._refusal(f"this API needs a credential: {how}", code="credential_missing")

    async def _by_key(self, key: str) -> Caller:
        key_id = key_id_of(key)
        record = None
        if key_id is not None:
            record = self._keys.get(key_id)
            if record is None and self._key_table is not None:
                record = await (await self._key_table()).find(key_id)
        # Compare a hash even when there is no record, so both cases take the same time.
        matched = hmac.compare_digest(record.sha256 if record else _NO_SUCH_HASH, hash_key(key))
        if record is None or not matched:
            raise self._refusal("the API key is not valid", code="invalid_api_key")
        if not record.active:
            raise self._refusal("the API key has been revoked", code="invalid_api_key")
        return Caller(
            owner=record.owner,
            admin=record.admin,
            credential=f"api-key:{record.id}",
            submits_per_minute=record.submits_per_minute,
        )

    def _refusal(self, message: str, *, code: str) -> Unauthenticated:
        error = Unauthenticated(message, code=code)
        challenges = [f'ApiKey realm="{REALM}", header="{API_KEY_HEADER}"']
        if self._tokens is not None:
            challenges.append(f'Bearer realm="{REALM}"')
        error.challenge = ", ".join(challenges)
        return error
