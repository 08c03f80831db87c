"""nld: Neural Langevin Dynamics, interpretable neural SDEs for time series with hidden states.

    import nld

    model = nld.NLD(preset="default", seed=0).fit(x)   # x: [T, D], [N, T, D], a DataFrame
    model.predict(x)          # the state of every step (an index of model.minima_)
    model.predict_proba(x)    # the probability of each state at every step
    model.landscape_          # minima, occupancies, saddles, rates, dwell times
    model.save("runs/mine");  nld.load("runs/mine")

The public names are below; the modules beneath (`nld.model`, `nld.analysis`, `nld.fitting`,
...) are the implementation. Importing nld itself imports neither torch nor the service:
the names load on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__all__ = [
    "NLD",
    "Analysis",
    "ConfigError",
    "DataError",
    "Dataset",
    "NLDError",
    "NotFittedError",
    "load",
    "presets",
]

_WHERE = {
    "NLD": "nld.estimator",
    "NotFittedError": "nld.estimator",
    "load": "nld.estimator",
    "presets": "nld.estimator",
    "Analysis": "nld.landscape",
    "Dataset": "nld.data.dataset",
    "NLDError": "nld.errors",
    "ConfigError": "nld.errors",
    "DataError": "nld.errors",
}

if TYPE_CHECKING:
    from nld.data.dataset import Dataset
    from nld.errors import ConfigError, DataError, NLDError
    from nld.estimator import NLD, NotFittedError, load, presets
    from nld.landscape import Analysis


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'nld' has no attribute {name!r}")
    value = getattr(import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
