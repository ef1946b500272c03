"""Atomic output: every file is written under a temporary name, then renamed into place.

Files are staged in the output folder itself (so the final :func:`os.replace` is
atomic on the same file system) and renamed only after all of them are written:
a run that fails leaves neither half-written files nor a partial dataset.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow.parquet as pq
import yaml

from experiment.errors import ConfigError

__all__ = ["Staging", "dump_yaml", "write_json", "write_parquet", "write_text"]


class Staging:
    """Stage files in ``out`` and publish them together.

    Examples:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp, Staging(Path(tmp)) as stage:
        ...     _ = stage.path("a.txt").write_text("hi")
        ...     [p.name for p in stage.commit()]
        ['a.txt']
    """

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        self._staged: dict[Path, Path] = {}

    def __enter__(self) -> Staging:
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"{self.out}: cannot create the output folder ({exc.strerror})"
            ) from None
        return self

    def path(self, name: str) -> Path:
        """The temporary path to write the file ``name`` to."""
        final = self.out / name
        temp = self.out / f".{name}.{os.getpid()}.tmp"
        self._staged[final] = temp
        return temp

    def commit(self) -> tuple[Path, ...]:
        """Rename every staged file to its final name; returns the final paths."""
        for final, temp in self._staged.items():
            os.replace(temp, final)
        published = tuple(self._staged)
        self._staged.clear()
        return published

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for temp in self._staged.values():
            temp.unlink(missing_ok=True)
        self._staged.clear()


def write_parquet(table: Any, path: Path) -> None:
    """Write an Arrow table to Parquet (deterministic bytes for the same table)."""
    pq.write_table(table, path)


def write_json(data: Any, path: Path) -> None:
    """Write JSON, indented, with a trailing newline."""
    path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def write_text(text: str, path: Path) -> None:
    """Write UTF-8 text."""
    path.write_text(text, encoding="utf-8")


def dump_yaml(data: Any) -> str:
    """YAML text for a mapping, keys in their given order."""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
