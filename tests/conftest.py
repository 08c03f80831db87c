from pathlib import Path

import pytest
import torch

from tests.fixtures import easy_data, smoke_run  # noqa: F401 (shared fixtures)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    torch.set_num_threads(1)


def shared_file(rel: str) -> Path:
    """A file of ../shared/, or skip: the project must work where it is absent."""
    p = SHARED / rel
    if not p.exists():
        pytest.skip(f"{p} not available")
    return p
