"""Schema-driven fuzzing of the whole OpenAPI surface (schemathesis): no input gives a 5xx.

Cases are drawn from every operation, both valid for the schema (positive) and breaking it
(negative), half of them aimed at the served model's name so they reach the validation code
rather than the 404. Bounded: a fixed number of derandomized examples.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from serving_support import RunningServer, serving_exported

pytestmark = pytest.mark.slow

EXAMPLES = 150


@pytest.fixture(scope="module")
def server(
    exported_model: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    tmp = tmp_path_factory.mktemp("serving-fuzz")
    capture = ("--capture-url", str(tmp / "store"), "--capture-dir", str(tmp / "spool"))
    options = (*capture, "--log-sample-rate", "0.5", "--max-rows", "50")
    with serving_exported(exported_model, tmp, *options) as running:
        yield running


def test_no_generated_request_gets_a_server_error(server: RunningServer) -> None:
    api = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    served = {"model_name": "churn-model", "model_version": "dev"}
    cases = st.one_of(
        api.as_strategy(GenerationMode.POSITIVE),
        api.as_strategy(GenerationMode.NEGATIVE),
        api.as_strategy(GenerationMode.POSITIVE, path_parameters=served),
        api.as_strategy(GenerationMode.NEGATIVE, path_parameters=served),
    )
    seen: list[int] = []

    @given(case=cases)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        response = case.call(timeout=30)
        seen.append(response.status_code)
        case.validate_response(response, checks=[not_a_server_error])

    run()

    assert len(seen) >= EXAMPLES // 2
    assert all(status < 500 for status in seen)
    assert 200 in seen, "some generated requests were valid and answered"
