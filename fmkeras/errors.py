"""Errors a user can fix (bad config, missing data or weights), kept apart from bugs.

The CLI prints a `UserError` as one line and exits non-zero; anything else is a bug and
keeps its traceback.
"""


class UserError(Exception):
    """Base class for problems in the user's input, config or files."""


class ConfigError(UserError, ValueError):
    """A config field has a bad value; the message names the field, the value and what is allowed."""


class DataError(UserError, ValueError):
    """A data source is missing, empty or malformed; the message names the path or dataset."""


class WeightsError(UserError, ValueError):
    """Pretrained weights cannot be found or do not fit; the message says what to place where."""
