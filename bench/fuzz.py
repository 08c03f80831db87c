"""Schemathesis over every operation of the service's OpenAPI schema, without an API key,
with one, and with one the requests do not send, in process against the shipped models:
requests generated from the schema (valid and invalid), each answer checked for a server
error and against what the schema documents (status, content type, body).

    python bench/fuzz.py [--examples 100]

Hypothesis runs derandomized (a fixed seed): the same code gives the same requests. A row per
key setting goes to bench/results/fuzz.jsonl: operations, requests, statuses, failures. (With
the key not sent, the schema itself is read with it.)
"""

from __future__ import annotations

import argparse
import collections
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from record import append_row
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Ok

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "fuzz.jsonl"
sys.path.insert(0, str(ROOT))

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _checker(
    op: Any,
    headers: dict[str, str],
    examples: int,
    statuses: collections.Counter[int],
    failures: list[str],
) -> Callable[[], None]:
    """A Hypothesis test of one operation that counts statuses and failed checks."""

    @given(case=op.as_strategy())
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        response = case.call(headers=headers)
        statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except Exception as e:  # a failed check: counted, and the run goes on
            failures.append(f"{op.label}: {str(e).splitlines()[0][:200]}")

    return check


def run(key: str | None, examples: int, *, send_key: bool = True) -> dict:
    from service.config import Settings
    from service.main import create_app
    from tests.service.conftest import serving

    app = create_app(Settings(models_dir=ROOT / "models", api_key=key))
    headers = {"X-API-Key": key} if key and send_key else {}
    statuses: collections.Counter[int] = collections.Counter()
    failures: list[str] = []
    with serving(app):
        auth = {"X-API-Key": key} if key else {}
        schema = schemathesis.openapi.from_asgi("/openapi.json", app, headers=auth)
        operations = [
            result.ok() for result in schema.get_all_operations() if isinstance(result, Ok)
        ]
        for op in operations:
            _checker(op, headers, examples, statuses, failures)()
    return {
        "api_key": key is not None,
        "key_sent": bool(headers),
        "examples_per_operation": examples,
        "operations": len(operations),
        "requests": sum(statuses.values()),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "failures": len(failures),
        "failed": failures[:20],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--examples", type=int, default=100, help="generated cases per operation")
    a = p.parse_args()
    for key, send in ((None, False), ("fuzz-key", True), ("fuzz-key", False)):
        append_row(RESULTS, run(key, a.examples, send_key=send))


if __name__ == "__main__":
    main()
