"""Completion callbacks end to end through devtools/host.py: the final status document is
POSTed, signed, to an allow-listed local receiver; a failing receiver is retried through the
callbacks queue and never changes the job; disallowed and private targets are 422 at submit.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.callbacks.notify import CallbackStore
from shared.config import Settings
from shared.jobs import JobStatus
from shared.maintenance import run_maintenance
from shared.services import build_services
from tests.fixtures.app import ADMIN_HEADERS
from tests.integration.callback_receiver import SECRET, Received, callback_env, running_receiver
from tests.integration.helpers import api_client, cli, script, wait_for_status

pytestmark = pytest.mark.integration

TERMINAL = {"succeeded", "failed", "dead_lettered", "cancelled"}
DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"
TEXT = "Queues decouple producers from consumers. " * 3 + "Cats sleep a lot."


def documented_verifier() -> Any:
    """`verify_signature` exactly as docs/api.md shows receivers (the block after the marker)."""
    text = DOCS.read_text(encoding="utf-8")
    match = re.search(r"<!-- signature-check -->\s*```python\n(.*?)```", text, re.DOTALL)
    assert match, "docs/api.md lost its signature-check snippet"
    namespace: dict[str, Any] = {}
    exec(compile(match[1], str(DOCS), "exec"), namespace)  # the documented code, as written
    return namespace["verify_signature"]


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[str, Received]]:
    with running_receiver() as served:
        yield served


@pytest.fixture(scope="module")
def app_env(app_env: dict[str, str]) -> dict[str, str]:
    return callback_env(app_env)


async def submit(http: httpx.AsyncClient, callback_url: str) -> str:
    response = await http.post(
        "/api/jobs",
        json={"type": "summarize", "input": {"text": TEXT}, "callback_url": callback_url},
    )
    assert response.status_code == 202, response.text
    assert response.json()["callback"] == {
        "url": callback_url,
        "status": "waiting",
        "attempts": 0,
        "last_status_code": None,
        "last_error": None,
        "last_attempt_at": None,
        "next_attempt_at": None,
        "delivered_at": None,
    }
    return str(response.json()["id"])


async def callback_settled(
    http: httpx.AsyncClient, job_id: str, within: float = 40.0
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        doc = (await http.get(f"/api/jobs/{job_id}")).json()
        if (doc.get("callback") or {}).get("status") in ("delivered", "failed"):
            return dict(doc)
        assert time.monotonic() < deadline, f"callback of {job_id} still {doc.get('callback')}"
        await asyncio.sleep(0.2)


async def test_a_callback_is_received_and_its_signature_verifies(http, receiver):
    url, received = receiver
    path = f"/hooks/{uuid.uuid4().hex[:8]}"
    job_id = await submit(http, url + path)
    doc = await callback_settled(http, job_id)
    assert doc["callback"]["status"] == "delivered"
    assert doc["callback"]["attempts"] == 1
    assert doc["callback"]["last_status_code"] == 200

    (call,) = received.at(path)
    verify = documented_verifier()
    assert verify(SECRET, call["headers"]["conveyor-signature"], call["body"])
    assert not verify(
        "another-secret-" + "x" * 20, call["headers"]["conveyor-signature"], call["body"]
    )
    assert not verify(SECRET, call["headers"]["conveyor-signature"], call["body"] + b" ")
    assert call["headers"]["content-type"] == "application/json"
    assert call["headers"]["conveyor-delivery"].startswith(f"{job_id}:")
    posted = json.loads(call["body"])
    # The final status document, as GET shows it (the callback's own state moved on since).
    assert posted["id"] == job_id
    assert posted["status"] == "succeeded"
    assert posted["result"] == doc["result"]
    assert {k: v for k, v in posted.items() if k not in ("callback", "links")} == {
        k: v for k, v in doc.items() if k not in ("callback", "links")
    }
    assert posted["callback"]["status"] == "pending"
    assert posted["links"]["self"].endswith(f"/api/jobs/{job_id}")


async def test_a_failing_endpoint_is_retried_then_delivered_and_the_job_never_changes(
    http, receiver
):
    url, received = receiver
    path = f"/hooks/{uuid.uuid4().hex[:8]}"
    received.script(path, [503, 503, 503])
    job_id = await submit(http, url + path)
    finished = await wait_for_status(http, job_id, TERMINAL)
    assert finished["status"] == "succeeded"
    doc = await callback_settled(http, job_id)
    assert doc["callback"]["status"] == "delivered"
    assert doc["callback"]["attempts"] == 4
    assert doc["callback"]["last_status_code"] == 200
    calls = received.at(path)
    assert [c["status"] for c in calls] == [503, 503, 503, 200]
    assert [c["headers"]["conveyor-attempt"] for c in calls] == ["1", "2", "3", "4"]
    assert len({c["headers"]["conveyor-delivery"] for c in calls}) == 1
    # The job itself: same status, result, attempt and times as when it finished.
    for field in ("status", "result", "attempt", "finished_at", "updated_at", "error"):
        assert doc[field] == finished[field], field


async def test_an_endpoint_that_keeps_failing_is_given_up_and_the_job_still_succeeded(
    http, receiver
):
    url, received = receiver
    path = f"/hooks/{uuid.uuid4().hex[:8]}"
    received.script(path, [500] * 10)
    job_id = await submit(http, url + path)
    doc = await callback_settled(http, job_id)
    assert doc["status"] == "succeeded"
    assert doc["callback"]["status"] == "failed"
    assert doc["callback"]["attempts"] == 5
    assert doc["callback"]["last_status_code"] == 500
    assert "gave up after 5 attempts" in doc["callback"]["last_error"]
    assert len(received.at(path)) == 5


async def test_a_given_up_callback_is_delivered_again_on_an_admins_request(http, receiver, app_env):
    """The endpoint was down for longer than the retries lasted; once it is back, an admin
    starts the callback over: a new round from attempt 1, delivered, the job unchanged."""
    url, received = receiver
    path = f"/hooks/{uuid.uuid4().hex[:8]}"
    received.script(path, [500] * 5)
    job_id = await submit(http, url + path)
    given_up = await callback_settled(http, job_id)
    assert given_up["callback"]["status"] == "failed"
    redeliver = f"/api/admin/jobs/{job_id}/callback/redeliver"

    assert (await http.post(redeliver)).status_code == 403  # not an admin
    response = await http.post(redeliver, headers=ADMIN_HEADERS)
    assert response.status_code == 202, response.text
    assert response.json()["queued"] is True
    assert response.json()["callback"]["status"] == "pending"
    assert response.json()["callback"]["attempts"] == 0

    doc = await callback_settled(http, job_id)
    assert doc["callback"]["status"] == "delivered"
    assert doc["callback"]["attempts"] == 1
    assert len(received.at(path)) == 6
    assert json.loads(received.at(path)[-1]["body"])["status"] == "succeeded"
    for field in ("status", "result", "finished_at", "attempt"):
        assert doc[field] == given_up[field], field
    audit = (await http.get("/api/admin/audit", headers=ADMIN_HEADERS)).json()["entries"]
    assert any(e["action"] == "callback.redeliver" and e["target"] == job_id for e in audit)

    calls = len(received.at(path))
    done = await asyncio.to_thread(cli, app_env, "--json", "callbacks", "redeliver", job_id)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"job_id": job_id, "queued": True}
    again = await callback_settled_after(http, job_id, calls, received, path)
    assert again["callback"]["status"] == "delivered"
    assert again["callback"]["attempts"] == 1


async def callback_settled_after(
    http: httpx.AsyncClient, job_id: str, calls: int, received: Received, path: str
) -> dict[str, Any]:
    """The callback's state once the endpoint has had one more call than `calls`."""
    deadline = time.monotonic() + 40
    while len(received.at(path)) <= calls:
        if time.monotonic() > deadline:
            doc = (await http.get(f"/api/jobs/{job_id}")).json()
            raise AssertionError(f"no new delivery: {doc['callback']}")
        await asyncio.sleep(0.1)
    return await callback_settled(http, job_id)


