"""Object-store-bound steps retry transient errors with backoff and fail at once on anything else."""

import errno

import dagster as dg
import pytest

from assets.placement import fails_fast_unless_transient, is_transient, retry_policy


class _ClientError(Exception):
    """botocore's ClientError shape: the S3 error code in response["Error"]["Code"]."""

    def __init__(self, code):
        super().__init__(code)
        self.response = {"Error": {"Code": code}}


@pytest.mark.parametrize("error, transient", [
    (ConnectionResetError("reset by peer"), True),
    (TimeoutError("read timed out"), True),
    (OSError(errno.ETIMEDOUT, "timed out"), True),
    (_ClientError("SlowDown"), True),
    (_ClientError("503"), True),
    (type("EndpointConnectionError", (Exception,), {})("could not connect"), True),
    (FileNotFoundError("s3://bucket/DOTA"), False),
    (PermissionError("AccessDenied"), False),
    (_ClientError("NoSuchBucket"), False),
    (ValueError("a bug"), False),
])
def test_which_errors_are_worth_a_retry(error, transient):
    assert is_transient(error) is transient


def test_an_error_raised_from_a_transient_one_is_transient():
    try:
        try:
            raise ConnectionError("dropped")
        except ConnectionError as cause:
            raise RuntimeError("reading the shard failed") from cause
    except RuntimeError as error:
        assert is_transient(error)


def test_a_transient_error_is_retried_and_a_permanent_one_fails_at_once():
    attempts = {"flaky": 0, "missing": 0}
    policy = retry_policy(max_retries=3, delay_seconds=0.01, backoff="exponential")

    @dg.asset(retry_policy=policy)
    @fails_fast_unless_transient
    def flaky():
        attempts["flaky"] += 1
        if attempts["flaky"] < 3:
            raise ConnectionResetError("the object store dropped the connection")

    @dg.asset(retry_policy=policy)
    @fails_fast_unless_transient
    def missing():
        attempts["missing"] += 1
        raise FileNotFoundError("s3://earthgpt-raw/DOTA not found")

    assert dg.materialize([flaky]).success and attempts["flaky"] == 3
    result = dg.materialize([missing], raise_on_error=False)
    assert not result.success and attempts["missing"] == 1
    (failure,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert "FileNotFoundError: s3://earthgpt-raw/DOTA not found" in failure.event_specific_data.error.to_string()


def test_no_retries_means_no_policy():
    assert retry_policy(0, 10, "exponential") is None
    linear = retry_policy(2, 5, "linear")
    assert linear.backoff == dg.Backoff.LINEAR and linear.jitter == dg.Jitter.PLUS_MINUS
