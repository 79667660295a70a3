"""Errors that the CLI reports as one clear line instead of a traceback."""


class ScaeHashError(Exception):
    """Base of every error caused by bad input (data, config, arguments, files)."""


class DataError(ScaeHashError):
    """A data set is missing, corrupt or in an unknown layout."""


class ConfigError(ScaeHashError):
    """An experiment config or a hyper-parameter is invalid."""


class CodesFileError(ScaeHashError):
    """A codes file does not have the layout of docs/protocol.md."""