async def test_redelivery_is_refused_while_there_is_nothing_to_redeliver(http, receiver):
    url, received = receiver
    path = f"/hooks/{uuid.uuid4().hex[:8]}"
    received.script(path, [500] * 100)  # retried until given up: pending meanwhile
    job_id = await submit(http, url + path)
    redeliver = f"/api/admin/jobs/{job_id}/callback/redeliver"
    pending = False
    deadline = time.monotonic() + 40
    while not pending:  # wait for the first failed attempt: the callback is pending
        doc = (await http.get(f"/api/jobs/{job_id}")).json()
        pending = doc["callback"]["status"] == "pending" and doc["callback"]["attempts"] >= 1
        assert time.monotonic() < deadline, doc["callback"]
        await asyncio.sleep(0.05)
    response = await http.post(redeliver, headers=ADMIN_HEADERS)
    assert response.status_code == 409, response.text
    assert response.json()["code"] == "callback_pending"

    plain = await http.post("/api/jobs", json={"type": "summarize", "input": {"text": TEXT}})
    no_callback = f"/api/admin/jobs/{plain.json()['id']}/callback/redeliver"
    response = await http.post(no_callback, headers=ADMIN_HEADERS)
    assert response.status_code == 409
    assert response.json()["code"] == "no_callback"

    unknown = f"/api/admin/jobs/{uuid.uuid4()}/callback/redeliver"
    assert (await http.post(unknown, headers=ADMIN_HEADERS)).status_code == 404
    malformed = "/api/admin/jobs/not-a-job/callback/redeliver"
    assert (await http.post(malformed, headers=ADMIN_HEADERS)).status_code == 404


