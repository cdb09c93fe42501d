import json

import pytest

from shared.errors import PermanentError
from shared.jobs import JobType, new_job_id
from shared.queue import JobMessage, copy_message_id


def test_round_trip_through_a_service_bus_message():
    job_id = new_job_id()
    message = JobMessage(job_id=job_id, job_type=JobType.EMBED, input={"texts": ["a"]})
    sb = message.to_service_bus()
    assert sb.message_id == job_id
    assert sb.content_type == "application/json"
    assert sb.application_properties == {"job_type": "embed", "attempt": 1}
    parsed = JobMessage.from_body(b"".join(sb.body))
    assert parsed == message


def test_copies_get_their_own_message_id():
    job_id = new_job_id()
    first, second = copy_message_id(job_id, "retry2"), copy_message_id(job_id, "retry2")
    assert first != second
    assert first.startswith(f"{job_id}:retry2:")
    message = JobMessage(
        job_id=job_id, job_type=JobType.SYNC, attempt=3, input={}, message_id=first
    )
    sb = message.to_service_bus()
    assert sb.message_id == first
    assert sb.application_properties is not None
    assert sb.application_properties["attempt"] == 3


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        json.dumps({"job_id": "x", "type": "nope", "submitted_at": "2026-01-01T00:00:00"}),
        json.dumps({"type": "embed", "submitted_at": "2026-01-01T00:00:00"}),
        json.dumps({"job_id": 5, "type": "embed", "submitted_at": "2026-01-01T00:00:00"}),
    ],
)
def test_unparseable_bodies_are_permanent_failures(body):
    with pytest.raises(PermanentError) as raised:
        JobMessage.from_body(body)
    assert raised.value.code == "bad_message"
