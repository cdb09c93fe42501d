"""Submit, status, idempotency, cancel and failure paths on Azurite + the emulator."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from azure.servicebus.aio import ServiceBusClient

from devtools.processes import port_is_free
from shared.config import Settings
from shared.errors import NotFound
from shared.jobs import JobStatus
from shared.services import Services, build_services
from tests.integration.helpers import api_client

pytestmark = pytest.mark.integration


async def receive_job_message(connection: str, queue: str, job_id: str) -> dict:
    """Receive from `queue` until the message with id `job_id` shows up; complete it."""
    async with (
        ServiceBusClient.from_connection_string(connection) as client,
        client.get_queue_receiver(queue) as receiver,
    ):
        for _ in range(20):
            for message in await receiver.receive_messages(max_message_count=20, max_wait_time=1):
                await receiver.complete_message(message)
                if message.message_id == job_id:
                    return {
                        "body": json.loads(b"".join(message.body)),
                        "properties": message.application_properties,
                        "content_type": message.content_type,
                    }
    raise AssertionError(f"no message {job_id} on {queue}")


async def test_submit_writes_the_row_then_the_message(api, services, app_service_bus):
    response = await api.post(
        "/api/jobs", json={"type": "summarize", "input": {"text": "One. Two. Three."}}
    )
    assert response.status_code == 202
    body = response.json()
    job_id = body["id"]
    assert body["status"] == "queued"
    assert response.headers["location"].endswith(f"/api/jobs/{job_id}")
    assert response.headers["retry-after"] == "2"

    status = await api.get(response.headers["location"])
    assert status.status_code == 200
    assert status.json()["status"] == "queued"
    assert (await services.store.get(job_id)).status is JobStatus.QUEUED

    message = await receive_job_message(app_service_bus.connection_string, "summarize", job_id)
    assert message["body"]["job_id"] == job_id
    assert message["body"]["input"] == {
        "text": "One. Two. Three.",
        "max_sentences": 3,
        "max_words": None,
        "style": "paragraph",
    }
    assert message["properties"][b"job_type"] == b"summarize"
    assert message["properties"][b"attempt"] == 1
    assert message["content_type"] == "application/json"


async def test_each_type_goes_to_its_own_queue(api, app_service_bus):
    response = await api.post("/api/jobs", json={"type": "embed", "input": {"texts": ["a", "b"]}})
    assert response.status_code == 202
    message = await receive_job_message(
        app_service_bus.connection_string, "embed", response.json()["id"]
    )
    assert message["body"]["type"] == "embed"


async def test_same_idempotency_key_and_body_returns_the_same_job(api):
    key = f"order-{uuid.uuid4()}"
    job = {"type": "sync", "input": {"target": "crm", "record": {"id": "A1"}}}
    first = await api.post("/api/jobs", json=job, headers={"Idempotency-Key": key})
    second = await api.post("/api/jobs", json=job, headers={"Idempotency-Key": key})
    assert first.status_code == 202
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]


async def test_same_idempotency_key_with_another_body_is_409(api):
    key = f"order-{uuid.uuid4()}"
    await api.post(
        "/api/jobs",
        json={"type": "summarize", "input": {"text": "first"}},
        headers={"Idempotency-Key": key},
    )
    response = await api.post(
        "/api/jobs",
        json={"type": "summarize", "input": {"text": "second"}},
        headers={"Idempotency-Key": key},
    )
    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_reused"


async def test_unknown_sync_target_is_422_naming_the_valid_ones(api):
    response = await api.post(
        "/api/jobs", json={"type": "sync", "input": {"target": "erp", "record": {}}}
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "input.target", "message": "must be one of: crm"}
    ]


async def test_unknown_job_is_404(api):
    response = await api.get(f"/api/jobs/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_cancel_then_cancel_again(api, services):
    job_id = (
        await api.post("/api/jobs", json={"type": "summarize", "input": {"text": "x"}})
    ).json()["id"]
    cancelled = await api.post(f"/api/jobs/{job_id}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert (await services.store.get(job_id)).status is JobStatus.CANCELLED
    again = await api.post(f"/api/jobs/{job_id}/cancel")
    assert again.status_code == 409
    assert again.json()["code"] == "already_terminal"
    assert (await api.get(f"/api/jobs/{job_id}")).json()["status"] == "cancelled"


async def test_delete_needs_a_finished_job_then_it_is_gone(api, services):
    job_id = (
        await api.post("/api/jobs", json={"type": "summarize", "input": {"text": "delete me"}})
    ).json()["id"]
    early = await api.delete(f"/api/jobs/{job_id}")
    assert early.status_code == 409
    assert early.json()["code"] == "not_finished"
    assert (await api.post(f"/api/jobs/{job_id}/cancel")).status_code == 200
    deleted = await api.delete(f"/api/jobs/{job_id}")
    assert deleted.status_code == 204
    assert (await api.get(f"/api/jobs/{job_id}")).status_code == 404
    assert (await api.delete(f"/api/jobs/{job_id}")).status_code == 404
    assert (await api.post(f"/api/jobs/{job_id}/cancel")).status_code == 404
    # The row stays as a tombstone: a late copy of its message is completed unrun.
    tombstone = await services.store.get(job_id)
    assert tombstone.deleted_at is not None
    assert tombstone.input is None
    assert tombstone.status.is_terminal


async def test_a_wrong_method_gets_405_with_every_allowed_method(api):
    response = await api.put(f"/api/jobs/{uuid.uuid4()}")
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET"
    assert response.headers["content-type"] == "application/problem+json"


async def test_the_openapi_document_names_every_answer(api):
    document = (await api.get("/api/openapi.json")).json()
    submit = document["paths"]["/api/jobs"]["post"]["responses"]
    for code in ("400", "413", "415", "422", "500", "503"):
        assert "application/problem+json" in submit[code]["content"], code
    assert "HTTPValidationError" not in document["components"]["schemas"]
    target = document["components"]["schemas"]["SyncInput"]["properties"]["target"]
    assert target["enum"] == ["crm"]


async def test_large_input_goes_to_blob_storage_and_back(api, services):
    text = "A sentence of some length. " * 3000  # ~80 KB: over a table property's limit
    response = await api.post("/api/jobs", json={"type": "summarize", "input": {"text": text}})
    assert response.status_code == 202
    job = await services.store.get(response.json()["id"])
    assert job.input is None
    assert job.input_ref is not None
    assert (await services.store.load_input(job))["text"] == text


async def test_health_is_200_with_every_dependency(api):
    response = await api.get("/api/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert set(body["dependencies"]) == {"storage", "service_bus"}


@pytest.fixture(scope="module")
def dead_port() -> int:
    """A loopback port nothing listens on (a broker that is down)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert port_is_free("127.0.0.1", port)
    return port


