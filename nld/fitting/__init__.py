"""Fitting a model: configs and presets, the training loop, and the stages after it.

`train` runs one training (`trainer`), `fit` one or the best of several restarts
(`restarts`); the stages that follow the loop are listed in order in `pipeline.STAGES`.
Most users call them through `nld.NLD.fit` or `nld train`.
"""
