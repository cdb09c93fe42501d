"""Deeply nested input is refused at validation with a 422 naming the field, at any depth
(it once reached the submit and failed there with a 500 at ~900 levels)."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from shared.jobs import MAX_INPUT_DEPTH, JobRequest, json_depth

REQUEST = TypeAdapter(JobRequest)


def nested(depth: int) -> dict[str, object]:
    value: dict[str, object] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"child": value}
    return value


def test_depth_is_measured_without_recursion():
    assert json_depth({"a": 1}) == 1
    assert json_depth({"a": [{"b": 1}]}) == 3
    assert json_depth(nested(5_000)) == 5_000  # far past Python's recursion limit


@pytest.mark.parametrize("depth", [MAX_INPUT_DEPTH + 1, 900, 5_000])
def test_a_record_nested_too_deep_is_a_validation_error_naming_the_field(depth):
    body = {"type": "sync", "input": {"target": "crm", "record": nested(depth)}}
    with pytest.raises(ValidationError) as caught:
        REQUEST.validate_python(body)
    (error,) = caught.value.errors()
    assert error["loc"][-1] == "record"
    assert f"limit is {MAX_INPUT_DEPTH}" in error["msg"]


def test_a_record_at_the_limit_is_accepted_and_can_be_dumped():
    body = {"type": "sync", "input": {"target": "crm", "record": nested(MAX_INPUT_DEPTH - 1)}}
    request = REQUEST.validate_python(body)
    assert request.input.model_dump(mode="json")["record"]
