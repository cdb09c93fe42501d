"""Entra ID (or any OpenID Connect issuer's) bearer tokens, validated with PyJWT.

Signature (RS256, a key from the issuer's JWKS), issuer, audience and expiry are all checked.
The JWKS is fetched once and kept; a token naming a key id not in it fetches the set again
(keys rotate), at most once a minute, so tokens signed by unknown keys cannot make us hammer
the issuer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import jwt

from shared.auth.caller import Caller
from shared.errors import ServiceUnavailable, Unauthenticated

log = logging.getLogger(__name__)

ALGORITHMS = ["RS256"]
FetchJson = Callable[[str], Awaitable[Any]]


class TokenValidator:
    def __init__(
        self,
        *,
        issuers: Sequence[str],
        audiences: Sequence[str],
        admin_role: str,
        fetch_json: FetchJson,
        jwks_url: str | None = None,
        leeway_seconds: float = 60.0,
        min_refetch_seconds: float = 60.0,
    ) -> None:
        self._issuers = list(issuers)
        self._audiences = list(audiences)
        self._admin_role = admin_role
        self._fetch_json = fetch_json
        self._jwks_url = jwks_url
        self._leeway = leeway_seconds
        self._min_refetch = min_refetch_seconds
        self._keys: dict[str, Any] = {}
        self._fetched_at = -float("inf")
        self._lock = asyncio.Lock()

    async def validate(self, token: str) -> Caller:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise _invalid(f"the bearer token is not a JWT ({exc})") from exc
        if header.get("alg") not in ALGORITHMS:
            raise _invalid(f"tokens must be signed with {', '.join(ALGORITHMS)}")
        key = await self._signing_key(str(header.get("kid", "")))
        if key is None:
            raise _invalid("the token is signed by a key the issuer does not publish")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=self._audiences,
                issuer=self._issuers,
                leeway=self._leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise _invalid("the token has expired; get a new one") from exc
        except jwt.InvalidAudienceError as exc:
            raise _invalid("the token is for another audience (aud)") from exc
        except jwt.InvalidIssuerError as exc:
            raise _invalid("the token is from an issuer this API does not trust (iss)") from exc
        except jwt.InvalidTokenError as exc:
            raise _invalid(f"the token is not valid: {exc}") from exc
        owner = claims.get("oid") or claims.get("appid") or claims.get("azp") or claims.get("sub")
        if not isinstance(owner, str) or not owner:
            raise _invalid("the token names no principal (oid, appid, azp or sub)")
        roles = claims.get("roles") or []
        client = claims.get("appid") or claims.get("azp") or owner
        return Caller(
            owner=owner,
            admin=isinstance(roles, list) and self._admin_role in roles,
            credential=f"entra:{client}",
        )

    async def _signing_key(self, kid: str) -> Any:
        if kid in self._keys:
            return self._keys[kid]
        async with self._lock:
            fresh_enough = time.monotonic() - self._fetched_at < self._min_refetch
            if kid not in self._keys and not fresh_enough:
                await self._refresh()
        return self._keys.get(kid)

    async def _refresh(self) -> None:
        try:
            url = self._jwks_url or await self._discover_jwks_url()
            keys = jwt.PyJWKSet.from_dict(await self._fetch_json(url))
        except (jwt.PyJWKSetError, jwt.InvalidKeyError, KeyError, TypeError) as exc:
            raise ServiceUnavailable(f"the token issuer's key set is not valid: {exc}") from exc
        except Exception as exc:  # a network failure of any kind: tokens cannot be checked now
            raise ServiceUnavailable(f"the token issuer's keys are unreachable: {exc}") from exc
        self._keys = {k.key_id: k.key for k in keys.keys if k.key_id}
        self._fetched_at = time.monotonic()
        log.info("token signing keys loaded: %d", len(self._keys))

    async def _discover_jwks_url(self) -> str:
        document = await self._fetch_json(
            self._issuers[0].rstrip("/") + "/.well-known/openid-configuration"
        )
        self._jwks_url = str(document["jwks_uri"])
        return self._jwks_url


def _invalid(description: str) -> Unauthenticated:
    error = Unauthenticated(description, code="invalid_token")
    quoted = description.replace("\\", "").replace('"', "'")
    error.challenge = f'Bearer error="invalid_token", error_description="{quoted}"'
    return error
