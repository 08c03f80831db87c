"""The API describes itself: every operation, field and parameter, with examples."""

import pytest

from service.main import create_app
from tests.service.conftest import make_settings


@pytest.fixture(scope="module")
def schema(models_dir):
    return create_app(make_settings(models_dir)).openapi()


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, op in item.items():
            yield f"{method.upper()} {path}", op


def test_every_operation_has_a_summary_a_description_and_its_errors(schema):
    ops = dict(_operations(schema))
    assert len(ops) >= 13
    for name, op in ops.items():
        assert op.get("summary"), name
        assert len(op.get("description", "")) > 40, name
        for param in op.get("parameters", []):
            if param["in"] in ("query", "path"):
                example = param.get("examples") or param["schema"].get("examples")
                assert param.get("description") and example, (name, param["name"])


def test_every_field_has_a_description_and_an_example(schema):
    missing = []
    for model, spec in schema["components"]["schemas"].items():
        if model in ("HTTPValidationError", "ValidationError"):
            continue  # FastAPI's own, never sent: our 422s are Problem
        for field, prop in spec.get("properties", {}).items():
            if not prop.get("description"):
                missing.append(f"{model}.{field}: description")
            # Nested models carry their own examples, field by field.
            if "examples" not in prop and "$ref" not in str(prop):
                missing.append(f"{model}.{field}: example")
    assert not missing, missing
