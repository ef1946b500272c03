"""Output files: checked before any work, written beside their targets, replaced together.

A run's outputs (results.json, report.html, sums.parquet; a proposals file and
its evidence) are one unit. :func:`check_output_file` and
:func:`check_output_folder` refuse, before anything is computed, a target that
cannot be written, that is a folder (or a file where a folder is expected), or
that is one of the run's own inputs. :func:`write_together` then writes every
file to a temporary file beside its target and renames them all at the end,
with SIGINT deferred during the renames and the previous files restored if one
rename fails: readers see the old set or the new one, never a mix.

Temporary files are registered here while they exist, so an interrupt handler
that ends the process at once (the CLI's) can remove them first
(:func:`remove_temporaries`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from experiment.errors import ConfigError

__all__ = [
    "HTML_SUFFIXES",
    "Writer",
    "check_companions",
    "check_output_file",
    "check_output_folder",
    "remove_temporaries",
    "text_writer",
    "watch_folder",
    "write_text_atomic",
    "write_together",
]

HTML_SUFFIXES = (".html", ".htm")
"""The names an HTML report may replace (:func:`check_output_file`'s ``suffixes``)."""

_TEMPORARIES: set[Path] = set()
_FOLDERS: set[Path] = set()

Writer = Callable[[Path], object]
"""Writes one output's content to the temporary path it is given."""


def _default_mode() -> int:
    """The mode a plain ``open(path, "w")`` would give: 0o666 less the umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _collides(path: Path, inputs: Iterable[Path]) -> Path | None:
    """The input ``path`` is (or lies inside, for a folder input), if any."""
    resolved = path.resolve()
    for given in inputs:
        source = Path(given).resolve()
        if resolved == source or (source.is_dir() and _inside(resolved, source)):
            return Path(given)
        with contextlib.suppress(OSError):
            if path.exists() and os.path.samefile(path, given):
                return Path(given)
    return None


def _writable_folder(path: Path, option: str) -> None:
    """Raise unless ``path``'s nearest existing ancestor is a folder a file can be made in."""
    folder = path.absolute()
    while not folder.exists() and not folder.is_symlink():
        folder = folder.parent
    if not folder.is_dir():
        raise ConfigError(f"{option} {path}: {folder} is a file, not a folder; give a folder path")
    probe = folder / f".seglift-probe.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except OSError as exc:
        raise ConfigError(
            f"{option} {path}: cannot write in {folder} ({exc.strerror}); "
            "give a folder you can write to"
        ) from None
    os.close(fd)
    probe.unlink(missing_ok=True)


def check_output_file(
    path: Path, *, option: str, inputs: Iterable[Path] = (), suffixes: tuple[str, ...] = ()
) -> Path:
    """Raise :class:`ConfigError` unless ``path`` can be written as a new or replaced file.

    Args:
        path: The file the run will write.
        option: The option or argument naming it, for the message (``--out``).
        inputs: The run's input files and folders: the output may be none of them
            and lie inside none of the folders.
        suffixes: The file kinds the run writes (``(".html", ".htm")``): an existing
            file of another kind (a dataset's Parquet, an experiment file) is not
            replaced. Empty: any.

    Returns:
        ``path``.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{option} {path}: is a folder; give a file path to write")
    if path.exists() and not path.is_file():
        raise ConfigError(f"{option} {path}: is not a regular file; give a file path to write")
    source = _collides(path, inputs)
    if source is not None:
        raise ConfigError(
            f"{option} {path}: is an input of this run ({source}); write the output elsewhere"
        )
    if suffixes and path.exists() and path.suffix.lower() not in suffixes:
        raise ConfigError(
            f"{option} {path}: an existing file that is not {' or '.join(suffixes)}; this run "
            f"would replace it with a {suffixes[0]} file: give a new path or a {suffixes[0]} one"
        )
    _writable_folder(path.parent, option)
    return path


def check_companions(out: Path, companions: Iterable[Path], *, option: str) -> None:
    """Refuse a new ``out`` whose companion files (written beside it) exist already.

    A run writing ``p.yaml`` also writes ``p.json``. While ``p.yaml`` is new, an
    existing ``p.json`` is no earlier output of it but some other file, such as an
    analysis's results.json for ``--out results.yaml``: it is not replaced.

    Raises:
        ConfigError: one line naming the option, ``out`` and the companion.
    """
    if Path(out).exists() or Path(out).is_symlink():
        return
    for companion in companions:
        if Path(companion).exists():
            raise ConfigError(
                f"{option} {out}: would also write {companion}, which exists and is not from "
                f"an earlier {Path(out).name}; give another name"
            )


def check_output_folder(path: Path, *, option: str, inputs: Iterable[Path] = ()) -> Path:
    """Raise :class:`ConfigError` unless ``path`` is (or can be made) a folder to write in.

    Args:
        path: The folder the run writes its files into.
        option: The option naming it, for the message.
        inputs: The run's input files and folders (the folder may lie inside none
            of the input folders, e.g. a table's folder of Parquet parts).

    Returns:
        ``path``.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option} {path}: is a file, not a folder; give a folder path")
    source = _collides(path, [p for p in inputs if Path(p).is_dir() or not Path(p).exists()])
    if source is not None:
        raise ConfigError(
            f"{option} {path}: lies inside an input of this run ({source}); "
            "write the output elsewhere"
        )
    _writable_folder(path, option)
    return path


