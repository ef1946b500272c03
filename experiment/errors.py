"""User-facing errors: the one tree the CLI catches and turns into exit code 2.

::

    SegliftError            anything the user can fix; the message is one line
    ├── ConfigError         an experiment/segments/scenario file: missing field, bad value
    ├── RuleError           a segment rule that does not parse or names an unknown column
    └── DataError           a dataset: missing table or column, wrong type

A message says where (file, field, segment or rule), what is wrong and what would
be valid, e.g. ``segments.yaml: segment 'at_risk': unknown column 'logins_7';
did you mean 'logins_7d'?``.
"""

from __future__ import annotations

__all__ = ["ConfigError", "DataError", "RuleError", "SegliftError"]


class SegliftError(Exception):
    """Base of every error caused by user input rather than by a bug."""


class ConfigError(SegliftError):
    """A configuration file is missing, malformed or has an invalid value."""


class RuleError(SegliftError):
    """A segment rule is not valid in the rule language."""


class DataError(SegliftError):
    """A dataset does not match the data contract."""