@pytest.fixture(scope="module")
async def broken_bus(app_env, dead_port):
    env = dict(
        app_env,
        ServiceBusConnection=(
            f"Endpoint=sb://127.0.0.1:{dead_port};SharedAccessKeyName=k;SharedAccessKey=v;"
            "UseDevelopmentEmulator=true"
        ),
    )
    built: Services = await build_services(Settings.from_env(env))
    async with api_client(built) as client:
        yield client, built
    await built.aclose()


async def test_enqueue_failure_is_503_and_leaves_no_queued_row(broken_bus, api, services):
    client, _ = broken_bus
    key = f"k-{uuid.uuid4()}"
    job = {"type": "summarize", "input": {"text": "x"}}
    response = await client.post("/api/jobs", json=job, headers={"Idempotency-Key": key})
    assert response.status_code == 503
    assert response.headers["retry-after"]
    problem = response.json()
    assert problem["code"] == "enqueue_failed"
    failed_id = problem["job_id"]
    row = await services.store.get(failed_id)
    assert row.status is JobStatus.FAILED
    assert row.error_code == "enqueue_failed"

    # The key was released: the same request through a healthy API makes a new job.
    retried = await api.post("/api/jobs", json=job, headers={"Idempotency-Key": key})
    assert retried.status_code == 202
    assert retried.json()["id"] != failed_id


async def test_health_is_503_when_service_bus_is_down(broken_bus):
    client, _ = broken_bus
    response = await client.get("/api/health")
    assert response.status_code == 503
    body = response.json()
    assert body["dependencies"]["storage"]["healthy"] is True
    assert body["dependencies"]["service_bus"]["healthy"] is False


async def test_rows_for_unknown_ids_raise_not_found(services):
    with pytest.raises(NotFound):
        await services.store.get(str(uuid.uuid4()))


async def test_concurrent_submits_all_reach_the_queue(api, services, app_service_bus):
    responses = await asyncio.gather(
        *(
            api.post("/api/jobs", json={"type": "embed", "input": {"texts": [f"text {i}"]}})
            for i in range(20)
        )
    )
    assert [r.status_code for r in responses] == [202] * 20
    ids = {r.json()["id"] for r in responses}
    async with (
        ServiceBusClient.from_connection_string(app_service_bus.connection_string) as client,
        client.get_queue_receiver("embed") as receiver,
    ):
        seen: set[str] = set()
        for _ in range(20):
            batch = await receiver.receive_messages(max_message_count=50, max_wait_time=1)
            for message in batch:
                await receiver.complete_message(message)
                seen.add(str(message.message_id))
            if ids <= seen:
                break
    assert ids <= seen
