"""`NLD`: Neural Langevin Dynamics as an estimator, in the manner of scikit-learn and deeptime.

    >>> import nld
    >>> from nld.data import load_spec, sample
    >>> x = sample(load_spec("exp1"), 40, 100, seed=0).x       # 40 sequences [100, 2]
    >>> model = nld.NLD("smoke", iterations=60, progress=False).fit(x)
    >>> model.predict(x[0]).shape                               # a label per step
    (100,)
    >>> model.predict_proba(x[:2]).shape == (2, 100, model.n_states_)
    True

`fit` trains (the loop and every stage of `nld.fitting.pipeline`, as `nld train` does) and
analyses the learned landscape; the fitted attributes end in `_`: the network `model_` (a
torch module), what the stages fitted beside it `fitted_` (`nld.fitted.Fitted`), the analysis
`landscape_`, and from these `minima_`, `n_states_`, `chain_`, `head_chain_`, `clock_`, and
the regimes (nld.regimes) `n_regimes_` and `regime_of_state_` (None without a chain). Labels
index `minima_`; `regime_of_state_[labels]` are the regimes.
`save` writes a run directory that `nld.load`, `nld serve` and every `nld` command read.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nld import analysis_file, checkpoint
from nld.data import Dataset
from nld.data.recordings import (
    Recordings,
    as_recordings,
    label_warning,
    training_set,
)
from nld.data.tables import TableOptions
from nld.device import resolve_device
from nld.errors import CheckpointError, ConfigError, DataError, NLDError
from nld.fitted import Fitted
from nld.fitting.config import (
    LEGACY,
    TrainConfig,
    TrainSettings,
    load_config,
    with_overrides,
)
from nld.head_chain import HeadChain
from nld.inference import class_reading, head_order, read_all, readout_path
from nld.landscape import Analysis, analyze
from nld.model import ModelConfig, NLDModel
from nld.regimes import Regimes, regimes
from nld.state_chain import StateChain

NO_CHAIN = (
    "offline labels and probabilities need a hidden Markov chain over the model's states, "
    "which this model does not have (`nld fit-chain RUN --data TRAIN` fits one)"
)


@dataclass(frozen=True)
class Segmentation:
    """What `NLD.segment` finds in recordings, each in their shape."""

    labels: Any  # [T] / [N, T] / a list: indices of `minima_`
    probabilities: Any  # [T, K] / [N, T, K] / a list; None where the model gives none
    latent: Any  # [T, d] / [N, T, d] / a list: the latent path (`transform`)


class NotFittedError(NLDError, AttributeError):
    """A fitted model's method or attribute was used before `fit`."""


