"""The HTTP edge without any backend: validation, limits and problem documents.

The services provider here always fails, which also proves that bad input is refused before
any I/O happens.
"""

import httpx
import pytest

from functions.http_api import create_api
from shared.auth.api_keys import hash_key, record_from_setting
from shared.config import AuthSettings
from shared.errors import ServiceUnavailable
from shared.services import Services, ServicesProvider

MAX_BYTES = 4096
KEY = "cvy_edge0001_" + "k" * 43
ADMIN_KEY = "cvy_edgeadm1_" + "a" * 43
# A key from settings is checked with no I/O, so the edge's checks all run before any.
AUTH = AuthSettings(
    enabled=True,
    api_keys=(
        record_from_setting({"id": "edge0001", "owner": "o", "sha256": hash_key(KEY)}),
        record_from_setting(
            {"id": "edgeadm1", "owner": "ops", "sha256": hash_key(ADMIN_KEY), "admin": True}
        ),
    ),
)


async def unavailable() -> Services:
    raise ServiceUnavailable("storage is down", retry_after=7)


@pytest.fixture
async def client():
    app = create_api(ServicesProvider(unavailable), max_request_bytes=MAX_BYTES, auth=AUTH)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers={"x-api-key": KEY}
    ) as http:
        yield http


def problem_of(response: httpx.Response) -> dict:
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == response.status_code
    assert {"type", "title", "detail", "code"} <= set(body)
    return body


async def post(client, content, content_type="application/json"):
    return await client.post("/api/jobs", content=content, headers={"content-type": content_type})


async def test_bad_json_is_400(client):
    body = problem_of(await post(client, "{not json"))
    assert body["code"] == "malformed_request"
    assert "not valid JSON" in body["detail"]


async def test_unknown_type_is_422_listing_valid_types(client):
    response = await post(client, '{"type": "translate", "input": {}}')
    assert response.status_code == 422
    body = problem_of(response)
    assert body["errors"][0]["field"] == "type"
    assert "summarize, embed, sync" in body["errors"][0]["message"]


async def test_missing_type_is_422(client):
    body = problem_of(await post(client, '{"input": {"text": "x"}}'))
    assert body["errors"][0]["field"] == "type"


async def test_field_errors_name_the_field(client):
    response = await post(client, '{"type": "embed", "input": {"texts": []}, "extra": 1}')
    assert response.status_code == 422
    fields = {e["field"] for e in problem_of(response)["errors"]}
    assert fields == {"input.texts", "extra"}


async def test_too_large_is_413_before_parsing(client):
    response = await post(client, '{"type": "summarize", "input": {"text": "' + "a" * MAX_BYTES)
    assert response.status_code == 413
    assert problem_of(response)["code"] == "payload_too_large"


async def test_chunked_body_over_the_limit_is_413(client):
    async def chunks():
        for _ in range(10):
            yield b"x" * 1024

    response = await client.post(
        "/api/jobs", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


async def test_wrong_content_type_is_415(client):
    response = await post(client, '{"type": "summarize", "input": {"text": "x"}}', "text/plain")
    assert response.status_code == 415
    assert "application/json" in problem_of(response)["detail"]


async def test_bad_idempotency_key_is_422_before_io(client):
    response = await client.post(
        "/api/jobs",
        json={"type": "summarize", "input": {"text": "x"}},
        headers={"Idempotency-Key": "k" * 300},
    )
    assert response.status_code == 422
    assert problem_of(response)["errors"][0]["field"] == "Idempotency-Key"


async def test_valid_request_with_storage_down_is_503_with_retry_after(client):
    response = await client.post(
        "/api/jobs",
        json={"type": "summarize", "input": {"text": "x"}},
        headers={"Idempotency-Key": "k"},
    )
    assert response.status_code == 503
    assert response.headers["retry-after"] == "7"
    assert problem_of(response)["code"] == "service_unavailable"


@pytest.mark.parametrize("path", ["/api/jobs/abc", "/api/jobs/abc/result"])
async def test_malformed_job_id_is_404_without_io(client, path):
    response = await client.get(path)
    assert response.status_code == 404
    assert "UUID" in problem_of(response)["detail"]


async def test_malformed_job_id_on_delete_is_404(client):
    assert (await client.delete("/api/jobs/%00")).status_code == 404


async def test_unknown_route_is_a_problem_document(client):
    response = await client.get("/api/nothing-here")
    assert response.status_code == 404
    assert "/api/docs" in problem_of(response)["detail"]


async def test_health_is_503_when_startup_fails(client):
    response = await client.get("/api/health")
    assert response.status_code == 503
    assert response.json()["status"] == "unhealthy"


async def test_openapi_document_lists_the_routes(client):
    response = await client.get("/api/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert set(paths["/api/jobs"]) == {"post"}
    assert set(paths["/api/jobs/{job_id}"]) == {"get", "delete"}
    assert "/api/health" in paths
    assert (await client.get("/api/docs")).status_code == 200


ADMIN = {"x-api-key": ADMIN_KEY}


@pytest.mark.parametrize("day", ["0", "0000-00-00", "2026-13-01", "yesterday"])
async def test_the_audit_day_must_be_a_real_date(client, day):
    response = await client.get("/api/admin/audit", params={"day": day}, headers=ADMIN)
    assert response.status_code == 422
    assert problem_of(response)["errors"][0]["field"].endswith("day")


@pytest.mark.parametrize("limit", [True, "5", 2.5, -1])
async def test_a_key_limit_must_be_a_whole_number(client, limit):
    body = {"owner": "team", "submits_per_minute": limit}
    response = await client.post("/api/admin/keys", json=body, headers=ADMIN)
    assert response.status_code == 422
    assert problem_of(response)["errors"][0]["field"] == "submits_per_minute"


async def test_a_bodiless_post_with_a_bad_path_is_422_not_415(client):
    response = await client.post("/api/admin/keys/%C2%84/revoke", headers=ADMIN)
    assert response.status_code == 422


async def test_admin_routes_refuse_a_caller_who_is_not_an_admin_before_any_io(client):
    response = await client.post("/api/admin/maintenance")
    assert response.status_code == 403
    assert problem_of(response)["code"] == "forbidden"
