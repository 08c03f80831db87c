"""One training run into a directory, as `nld train` makes it: the checkpoint with its stages,
the names of the channels it was trained on, and the stored analysis of its landscape (which
`nld.load`, `nld segment` and the service read). `nld train` and `nld sweep` both call it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nld import analysis_file, checkpoint
from nld.data import Dataset
from nld.data.recordings import as_recordings, label_warning, training_set
from nld.data.tables import TableOptions
from nld.estimator import analysed
from nld.fitted import Fitted
from nld.fitting.config import TrainConfig
from nld.fitting.restarts import fit
from nld.model import NLDModel


@dataclass
class Trained:
    model: NLDModel
    fitted: Fitted
    meta: dict[str, Any]  # config.json's meta: the stages' records, restarts, data shape
    data: Dataset  # the training set as the model saw it


def train_run(
    cfg: TrainConfig,
    data: str | Path,
    out: str | Path,
    *,
    table: TableOptions | None = None,
    resume: bool = False,
    progress: bool = True,
    processes: bool = True,
    warn: Callable[[str], None] = lambda message: None,
) -> Trained:
    """Train `cfg` on the recordings in the file `data` (read as `table` says) into `out`,
    or continue the run there (`resume`); `warn` gets what the user should know about the
    data before the training starts. `processes`: restart candidates in worker processes
    (else one after another in this one)."""
    recs = as_recordings(data, where=str(data), table=table)
    dataset = training_set(recs, cfg.train.window)
    warning = label_warning(recs)
    if warning:
        warn(warning)
    model, fitted = fit(
        cfg, dataset, out, resume=resume, progress_bar=progress, processes=processes
    )
    meta = checkpoint.read_config(out)[1]
    if recs.columns:  # the channels' names, which data to label later must have
        meta["data"]["columns"] = recs.columns
        checkpoint.save(out, model, fitted, meta=meta)
    landscape = analysed(model, dataset.x, cfg.train.seed)
    if landscape is not None:
        digest = checkpoint.weights_sha256(out)
        analysis_file.save(Path(out) / analysis_file.FILE, landscape, digest)
    return Trained(model, fitted, meta, dataset)
