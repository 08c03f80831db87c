"""What a stage reports: a typed record, kept in a checkpoint's `meta` under the stage's key.

Each stage's record is a pydantic model in the stage's module. It says whether the run changed
the model (the runner then runs the later recorded stages again) and describes itself in a
few lines, for `nld train`, `nld stage` and model cards. Records written by older versions
still load: fields added since have defaults, and fields no longer known are kept.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StageRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")

    def changed(self) -> bool:
        """Whether the run that wrote this record changed the model."""
        return True

    def describe(self) -> list[str]:
        """What the stage did, in a few lines."""
        return []


def values(numbers: list[float], spec: str) -> str:
    return ", ".join(format(v, spec) for v in numbers)
