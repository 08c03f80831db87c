"""Errors that the user can act on.

NLDError                 base: the command line prints its message, without a traceback
├── DataError            a data set file is missing, malformed or inconsistent
├── ConfigError          a config, preset or spec is invalid
├── CheckpointError      a checkpoint is missing, corrupt, truncated or mismatched
└── NonFiniteError       a model produced non-finite values (inputs off its scale, a diverged SDE)
"""


class NLDError(Exception):
    """Base of every error whose message tells the user what to fix."""


class DataError(NLDError, ValueError):
    pass


class ConfigError(NLDError, ValueError):
    pass


class CheckpointError(NLDError):
    pass


class NonFiniteError(NLDError, ValueError):
    pass
