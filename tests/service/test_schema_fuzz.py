"""Schemathesis over the OpenAPI schema: generated requests never cause a server error.

(Driven through Hypothesis directly: schemathesis' pytest plugin does not run under pytest 9.)
"""

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from service.main import create_app
from tests.service.conftest import make_settings


@pytest.fixture(scope="module")
def api_schema(models_dir):
    app = create_app(make_settings(models_dir, max_sample_values=20_000, max_grid_points=5_000))
    with TestClient(app):  # the lifespan loads the models; app.state keeps them
        yield schemathesis.openapi.from_asgi("/openapi.json", app)


def test_no_server_errors(api_schema):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 10
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
            response = case.call_and_validate(checks=[not_a_server_error])
            statuses.add(response.status_code)

        check()
    # The generated requests reached the handlers, valid and invalid ones alike.
    assert 200 in statuses and 422 in statuses
