import pytest
from pydantic import TypeAdapter, ValidationError

from shared.errors import InvalidTransition, NotFound
from shared.jobs import (
    ALLOWED_TRANSITIONS,
    MAX_EMBED_TEXTS,
    MAX_SUMMARIZE_TEXT_BYTES,
    TERMINAL_STATUSES,
    Job,
    JobRequest,
    JobStatus,
    JobType,
    check_transition,
    is_job_id,
    new_job_id,
    request_fingerprint,
    require_job_id,
    utcnow,
)

parse_request = TypeAdapter(JobRequest).validate_python


def make_job(status: JobStatus) -> Job:
    now = utcnow()
    return Job(
        id=new_job_id(),
        type=JobType.SUMMARIZE,
        status=status,
        owner="o",
        created_at=now,
        updated_at=now,
    )


def test_terminal_statuses_have_no_way_out_except_replay_of_dead_letters():
    for status in TERMINAL_STATUSES:
        allowed = ALLOWED_TRANSITIONS[status]
        if status is JobStatus.DEAD_LETTERED:
            assert allowed == {JobStatus.QUEUED}
        else:
            assert allowed == frozenset()


def test_every_status_has_a_transition_entry():
    assert set(ALLOWED_TRANSITIONS) == set(JobStatus)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (JobStatus.QUEUED, JobStatus.RUNNING),
        (JobStatus.RUNNING, JobStatus.SUCCEEDED),
        (JobStatus.RUNNING, JobStatus.RETRYING),
        (JobStatus.RETRYING, JobStatus.RUNNING),
        (JobStatus.QUEUED, JobStatus.CANCELLED),
        (JobStatus.DEAD_LETTERED, JobStatus.QUEUED),
    ],
)
def test_allowed_transitions(current, target):
    check_transition(current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (JobStatus.SUCCEEDED, JobStatus.RUNNING),
        (JobStatus.CANCELLED, JobStatus.SUCCEEDED),
        (JobStatus.FAILED, JobStatus.QUEUED),
        (JobStatus.QUEUED, JobStatus.SUCCEEDED),
    ],
)
def test_forbidden_transitions(current, target):
    with pytest.raises(InvalidTransition) as raised:
        check_transition(current, target)
    assert current.value in raised.value.message
    assert target.value in raised.value.message


def test_moved_to_sets_finished_at_for_terminal_statuses():
    job = make_job(JobStatus.RUNNING)
    done = job.moved_to(JobStatus.SUCCEEDED, result={"x": 1})
    assert done.status is JobStatus.SUCCEEDED
    assert done.finished_at is not None
    assert done.result == {"x": 1}
    assert job.status is JobStatus.RUNNING  # the original is untouched


def test_moved_to_refuses_a_forbidden_transition():
    with pytest.raises(InvalidTransition):
        make_job(JobStatus.CANCELLED).moved_to(JobStatus.RUNNING)


def test_summarize_text_limit_counts_utf8_bytes():
    limit_chars = MAX_SUMMARIZE_TEXT_BYTES // 2
    parse_request({"type": "summarize", "input": {"text": "é" * limit_chars}})
    with pytest.raises(ValidationError, match="limit is"):
        parse_request({"type": "summarize", "input": {"text": "é" * (limit_chars + 1)}})


@pytest.mark.parametrize("count", [0, MAX_EMBED_TEXTS + 1])
def test_embed_text_count_is_bounded(count):
    with pytest.raises(ValidationError):
        parse_request({"type": "embed", "input": {"texts": ["a"] * count}})


def test_embed_accepts_the_maximum():
    request = parse_request({"type": "embed", "input": {"texts": ["a"] * MAX_EMBED_TEXTS}})
    assert request.type is JobType.EMBED


def test_unknown_fields_and_types_are_refused():
    with pytest.raises(ValidationError):
        parse_request({"type": "summarize", "input": {"text": "x", "colour": "red"}})
    with pytest.raises(ValidationError):
        parse_request({"type": "translate", "input": {}})


def test_sync_record_must_be_an_object():
    with pytest.raises(ValidationError):
        parse_request({"type": "sync", "input": {"target": "crm", "record": [1, 2]}})


def test_fingerprint_ignores_key_order_but_not_content():
    a = request_fingerprint(JobType.SYNC, {"record": {"a": 1, "b": 2}, "target": "crm"})
    b = request_fingerprint(JobType.SYNC, {"target": "crm", "record": {"b": 2, "a": 1}})
    c = request_fingerprint(JobType.SYNC, {"target": "crm", "record": {"a": 1, "b": 3}})
    assert a == b
    assert a != c
    assert a != request_fingerprint(JobType.EMBED, {"record": {"a": 1, "b": 2}, "target": "crm"})


# A fixed id, not a new one: parallel workers must collect the same test names.
A_JOB_ID = "dcb36d55-98fc-4c92-8f08-aff2c0a4388f"


@pytest.mark.parametrize("value", ["", "abc", "../etc", "1" * 36, A_JOB_ID.upper() + "x"])
def test_malformed_job_ids(value):
    assert not is_job_id(value)
    with pytest.raises(NotFound, match="UUID"):
        require_job_id(value)


def test_new_job_ids_are_job_ids():
    assert is_job_id(new_job_id())
