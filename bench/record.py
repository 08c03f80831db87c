"""What the benchmark scripts share: a free loopback port, and appending a result row."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def append_row(path: Path, row: dict[str, Any], *, show: bool = True) -> None:
    """Print `row` (floats rounded) and append it to the JSON-lines file `path`."""
    if show:
        print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(row) + "\n")