async def test_a_host_off_the_allow_list_is_422_naming_the_field(http):
    response = await http.post(
        "/api/jobs",
        json={
            "type": "summarize",
            "input": {"text": TEXT},
            "callback_url": "https://hooks.elsewhere.example/done",
        },
    )
    assert response.status_code == 422
    problem = response.json()
    assert problem["errors"][0]["field"] == "callback_url"
    assert "not on the allow-list" in problem["errors"][0]["message"]


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1]/done",  # loopback, and not on the list
        "ftp://127.0.0.1/done",
        "http://user:pw@127.0.0.1/done",
        "http://127.0.0.1:99999/done",
        "not a url",
    ],
)
async def test_urls_that_are_not_allowed_are_422(http, url):
    response = await http.post(
        "/api/jobs",
        json={"type": "summarize", "input": {"text": TEXT}, "callback_url": url},
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "callback_url"


async def test_a_private_address_the_allow_list_does_not_name_is_422(app_env):
    """`localhost` is allow-listed by name, but it resolves to 127.0.0.1, which this list
    does not name: refused at submit, and nothing is written."""
    env = {**app_env, "CALLBACK_ALLOWED_HOSTS": "localhost,http://localhost,*.example.com"}
    services = await build_services(Settings.from_env(env))
    try:
        async with api_client(services) as api:
            before = await services.store.count_by_status(JobStatus.QUEUED)
            for url in ("https://localhost/done", "http://localhost:8080/done"):
                response = await api.post(
                    "/api/jobs",
                    json={"type": "summarize", "input": {"text": TEXT}, "callback_url": url},
                )
                assert response.status_code == 422, response.text
                (error,) = response.json()["errors"]
                assert error["field"] == "callback_url"
                assert "127.0.0.1, a private or reserved address" in error["message"]
            assert await services.store.count_by_status(JobStatus.QUEUED) == before
            ip = await api.post(
                "/api/jobs",
                json={
                    "type": "summarize",
                    "input": {"text": TEXT},
                    "callback_url": "https://169.254.169.254/latest",
                },
            )
            assert ip.status_code == 422
            assert ip.json()["errors"][0]["field"] == "callback_url"
    finally:
        await services.aclose()


async def test_a_cancelled_job_calls_back_and_a_lost_first_message_is_sent_again(
    app_env, host, receiver, downstream
):
    """The send after the terminal write is lost (this instance has no callbacks queue):
    the callback stays pending until the maintenance pass sends it; the host delivers it."""
    url, received = receiver
    path = f"/hooks/{uuid.uuid4().hex[:8]}"
    record = f"r-{uuid.uuid4().hex[:8]}"
    script(downstream, record, [{"status": 200, "delay": 3}])  # keeps the job in flight
    services = await build_services(Settings.from_env(app_env))
    store = services.store
    assert isinstance(store, CallbackStore)
    queue, store.callbacks = store.callbacks, None
    try:
        async with api_client(services) as api:
            response = await api.post(
                "/api/jobs",
                json={
                    "type": "sync",
                    "input": {"target": "crm", "record": {"id": record}},
                    "callback_url": url + path,
                },
            )
            assert response.status_code == 202, response.text
            job_id = response.json()["id"]
            cancelled = (await api.post(f"/api/jobs/{job_id}/cancel")).json()
            assert cancelled["status"] == "cancelled"
            assert cancelled["callback"]["status"] == "pending"
            await asyncio.sleep(1.0)
            assert received.at(path) == []  # nothing was sent

            store.callbacks = queue
            report = await run_maintenance(services.dead_letters, services.sweeper, store)
            assert report.callbacks_redriven == []  # not overdue yet
            assert await store.redrive_pending(grace_seconds=0) == [job_id]
            doc = await callback_settled(api, job_id)
        assert doc["callback"]["status"] == "delivered"
        (call,) = received.at(path)
        assert json.loads(call["body"])["status"] == "cancelled"
    finally:
        store.callbacks = queue
        await services.aclose()
