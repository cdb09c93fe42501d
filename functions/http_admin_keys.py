"""Operator routes for API keys kept in the key table: issue, list, revoke.

A key is shown once, when it is issued; only its hash is stored. Rotating a key is issuing a
new one for the same owner, moving the caller to it, then revoking the old one. Keys in the
API_KEYS setting are changed in the settings, not here.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool

from functions.http_identity import AdminCaller
from shared.auth.api_keys import ApiKeyRecord, hash_key, new_key
from shared.services import ServicesProvider

_PROBLEM = {"content": {"application/problem+json": {}}, "description": "problem document"}
KeyId = Annotated[str, Path(pattern=r"^[a-z0-9]{4,32}$")]
Audit = Callable[..., Awaitable[None]]


def _json_integer(value: Any) -> Any:
    """A JSON number with no fraction (272 or 272.0, as JSON Schema's `integer` allows);
    not a string or a boolean, which pydantic's lax mode would otherwise turn into one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be an integer")
    return value


KeyLimit = Annotated[int, Field(ge=0, le=100_000), BeforeValidator(_json_integer)]


class KeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    owner: str = Field(min_length=1, max_length=200, pattern=r"\S")
    submits_per_minute: KeyLimit | None = Field(
        default=None, description="This key's own limit; 0: none."
    )
    admin: StrictBool = False
    description: str = Field(default="", max_length=500)


def create_key_routes(provider: ServicesProvider, audit: Audit) -> APIRouter:
    router = APIRouter(prefix="/keys")

    @router.post(
        "",
        status_code=201,
        responses={409: _PROBLEM},
        summary="Issue an API key (the key is in this answer only; store it safely)",
    )
    async def issue_key(body: KeyRequest, who: AdminCaller) -> dict[str, Any]:
        services = await provider.get()
        key_id, key = new_key()
        await audit(who, "keys.issue", key_id, owner=body.owner.strip(), admin=body.admin)
        record = await services.api_keys.add(
            ApiKeyRecord(
                id=key_id,
                owner=body.owner.strip(),
                sha256=hash_key(key),
                admin=body.admin,
                submits_per_minute=body.submits_per_minute,
                description=body.description,
            )
        )
        return {**record.public(), "key": key}

    @router.get("", summary="API keys in the key table (never the keys themselves)")
    async def list_keys(who: AdminCaller) -> dict[str, Any]:
        services = await provider.get()
        await audit(who, "keys.list", "*")
        keys = [record.public() for record in await services.api_keys.all()]
        settings_keys = [
            {**k.public(), "source": "API_KEYS setting"} for k in services.settings.auth.api_keys
        ]
        return {"keys": keys, "settings_keys": settings_keys}

    @router.post(
        "/{key_id}/revoke",
        responses={404: _PROBLEM},
        summary="Revoke an API key (every instance stops taking it within the key cache time)",
    )
    async def revoke_key(key_id: KeyId, who: AdminCaller) -> dict[str, Any]:
        services = await provider.get()
        await audit(who, "keys.revoke", key_id)
        return (await services.api_keys.revoke(key_id)).public()

    return router