def _test_pause(phase: str) -> None:
    """Sleep at ``phase`` when ``SEGLIFT_TEST_PAUSE=phase:seconds`` (interrupt tests only).

    Makes the write phase (temp files written, none renamed) and the publish
    phase (some renamed) long enough for a test to send SIGINT inside them.
    """
    wanted, _, seconds = os.environ.get("SEGLIFT_TEST_PAUSE", "").partition(":")
    if wanted == phase:
        time.sleep(float(seconds))


def _temporary(target: Path, kind: str = "tmp") -> Path:
    """A new, registered, empty file beside ``target`` (registered before it exists)."""
    tmp = target.parent / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.{kind}"
    _TEMPORARIES.add(tmp)
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.close(fd)
    return tmp


def _discard(path: Path) -> None:
    path.unlink(missing_ok=True)
    _TEMPORARIES.discard(path)


def remove_temporaries() -> None:
    """Remove every temporary file of this process (for an interrupt that ends it at once).

    Also sweeps the watched folders (:func:`watch_folder`) for ``.*.<pid>.*tmp``
    files other writers of this process stage there.
    """
    for tmp in list(_TEMPORARIES):
        with contextlib.suppress(OSError):
            _discard(tmp)
    for folder in list(_FOLDERS):
        with contextlib.suppress(OSError):
            for tmp in folder.glob(f".*.{os.getpid()}.*tmp"):
                tmp.unlink(missing_ok=True)


def watch_folder(folder: Path) -> None:
    """Have :func:`remove_temporaries` also sweep ``folder`` for this process's temp files."""
    _FOLDERS.add(Path(folder))


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold SIGINT until the block ends, then deliver it (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            signal.raise_signal(signal.SIGINT)


def _backup(target: Path) -> Path | None:
    """A hard link (else a copy) of the existing ``target``, to restore on failure."""
    if not target.exists():
        return None
    backup = _temporary(target, "bak")
    backup.unlink()
    try:
        os.link(target, backup)
    except OSError:
        shutil.copy2(target, backup)
    return backup


def _publish(staged: Sequence[tuple[Path, Path]]) -> None:
    """Rename every temp file onto its target; on any failure put the old targets back."""
    done: list[tuple[Path, Path | None]] = []
    with _sigint_deferred():
        try:
            for target, tmp in staged:
                backup = _backup(target)
                done.append((target, backup))
                os.replace(tmp, target)
                _TEMPORARIES.discard(tmp)
                _test_pause("publish")
        except BaseException:
            for target, backup in reversed(done):
                with contextlib.suppress(OSError):
                    if backup is None:
                        target.unlink(missing_ok=True)
                    else:
                        os.replace(backup, target)
            raise
        finally:
            for _, backup in done:
                if backup is not None:
                    _discard(backup)


def write_together(outputs: Sequence[tuple[Path, Writer]]) -> None:
    """Write every ``(target, writer)`` to a temp file beside it, then replace them together.

    A writer that fails (or an interrupt before the renames) leaves every target
    as it was and no temporary file behind. Parent folders are created.
    """
    staged: list[tuple[Path, Path]] = []
    mode = _default_mode()
    try:
        for given, write in outputs:
            target = Path(given)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = _temporary(target)
            staged.append((target, tmp))
            write(tmp)
            # a new file should be as readable as any other file the user writes
            tmp.chmod(mode)
        _test_pause("write")
        _publish(staged)
    finally:
        for _, tmp in staged:
            _discard(tmp)


def text_writer(text: str) -> Writer:
    """A :data:`Writer` of UTF-8 ``text``."""
    return lambda tmp: tmp.write_text(text, encoding="utf-8")


def write_text_atomic(target: Path, text: str) -> None:
    """Write UTF-8 text to ``target`` atomically."""
    write_together([(Path(target), text_writer(text))])
