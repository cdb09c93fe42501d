"""A local OpenID Connect issuer that signs Entra-ID-shaped access tokens, for tests and for
trying bearer-token auth without a tenant.

    python -m devtools.token_issuer --port 7082 [--owner me] [--admin]

It serves `/.well-known/openid-configuration` and `/keys` (a JWKS), as Entra ID does, and
prints a token; point AUTH_JWT_ISSUER at its URL and AUTH_JWT_AUDIENCE at the token's `aud`.
The signing key is made at start-up and never leaves the process.
"""

from __future__ import annotations

import argparse
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

DEFAULT_AUDIENCE = "api://conveyor"


@dataclass
class SigningKey:
    kid: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    private: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )

    def jwk(self) -> dict[str, Any]:
        public = jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**public, "kid": self.kid, "use": "sig", "alg": "RS256"}


@dataclass
class Issuer:
    """The issuer's URL (known once it is served) and the keys it publishes."""

    url: str = ""
    keys: list[SigningKey] = field(default_factory=lambda: [SigningKey()])

    def token(
        self,
        *,
        audience: str = DEFAULT_AUDIENCE,
        owner: str | None = None,
        roles: list[str] | None = None,
        lifetime_seconds: int = 3600,
        key: SigningKey | None = None,
        issuer: str | None = None,
        **claims: Any,
    ) -> str:
        """A signed access token; every argument can be bent to make a bad one."""
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": issuer or self.url,
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime_seconds,
            "oid": owner or str(uuid.uuid4()),
            "appid": str(uuid.uuid4()),
            "roles": roles or [],
            **claims,
        }
        signer = key or self.keys[0]
        return jwt.encode(body, signer.private, algorithm="RS256", headers={"kid": signer.kid})


def create_issuer_app(issuer: Issuer) -> Starlette:
    async def configuration(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "issuer": issuer.url,
                "jwks_uri": f"{issuer.url}/keys",
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        )

    async def keys(request: Request) -> JSONResponse:
        return JSONResponse({"keys": [key.jwk() for key in issuer.keys]})

    return Starlette(
        routes=[
            Route("/.well-known/openid-configuration", configuration),
            Route("/keys", keys),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m devtools.token_issuer")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7082)
    parser.add_argument("--audience", default=DEFAULT_AUDIENCE)
    parser.add_argument("--owner", help="the token's oid (default: a new GUID)")
    parser.add_argument("--admin", action="store_true", help="give the token the admin role")
    parser.add_argument("--admin-role", default="Conveyor.Admin")
    args = parser.parse_args()
    issuer = Issuer(url=f"http://{args.host}:{args.port}")
    token = issuer.token(
        audience=args.audience,
        owner=args.owner,
        roles=[args.admin_role] if args.admin else [],
        lifetime_seconds=24 * 3600,
    )
    print(f"AUTH_JWT_ISSUER={issuer.url}\nAUTH_JWT_AUDIENCE={args.audience}")
    print(f"a token, valid for 24 h:\n{token}", flush=True)
    uvicorn.run(create_issuer_app(issuer), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