class NLD:
    """A Neural Langevin Dynamics model: a latent SDE whose prior drift is the gradient of a
    learned energy, whose minima are the hidden states.

    preset: a shipped training preset (`nld.presets()`; None: `default`), or `config`: a
        TOML file of one.
    seed: the seed of the weights, batches and stages (None: the config's; no global random
        state is touched: two fits with the same seed and threads give the same model).
    threads: torch threads while fitting (None: the preset's, which the results it quotes
        were measured with).
    device: where the training loop runs and the fitted model computes (predict, transform,
        score): "auto" (a GPU when torch sees one), "cpu" (the default), "cuda", "cuda:N" or
        "mps"; the stages after the loop and the landscape analysis run on the CPU.
    progress: show a progress bar while fitting.
    run_dir: keep the training run here (checkpoints as it trains, metrics.jsonl, and at the
        end what `save` writes); by default it goes to a temporary directory, removed after
        `fit`.
    settings: overrides by section, {"model.latent_dim": 3, "train.iterations": 500}.
    **overrides: the same by bare name (`iterations=500`) where the name is unambiguous.
    """

    def __init__(
        self,
        preset: str | None = None,
        *,
        config: str | os.PathLike[str] | None = None,
        seed: int | None = None,
        threads: int | None = None,
        device: str | None = None,
        progress: bool = True,
        run_dir: str | os.PathLike[str] | None = None,
        settings: Mapping[str, Any] | None = None,
        **overrides: Any,
    ) -> None:
        # As given, for get_params (scikit-learn's clone, grid searches).
        self._params: dict[str, Any] = {
            "preset": preset,
            "config": config,
            "seed": seed,
            "threads": threads,
            "device": device,
            "progress": progress,
            "run_dir": run_dir,
            "settings": settings,
            **overrides,
        }
        self.progress = progress
        self.run_dir = None if run_dir is None else Path(run_dir)
        changes = {**dict(settings or {}), **{_section(k): v for k, v in overrides.items()}}
        for key, value in (
            ("train.seed", seed),
            ("train.threads", threads),
            ("train.device", device),
        ):
            if value is not None:
                changes[key] = value
        self.config = with_overrides(
            load_config(preset, None if config is None else Path(config)), changes
        )
        self.preset, self.seed = self.config.name, self.config.train.seed

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's arguments, as given."""
        return dict(self._params)

    def set_params(self, **params: Any) -> NLD:
        """Construct again with these arguments changed (validated like the constructor)."""
        self.__init__(**{**self._params, **params})  # type: ignore[misc]
        return self

    def __repr__(self) -> str:
        fitted = f", n_states_={self.n_states_}" if hasattr(self, "model_") else ""
        return f"NLD(preset={self.config.name!r}, seed={self.seed}{fitted})"

    # -- fitting --------------------------------------------------------------------------
    def fit(self, x: Any, y: None = None, **table: Any) -> NLD:
        """Train on `x`: one recording [T, D], a batch [N, T, D], a list of recordings of
        different lengths, a pandas DataFrame, or a data file's path: .npz, .npy, or a .csv,
        .tsv or .parquet table, read as `table` says (`time_column`, `columns`,
        `sequence_column`, `fill`: nld.data.tables). Recordings other than a batch are cut
        into equal pieces (`nld.data.recordings.training_set`). `y` is ignored: the states
        are learned without labels."""
        from nld.fitting.restarts import fit, resumable

        if self.run_dir is not None and (
            resumable(self.run_dir) or (self.run_dir / checkpoint.CONFIG).exists()
        ):
            raise NLDError(
                f"run_dir {self.run_dir} already holds a run: give another run_dir (nld.load "
                "reads the one there)"
            )
        recs = as_recordings(x, table=_table_options(table))
        data = training_set(recs, self.config.train.window)
        warning = label_warning(recs)
        if warning:
            warnings.warn(warning, UserWarning, stacklevel=2)
        with _own_rng(), _directory(self.run_dir) as out:
            # Restart candidates one after another in this process: worker processes would be
            # spawned, which re-runs a user's unguarded script. The same models either way.
            model, fitted = fit(self.config, data, out, progress_bar=self.progress, processes=False)
            _, meta = checkpoint.read_config(out)
            if recs.columns:
                meta["data"]["columns"] = recs.columns
            self._set_fitted(model, fitted, meta, analysed(model, data.x, self.seed))
        model.to(resolve_device(self.config.train.device))
        if self.run_dir is not None:
            self.save(self.run_dir)  # with its analysis, and the columns it was trained on
        return self

    def _set_fitted(
        self, model: NLDModel, fitted: Fitted, meta: dict[str, Any], landscape: Analysis | None
    ) -> None:
        self.__dict__.pop("_regimes", None)  # of the model fitted before, if any
        self.model_ = model.eval()
        self.fitted_ = fitted
        self.meta_ = meta
        self.landscape_ = landscape
        self.n_features_in_ = model.cfg.obs_dim
        self.feature_names_in_ = (meta.get("data") or {}).get("columns")
        minima = [] if landscape is None else landscape.minima
        self.minima_ = np.array([m.position for m in minima]).reshape(-1, model.cfg.latent_dim)
        self.n_states_ = len(minima)
        self.clock_ = model.cfg.clock
        self._order = None if landscape is None else head_order(fitted, landscape.minima)
        chain = fitted.chain
        self.chain_: StateChain | None = (
            None
            if chain is None or self._order is None
            else chain.reordered(np.argsort(self._order))
        )
        heads = fitted.head_chain
        self.head_chain_: HeadChain | None = (
            None
            if heads is None or self._order is None
            else heads.reordered(np.argsort(self._order))
        )

    @cached_property
    def _regimes(self) -> Regimes | None:
        """The minima's metastable groups by the kinetics of the chain offline labels use."""
        kinetics = self.chain_ or self.head_chain_
        return None if kinetics is None else regimes(np.exp(kinetics.log_trans))

    @property
    def n_regimes_(self) -> int | None:
        return None if self._regimes is None else self._regimes.count

    @property
    def regime_of_state_(self) -> np.ndarray | None:
        """The regime of each state (of `minima_`)."""
        return None if self._regimes is None else self._regimes.of_state

    # -- using a fitted model -------------------------------------------------------------
    def segment(self, x: Any, *, online: bool = True, method: str = "smooth") -> Segmentation:
        """What `predict`, `predict_proba` and `transform` give, from one pass of the encoder:
        the labels, each state's probabilities (None where the model gives none) and the
        latent path, each in x's shape."""
        if method not in ("smooth", "viterbi"):
            raise NLDError(f"method is 'smooth' or 'viterbi', not {method!r}")
        model, landscape = self._ready()
        fitted, order, index = self.fitted_, self._order, landscape.index
        assert index is not None

        def one(x3: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
            positions, head = read_all(model, fitted, x3)
            latent = positions.double().numpy()
            if self.n_states_ == 1:  # one well: every step is in it, certainly
                return np.zeros(x3.shape[:2], dtype=np.int64), np.ones((*x3.shape[:2], 1)), latent
            read = None
            if order is not None:
                viterbi = not online and method == "viterbi"
                read = class_reading(fitted, x3, head, online=online, viterbi=viterbi)
            if read is None:
                if not online:
                    raise NLDError(
                        "offline labels need the model's state chain over the landscape's "
                        "minima; this model labels by the basin of its readout position"
                        if order is None
                        else NO_CHAIN
                    )
                return index.assign(positions), None, latent
            assert order is not None
            classes, log_p = read
            proba = np.empty_like(log_p)
            proba[..., order] = np.exp(log_p)
            return order[classes], proba, latent

        recs = self._recordings(x)
        if recs.kind == "batch":
            return Segmentation(*one(np.stack(recs.arrays)))
        parts = [one(a[None]) for a in recs.arrays]

        def gathered(i: int) -> Any:
            got = [p[i] for p in parts]
            return None if got[0] is None else recs.restore([v[0] for v in got if v is not None])

        return Segmentation(gathered(0), gathered(1), gathered(2))

    def predict(self, x: Any, *, online: bool = True, method: str = "smooth") -> Any:
        """The state (an index of `minima_`) of every step: [T], [N, T], or a list.

        online: from the steps so far only (the causal filter the service streams with);
        False: from the whole recording, with the model's chain over its states (the state
        chain, or where that one was not kept the head chain, nld.head_chain): `method`
        "smooth" takes each step's most probable state (forward-backward), "viterbi" the most
        probable path."""
        return self.segment(x, online=online, method=method).labels

    def predict_proba(self, x: Any, *, online: bool = True) -> Any:
        """The probability of each state at every step: [T, K], [N, T, K], or a list; the
        states in the order of `minima_` (online: given the steps so far; False: given the
        whole recording)."""
        found = self.segment(x, online=online)
        if found.probabilities is None:
            raise NLDError(
                "this model labels by the basin of its readout position, which gives no "
                "probabilities (its basin head's minima are not the landscape's, or it has none)"
            )
        return found.probabilities

    def transform(self, x: Any) -> Any:
        """The latent path: the position the model reads for every step, [T, d] / [N, T, d]."""
        model = self._model()
        return self._each(x, lambda x3: readout_path(model, x3).double().numpy())

    def score(self, x: Any) -> float:
        """The ELBO per observation step (nats) of `x`, averaged over posterior samples drawn
        from this model's seed (`nld.fitting.restarts.objective_per_step`)."""
        from nld.fitting.restarts import SCORE_STEPS, objective_per_step

        model = self._model()
        recs = self._recordings(x)
        groups = [np.stack(recs.arrays)] if recs.kind == "batch" else [a[None] for a in recs.arrays]
        total = 0.0
        for g in groups:  # in parts that objective_per_step scores whole (SCORE_STEPS)
            for part in np.array_split(g, -(-g.shape[0] * g.shape[1] // SCORE_STEPS)):
                total += objective_per_step(model, Dataset(part), seed=self.seed) * part.size
        return float(total / (recs.steps * recs.dim))

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the fitted model as a run directory (config.json, model.safetensors and its
        analysis.safetensors; never pickle), each file atomically. Returns the directory."""
        model = self._model()
        d = Path(path)
        d.mkdir(parents=True, exist_ok=True)
        checkpoint.save(d, model, self.fitted_, meta=self.meta_)
        if self.landscape_ is not None:
            sha = checkpoint.weights_sha256(d)
            analysis_file.save(d / analysis_file.FILE, self.landscape_, sha)
        return d

    # -- helpers --------------------------------------------------------------------------
    def _model(self) -> NLDModel:
        if not hasattr(self, "model_"):
            raise NotFittedError("this NLD is not fitted yet: call fit(x) first, or nld.load(path)")
        return self.model_

    def _ready(self) -> tuple[NLDModel, Analysis]:
        model = self._model()
        if self.landscape_ is None:
            raise NLDError("this model has no energy (an NSDE baseline): it has no states")
        return model, self.landscape_

    def _recordings(self, x: Any) -> Recordings:
        # A table's channels are found by the names the model was trained on, in its order.
        recs = as_recordings(x, table=TableOptions(columns=self.feature_names_in_))
        if recs.dim != self.n_features_in_:
            names = f" ({', '.join(self.feature_names_in_)})" if self.feature_names_in_ else ""
            raise DataError(
                f"X has {recs.dim} channels; the model was trained on {self.n_features_in_}{names}"
            )
        if recs.columns and self.feature_names_in_ and recs.columns != self.feature_names_in_:
            raise DataError(
                f"X has the columns {recs.columns}; the model was trained on "
                f"{self.feature_names_in_} (same names, same order)"
            )
        return recs

    def _each(self, x: Any, fn: Callable[[np.ndarray], np.ndarray]) -> Any:
        """fn, which maps a batch [N, T, D] to per-step outputs [N, T, ...], on x's
        recordings (a batch at once, other recordings one by one), in x's shape."""
        self._model()
        recs = self._recordings(x)
        if recs.kind == "batch":
            return recs.restore(list(fn(np.stack(recs.arrays))))
        return recs.restore([fn(a[None])[0] for a in recs.arrays])


def load(path: str | os.PathLike[str], *, device: str | None = None) -> NLD:
    """A fitted `NLD` from a run directory (`NLD.save`, `nld train`, `nld import-dynvae`).
    Its stored analysis is used when it belongs to these weights; else it is computed. The
    model computes on `device` (auto, cpu (None), cuda, cuda:N or mps); its landscape
    analysis is on the CPU."""
    d = Path(path)
    on = resolve_device(device)  # one torch cannot use: an error before any reading
    with _own_rng():  # a new model's initial weights are drawn before the stored ones load
        model, fitted, sha = checkpoint.load_with_sha256(d)
        _, meta = checkpoint.read_config(d)
        landscape = None
        if model.cfg.has_energy:
            stored = d / analysis_file.FILE
            try:
                landscape = analysis_file.load(stored, model, sha) if stored.is_file() else None
            except (analysis_file.StaleAnalysis, CheckpointError):  # computed again
                landscape = None
            if landscape is None:
                landscape = analyze(model, None)
    return from_parts(model.to(on), fitted, meta, landscape)


def analysed(model: NLDModel, x: np.ndarray, seed: int = 0) -> Analysis | None:
    """The landscape analysis of a trained model around the latent path of its training data
    x [N, T, D], whose minima the basin head and the state chain were fitted to (an analysis
    from the prior alone may find others, and then labels fall back to the readout's basins);
    None for a model without an energy."""
    if not model.cfg.has_energy:
        return None
    return analyze(model, readout_path(model, x), seed=seed)


def from_parts(
    model: NLDModel, fitted: Fitted, meta: dict[str, Any], landscape: Analysis | None
) -> NLD:
    """An `NLD` of a trained network, what was fitted beside it, its checkpoint's `meta` and
    its landscape analysis (as `load` and the service have them)."""
    try:
        cfg = TrainConfig.model_validate(meta["train"])
    except (KeyError, ValueError):  # an imported checkpoint: no training config
        cfg = TrainConfig()
    est = NLD.__new__(NLD)
    est._params = {"config": None, "preset": cfg.name, "seed": cfg.train.seed}
    est.preset, est.seed, est.progress, est.run_dir = cfg.name, cfg.train.seed, True, None
    est.config = cfg
    est._set_fitted(model, fitted, meta, landscape)
    return est


def presets() -> list[str]:
    """The names of the shipped training presets."""
    from nld.fitting.config import presets as names

    return names()


def _table_options(given: dict[str, Any]) -> TableOptions | None:
    try:
        return TableOptions(**given) if given else None
    except TypeError:
        known = ", ".join(f.name for f in fields(TableOptions))
        raise NLDError(f"fit takes the table options {known}; got {sorted(given)}") from None


def _section(name: str) -> str:
    """`iterations` -> "train.iterations", `latent_dim` -> "model.latent_dim"."""
    train = name in TrainSettings.model_fields or name in LEGACY  # older stage settings
    model = name in ModelConfig.model_fields
    if train and model:
        raise ConfigError(
            f"{name!r} is both a model and a training setting: pass "
            f"settings={{'model.{name}': ...}} or settings={{'{_new_name(name)}': ...}}"
        )
    if not (train or model) or name == "obs_dim":
        raise ConfigError(f"{name!r} is not a model or training setting")
    return f"{'train' if train else 'model'}.{name}"


def _new_name(name: str) -> str:
    """A training setting's full name today: "train.x", or "stages.STAGE.KEY"."""
    return f"stages.{'.'.join(LEGACY[name])}" if name in LEGACY else f"train.{name}"


@contextmanager
def _own_rng() -> Iterator[None]:
    """Leave torch's global random state and thread count as they were."""
    threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        try:
            yield
        finally:
            torch.set_num_threads(threads)


@contextmanager
def _directory(path: Path | None) -> Iterator[Path]:
    if path is not None:
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="nld-fit-") as tmp:
        yield Path(tmp) / "run"
