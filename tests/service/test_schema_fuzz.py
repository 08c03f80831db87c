"""Schemathesis over the OpenAPI schema, with and without an API key: generated requests
never cause a server error, and every answer has a status, content type and body that the
schema documents.

(Driven through Hypothesis directly: schemathesis' pytest plugin does not run under pytest 9.
bench/fuzz.py runs the same with more examples and records its counts.)
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from service.main import create_app
from tests.service.conftest import make_settings, serving

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module", params=[None, "k3y"], ids=["open", "with-key"])
def api(request, models_dir):
    key = request.param
    app = create_app(
        make_settings(models_dir, max_sample_values=20_000, max_grid_points=5_000, api_key=key)
    )
    with serving(app):  # the models load; app.state keeps them
        headers = {"X-API-Key": key} if key else {}
        yield schemathesis.openapi.from_asgi("/openapi.json", app, headers=headers), headers


def test_no_server_errors_and_answers_as_documented(api):
    schema, headers = api
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 15
    statuses: set[int] = set()
    for op in operations:

        @given(case=op.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case):
            response = case.call_and_validate(headers=headers, checks=CHECKS)
            statuses.add(response.status_code)

        check()
    # The generated requests reached the handlers, valid and invalid ones alike.
    assert 200 in statuses and 422 in statuses
