import pytest
from pydantic import BaseModel, ValidationError

from shared.errors import PermanentError, ServiceUnavailable, TransientError
from shared.retry import RetryPolicy, backoff_delay, classify

POLICY = RetryPolicy(base_seconds=2, max_seconds=60, max_attempts=10)


def test_ceiling_doubles_per_attempt_until_the_cap():
    delays = [backoff_delay(a, POLICY, None, rng=lambda: 1.0) for a in range(1, 8)]
    assert delays == [2, 4, 8, 16, 32, 60, 60]


def test_full_jitter_stays_within_the_ceiling():
    assert backoff_delay(3, POLICY, None, rng=lambda: 0.0) == 0
    assert backoff_delay(3, POLICY, None, rng=lambda: 0.5) == 4


def test_retry_after_is_a_floor_but_never_above_the_cap():
    assert backoff_delay(1, POLICY, retry_after=30, rng=lambda: 0.0) == 30
    assert backoff_delay(1, POLICY, retry_after=3600, rng=lambda: 0.0) == 60


class _Model(BaseModel):
    n: int


def _validation_error() -> ValidationError:
    try:
        _Model.model_validate({"n": "x"})
    except ValidationError as exc:
        return exc
    raise AssertionError


@pytest.mark.parametrize(
    ("error", "kind", "code"),
    [
        (TimeoutError(), TransientError, "timeout"),
        (ConnectionResetError("reset"), TransientError, "connection_error"),
        (ServiceUnavailable("storage down"), TransientError, "dependency_unavailable"),
        (RuntimeError("bug"), TransientError, "unexpected_error"),
        (_validation_error(), PermanentError, "invalid_input"),
        (PermanentError("no", code="downstream_400"), PermanentError, "downstream_400"),
        (TransientError("later", code="downstream_503"), TransientError, "downstream_503"),
    ],
)
def test_classify(error, kind, code):
    classified = classify(error)
    assert isinstance(classified, kind)
    assert classified.code == code
