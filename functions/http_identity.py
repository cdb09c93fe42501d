"""Who is calling: the one place the HTTP edge turns credentials into a Caller.

Credentials: an API key in `x-api-key` (or `Authorization: ApiKey <key>`), or an Entra ID
bearer token. FastAPI's security schemes put both into the OpenAPI document, so Swagger UI's
Authorize button takes a key or a token. In Azure the function key stays on as the outer
gate; this is the inner one.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from shared.auth.authenticator import API_KEY_HEADER, Authenticator
from shared.auth.caller import Caller
from shared.errors import Forbidden

API_KEY_SCHEME = APIKeyHeader(
    name=API_KEY_HEADER,
    scheme_name="ApiKey",
    description="An API key issued by an operator (docs/operations.md#api-keys).",
    auto_error=False,
)
BEARER_SCHEME = HTTPBearer(
    scheme_name="EntraID",
    bearerFormat="JWT",
    description="An Entra ID access token for this API's audience.",
    auto_error=False,
)


async def caller(
    request: Request,
    api_key: Annotated[str | None, Security(API_KEY_SCHEME)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER_SCHEME)],
) -> Caller:
    """The authenticated caller (401 when there is none); the app's Authenticator is put in
    `app.state.authenticator` by create_api."""
    if api_key is None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "apikey" and value.strip():
            api_key = value.strip()
    authenticator: Authenticator = request.app.state.authenticator
    return await authenticator.authenticate(
        api_key=api_key, bearer_token=bearer.credentials if bearer else None
    )


async def admin(who: Annotated[Caller, Depends(caller)]) -> Caller:
    """The caller, when it is an administrator (403 otherwise)."""
    if not who.admin:
        raise Forbidden(
            f"{who.owner} is not an administrator; the /api/admin routes need an admin "
            "API key or the admin app role"
        )
    return who


AnyCaller = Annotated[Caller, Depends(caller)]
AdminCaller = Annotated[Caller, Depends(admin)]
