"""Who may do what, through the real app on Azurite + the emulator: API keys, Entra-shaped
bearer tokens from a local OpenID Connect issuer, owners, admin routes and their audit log."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devtools.downstream_stub import serve_in_thread
from devtools.token_issuer import DEFAULT_AUDIENCE, Issuer, SigningKey, create_issuer_app
from shared.auth.api_keys import hash_key, record_from_setting
from shared.jobs import JobStatus
from shared.services import Services
from tests.fixtures.app import ADMIN_HEADERS, CALLER_HEADERS, OTHER_OWNER_HEADERS
from tests.integration.helpers import api_client, cli

pytestmark = pytest.mark.integration

JOB = {"type": "summarize", "input": {"text": "Keys open doors. Owners keep their own."}}
ADMIN_ROLE = "Conveyor.Admin"


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    issuer = Issuer()
    with serve_in_thread(create_issuer_app(issuer)) as url:
        issuer.url = url
        yield issuer


@pytest.fixture(scope="module")
def app_env(app_env: dict[str, str], issuer: Issuer) -> dict[str, str]:
    return {
        **app_env,
        "AUTH_JWT_ISSUER": issuer.url,
        "AUTH_JWT_AUDIENCE": DEFAULT_AUDIENCE,
        "AUTH_ADMIN_ROLE": ADMIN_ROLE,
        "API_KEY_CACHE_SECONDS": "0.2",
    }


@pytest.fixture(scope="module")
async def anonymous(services: Services) -> Any:
    async with api_client(services, headers=None) as client:
        yield client


async def submit(client: httpx.AsyncClient, headers: dict[str, str] | None = None) -> str:
    response = await client.post("/api/jobs", json=JOB, headers=headers)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


# ---- API keys ------------------------------------------------------------------------------


async def test_no_credential_is_401_with_a_challenge_and_nothing_written(anonymous, services):
    before = await services.store.count_by_status(JobStatus.QUEUED)
    response = await anonymous.post("/api/jobs", json=JOB)
    assert response.status_code == 401
    assert response.json()["code"] == "credential_missing"
    assert "x-api-key" in response.json()["detail"]
    challenge = response.headers["www-authenticate"]
    assert "ApiKey" in challenge
    assert "Bearer" in challenge
    assert await services.store.count_by_status(JobStatus.QUEUED) == before


async def test_no_credential_is_401_before_the_body_is_validated(anonymous):
    # (A body that is not JSON at all is refused with 400 first: it is read before anything.)
    response = await anonymous.post("/api/jobs", json={"type": "nope", "input": 3})
    assert response.status_code == 401


@pytest.mark.parametrize(
    "key",
    [
        "not-a-key",
        "cvy_teama001_" + "x" * 43,  # a known id with the wrong secret
        "cvy_nosuchid_" + "a" * 43,  # an id nobody issued
    ],
)
async def test_a_wrong_key_is_401(anonymous, key):
    for route in ("/api/jobs/" + str(uuid.uuid4()), "/api/admin/dead-letters"):
        response = await anonymous.get(route, headers={"x-api-key": key})
        assert response.status_code == 401, route
        assert response.json()["code"] == "invalid_api_key"
        assert "www-authenticate" in response.headers


async def test_the_key_may_come_in_the_authorization_header(anonymous):
    key = CALLER_HEADERS["x-api-key"]
    response = await anonymous.post(
        "/api/jobs", json=JOB, headers={"Authorization": f"ApiKey {key}"}
    )
    assert response.status_code == 202


# ---- owners --------------------------------------------------------------------------------


async def test_another_owner_cannot_read_cancel_delete_or_learn_of_a_job(anonymous):
    job_id = await submit(anonymous, CALLER_HEADERS)
    unknown = str(uuid.uuid4())
    b = OTHER_OWNER_HEADERS
    for method, path in [
        ("GET", "/api/jobs/{}"),
        ("GET", "/api/jobs/{}/result"),
        ("POST", "/api/jobs/{}/cancel"),
        ("DELETE", "/api/jobs/{}"),
    ]:
        theirs = await anonymous.request(method, path.format(job_id), headers=b)
        nobodys = await anonymous.request(method, path.format(unknown), headers=b)
        assert theirs.status_code == nobodys.status_code == 404, (method, path)
        # Word for word what an unknown id gets, but for the id itself.
        assert theirs.json()["detail"].replace(job_id, "?") == nobodys.json()["detail"].replace(
            unknown, "?"
        )
    mine = await anonymous.get(f"/api/jobs/{job_id}", headers=CALLER_HEADERS)
    assert mine.status_code == 200
    assert mine.json()["status"] != "cancelled"


async def test_an_admin_sees_every_owners_jobs(anonymous):
    job_id = await submit(anonymous, CALLER_HEADERS)
    response = await anonymous.get(f"/api/jobs/{job_id}", headers=ADMIN_HEADERS)
    assert response.status_code == 200


async def test_the_owner_is_recorded_and_idempotency_keys_are_per_owner(anonymous, services):
    key = f"k-{uuid.uuid4()}"
    idem = {"Idempotency-Key": key}
    first = await anonymous.post("/api/jobs", json=JOB, headers={**CALLER_HEADERS, **idem})
    second = await anonymous.post("/api/jobs", json=JOB, headers={**OTHER_OWNER_HEADERS, **idem})
    assert (first.status_code, second.status_code) == (202, 202)
    assert first.json()["id"] != second.json()["id"]
    assert (await services.store.get(first.json()["id"])).owner == "team-a"
    assert (await services.store.get(second.json()["id"])).owner == "team-b"


# ---- admin routes --------------------------------------------------------------------------


async def admin_routes(client: httpx.AsyncClient) -> list[tuple[str, str]]:
    document = (await client.get("/api/openapi.json")).json()
    routes = [
        (method.upper(), path)
        for path, operations in document["paths"].items()
        if path.startswith("/api/admin")
        for method in operations
    ]
    assert len(routes) >= 10
    return routes


def concrete(path: str) -> str:
    return (
        path.replace("{queue}", "sync")
        .replace("{sequence_number}", "1")
        .replace("{key_id}", "abcd1234")
    )


async def test_a_non_admin_gets_403_on_every_admin_route(anonymous):
    for method, path in await admin_routes(anonymous):
        response = await anonymous.request(
            method, concrete(path), headers=CALLER_HEADERS, json={"confirm": True}
        )
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["code"] == "forbidden"


async def test_every_admin_route_needs_a_credential(anonymous):
    for method, path in await admin_routes(anonymous):
        response = await anonymous.request(method, concrete(path), json={"confirm": True})
        assert response.status_code == 401, (method, path)


async def test_an_admin_gets_200_and_an_audit_entry(anonymous, services):
    response = await anonymous.get("/api/admin/dead-letters/sync", headers=ADMIN_HEADERS)
    assert response.status_code == 200
    maintenance = await anonymous.post("/api/admin/maintenance", headers=ADMIN_HEADERS)
    assert maintenance.status_code == 200
    entries = await services.audit.entries_for_day()
    actions = {(e.actor, e.action, e.target) for e in entries}
    assert ("ops", "dead_letters.list", "sync") in actions
    assert ("ops", "maintenance", "*") in actions
    assert all(
        e.detail.get("credential") == "api-key:ops00001" for e in entries if e.actor == "ops"
    )
    audit = await anonymous.get("/api/admin/audit", headers=ADMIN_HEADERS)
    assert audit.status_code == 200
    assert any(e["action"] == "maintenance" for e in audit.json()["entries"])


async def test_keys_issued_through_the_api_work_until_revoked(anonymous):
    issued = await anonymous.post(
        "/api/admin/keys",
        json={"owner": "team-c", "description": "ci pipeline"},
        headers=ADMIN_HEADERS,
    )
    assert issued.status_code == 201, issued.text
    key, key_id = issued.json()["key"], issued.json()["id"]
    listed = (await anonymous.get("/api/admin/keys", headers=ADMIN_HEADERS)).json()
    assert key_id in {k["id"] for k in listed["keys"]}
    assert key not in str(listed)  # never shown again
    headers = {"x-api-key": key}
    job_id = await submit(anonymous, headers)
    assert (await anonymous.get(f"/api/jobs/{job_id}", headers=headers)).status_code == 200

    revoked = await anonymous.post(f"/api/admin/keys/{key_id}/revoke", headers=ADMIN_HEADERS)
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"]
    await asyncio.sleep(0.3)  # the key cache (API_KEY_CACHE_SECONDS=0.2 here) runs out
    response = await anonymous.get(f"/api/jobs/{job_id}", headers=headers)
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


# ---- Entra ID bearer tokens ------------------------------------------------------------------


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_good_token_submits_as_its_oid(anonymous, issuer, services):
    owner = str(uuid.uuid4())
    response = await anonymous.post(
        "/api/jobs", json=JOB, headers=bearer(issuer.token(owner=owner))
    )
    assert response.status_code == 202, response.text
    assert (await services.store.get(response.json()["id"])).owner == owner


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda i: i.token(audience="api://someone-else"), "audience"),
        (lambda i: i.token(lifetime_seconds=-3600), "expired"),
        (lambda i: i.token(key=SigningKey()), "key"),  # a key the issuer does not publish
        (lambda i: i.token(key=SigningKey(kid=i.keys[0].kid)), "not valid"),  # forged, same kid
        (lambda i: i.token(issuer="https://login.example/other/v2.0"), "issuer"),
        (lambda i: "not.a.jwt", "JWT"),
    ],
)
async def test_a_bad_token_is_401(anonymous, issuer, make, expected):
    response = await anonymous.post("/api/jobs", json=JOB, headers=bearer(make(issuer)))
    assert response.status_code == 401, response.text
    assert expected in response.json()["detail"]
    assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')


async def test_the_admin_role_opens_the_admin_routes(anonymous, issuer):
    plain = bearer(issuer.token())
    admin = bearer(issuer.token(roles=[ADMIN_ROLE]))
    assert (await anonymous.get("/api/admin/dead-letters", headers=plain)).status_code == 403
    assert (await anonymous.get("/api/admin/dead-letters", headers=admin)).status_code == 200


# ---- the document --------------------------------------------------------------------------


async def test_the_openapi_document_has_the_security_schemes(anonymous):
    document = (await anonymous.get("/api/openapi.json")).json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
        "description": schemes["ApiKey"]["description"],
    }
    assert schemes["EntraID"]["scheme"] == "bearer"
    submit_op = document["paths"]["/api/jobs"]["post"]
    assert {"ApiKey": []} in submit_op["security"]
    assert "401" in submit_op["responses"]
    assert "429" in submit_op["responses"]
    assert "403" in document["paths"]["/api/admin/maintenance"]["post"]["responses"]
    assert "security" not in document["paths"]["/api/health"]["get"]


# ---- the operator CLI ----------------------------------------------------------------------


async def test_the_cli_issues_lists_and_revokes_keys(anonymous, app_env):
    issued = cli(app_env, "keys", "issue", "--owner", "team-cli", "--limit", "5", "--note", "cli")
    assert issued.returncode == 0, issued.stderr
    record = json.loads(issued.stdout)
    assert record["api_keys_entry"]["sha256"] == hash_key(record["key"])
    headers = {"x-api-key": record["key"]}
    job_id = await submit(anonymous, headers)
    listed = json.loads(cli(app_env, "keys", "list").stdout)
    assert record["id"] in {k["id"] for k in listed}
    assert record["key"] not in json.dumps(listed)

    revoked = cli(app_env, "keys", "revoke", record["id"])
    assert revoked.returncode == 0, revoked.stderr
    await asyncio.sleep(0.3)  # the key cache runs out
    assert (await anonymous.get(f"/api/jobs/{job_id}", headers=headers)).status_code == 401
    unknown = cli(app_env, "keys", "revoke", "nosuchkey")
    assert unknown.returncode == 2
    assert "no API key with id" in unknown.stderr


def test_the_cli_hashes_a_key_into_an_api_keys_entry():
    key = "cvy_abcd1234_" + "z" * 43
    done = cli({}, "keys", "hash", key, "--owner", "ops", "--admin")
    assert done.returncode == 0, done.stderr
    entry = json.loads(done.stdout)
    assert record_from_setting(entry).matches(key)
    assert entry["admin"] is True
