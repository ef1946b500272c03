"""Engine connections from a URL: DuckDB (file or embedded), Spark, Spark Connect, PostgreSQL.

An engine is named by a URL, on the command line (``--engine``) or in the
experiment file (``engine:``): ``duckdb:///path.db``, ``pyspark`` (the active
SparkSession, or a new local one), ``sc://host:15002`` (Spark Connect) or
``postgres://user@host:port/db`` (query parameters such as ``?sslmode=require``
go to the driver). Only the schemes listed here are accepted, so a
URL never reaches a backend we have not checked. A password in a URL is never
shown: every message quotes the URL through :func:`redact`.

DuckDB's own settings (memory limit, spill folder, progress bar) apply to DuckDB
connections only (:func:`tune_duckdb`); they are SQL ``SET`` statements that
other engines do not have.
"""

from __future__ import annotations

import re
import tempfile
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING

from experiment.errors import ConfigError

if TYPE_CHECKING:
    import ibis

__all__ = [
    "SCHEMES",
    "check_memory_limit",
    "connect",
    "default_memory_limit",
    "engine_kind",
    "redact",
    "release",
    "tune_duckdb",
]

SCHEMES = ("duckdb", "pyspark", "sc", "postgres", "postgresql")
"""The URL schemes ``--engine`` accepts."""

_FORMS = "duckdb:///path.db, pyspark, sc://host:15002 or postgres://user@host:port/db"
_SIZE = re.compile(r"\d+(\.\d+)?\s*([KMGT]i?B)", re.IGNORECASE)
_MAX_URL = 2000
_EXTRAS = {"duckdb": "seglift", "postgres": "seglift[postgres]", "pyspark": "seglift[spark]"}
_EXTRAS["sc"] = "pyspark[connect]"  # Spark Connect's client needs grpc on top of pyspark
# A new local session: timestamps in UTC (as the data contract reads them), no console bars.
_LOCAL_SPARK = {"spark.sql.session.timeZone": "UTC", "spark.ui.showConsoleProgress": "false"}


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***`` (safe to print), on one line."""
    text = " ".join(str(url).split())[:_MAX_URL]
    try:
        parts = urllib.parse.urlsplit(text)
    except ValueError:
        return re.sub(r"//([^/@:]*):[^/@]*@", r"//\1:***@", text)
    if parts.password is None:
        return re.sub(r"//([^/@:]*):[^/@]*@", r"//\1:***@", text)
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if _port(parts) is not None else ""
    netloc = f"{user}:***@{host}{port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _port(parts: urllib.parse.SplitResult) -> int | None:
    try:
        return parts.port
    except ValueError:
        return None


def engine_kind(url: str) -> str:
    """The engine a URL names: ``duckdb``, ``pyspark``, ``sc`` or ``postgres``.

    Raises:
        ConfigError: an empty URL or a scheme that is not supported.
    """
    text = str(url).strip()
    if not text:
        raise ConfigError(f"--engine: empty; give one of {_FORMS}")
    if len(text) > _MAX_URL or any(ord(c) < 32 for c in text):
        raise ConfigError(f"--engine {redact(text)[:80]!r}: not a URL; give one of {_FORMS}")
    scheme = text.split("://", 1)[0].lower() if "://" in text else text.lower()
    if scheme not in SCHEMES:
        raise ConfigError(
            f"--engine {redact(text)!r}: unknown engine {scheme[:40]!r}; give one of {_FORMS}"
        )
    return "postgres" if scheme == "postgresql" else scheme


def connect(url: str, *, read_only: bool = True) -> ibis.BaseBackend:
    """Connect to the engine ``url`` names (see the module docstring for the forms).

    Raises:
        ConfigError: an unsupported or malformed URL, a backend that is not
            installed, or a connection the engine refused (one line, password redacted).
    """
    kind = engine_kind(url)
    shown = redact(url)
    try:
        if kind == "duckdb":
            return _duckdb(url, shown, read_only=read_only)
        if kind == "postgres":
            return _postgres(url, shown)
        return _spark(url, shown, kind)
    except ConfigError:
        raise
    except ImportError as exc:
        raise ConfigError(
            f"--engine {shown!r}: the {kind} backend is not installed ({exc.name or exc}); "
            f"install {_EXTRAS[kind]!r}"
        ) from None
    except Exception as exc:  # each driver has its own error types
        raise ConfigError(f"--engine {shown!r}: cannot connect ({_first_line(exc, url)})") from None


def release(con: ibis.BaseBackend) -> None:
    """Close a connection we opened; a Spark session stays up (it is shared, or the user's)."""
    if con.name != "pyspark":  # Ibis's disconnect() would stop the SparkSession
        con.disconnect()


def _first_line(exc: Exception, url: str) -> str:
    """The first line of a driver's error, without the URL's password, bounded."""
    text = (str(exc).splitlines() or [type(exc).__name__])[0]
    try:
        password = urllib.parse.urlsplit(url).password if "://" in url else None
    except ValueError:
        password = None
    for secret in {password, urllib.parse.unquote(password or "")} - {None, ""}:
        text = text.replace(str(secret), "***")
    return redact(text)[:200]


def _duckdb(url: str, shown: str, *, read_only: bool) -> ibis.BaseBackend:
    import ibis

    # duckdb:///abs/path.db is /abs/path.db; duckdb://rel.db is rel.db (as Ibis reads them)
    path = urllib.parse.unquote(url.strip().split("://", 1)[1]) if "://" in url else ""
    if path in ("", "/", ":memory:"):
        raise ConfigError(
            f"--engine {shown!r}: name the database file, e.g. duckdb:///data/shop.db "
            "(an in-memory DuckDB holds no tables; give a dataset folder instead)"
        )
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"--engine {shown!r}: DuckDB database file {file} not found")
    from experiment.engine.compilers import lazy_compilers

    lazy_compilers()
    return ibis.duckdb.connect(str(file), read_only=read_only)


def _postgres(url: str, shown: str) -> ibis.BaseBackend:
    import ibis

    parts = urllib.parse.urlsplit(url)
    database = parts.path.lstrip("/")
    if not parts.hostname or not database or "/" in database:
        raise ConfigError(f"--engine {shown!r}: expected postgres://user@host:port/database")
    port = _port(parts)
    if port is None and ":" in parts.netloc.rsplit("@", 1)[-1]:
        raise ConfigError(f"--engine {shown!r}: the port must be a number")
    return ibis.postgres.connect(
        host=parts.hostname,
        port=port or 5432,
        user=urllib.parse.unquote(parts.username) if parts.username else None,
        password=urllib.parse.unquote(parts.password) if parts.password else None,
        database=urllib.parse.unquote(database),
        **dict(urllib.parse.parse_qsl(parts.query)),  # e.g. ?sslmode=require, for psycopg
    )


def _spark(url: str, shown: str, kind: str) -> ibis.BaseBackend:
    import ibis
    from pyspark.sql import SparkSession

    if kind == "pyspark":
        if url.strip().lower() != "pyspark":
            raise ConfigError(f"--engine {shown!r}: write just 'pyspark' (the active session)")
        session = SparkSession.getActiveSession()
        if session is None:
            builder = SparkSession.builder.master("local[*]").appName("seglift")
            for key, value in _LOCAL_SPARK.items():
                builder = builder.config(key, value)
            session = builder.getOrCreate()
    else:
        session = SparkSession.builder.remote(url.strip()).getOrCreate()
    return ibis.pyspark.connect(session)


def check_memory_limit(memory_limit: str | None) -> str | None:
    """``memory_limit`` stripped, when it is a size such as ``1.5GB``; else a ConfigError."""
    if memory_limit is not None and not isinstance(memory_limit, str):  # 4_000_000_000?
        raise ConfigError(
            f"memory limit {memory_limit!r:.40}: expected a size as text, such as '1.5GB', "
            "'800MiB' or '4GiB'"
        )
    limit = None if memory_limit is None else memory_limit.strip()
    size = None if limit is None else _SIZE.fullmatch(limit)
    if limit is not None and (size is None or not _LEAST <= _bytes(size) <= _MOST):
        raise ConfigError(
            f"memory limit {memory_limit!r:.60}: expected a size from 16MiB to 1024TiB, such as "
            "1.5GB, 800MiB or 4GiB"
        )
    return limit


_LEAST, _MOST = 16 * 2**20, 2**50  # below it DuckDB cannot run a query; above it no machine


def _bytes(size: re.Match[str]) -> float:
    """The bytes of a matched size: KB, MB, GB, TB are powers of 1000, KiB... of 1024."""
    unit = size.group(2).upper()
    base = 1024 if "I" in unit else 1000
    scale: int = base ** ("KMGT".index(unit[0]) + 1)
    return float(size.group(0)[: size.start(2)].strip()) * scale


_DEFAULT_SHARE = 0.4  # of physical memory
_DEFAULT_CAP = 1536  # MiB


def default_memory_limit() -> str | None:
    """DuckDB's memory bound when the user gives none: 40% of physical memory, at most 1.5 GiB.

    DuckDB's own default (80% of RAM) lets a 10M-user analysis grow to 3.5 GB
    although its hash tables spill cheaply; under 1.5 GiB the same run peaks below
    2 GB at a few percent of its time, and smaller runs never reach the bound (README
    "Benchmarks"). A machine with less than 3.75 GiB gets 40% of it, leaving room for
    Python and the other programs. ``None`` where the memory size is unknown (DuckDB's
    default then). ``--memory-limit`` overrides it either way.
    """
    import os

    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not a POSIX system: DuckDB's default
        return None
    if total <= 0:
        return None
    return f"{min(_DEFAULT_CAP, int(_DEFAULT_SHARE * total / 2**20))}MiB"


def tune_duckdb(con: ibis.BaseBackend, memory_limit: str | None) -> None:
    """DuckDB's settings for our queries; a no-op on another engine.

    ``memory_limit`` (e.g. ``"1.5GB"``) caps DuckDB's memory; beyond it DuckDB
    spills to the system temp folder (kept out of the user's working directory).
    Without one, the bound is :func:`default_memory_limit`, chosen from the machine.

    Raises:
        ConfigError: ``memory_limit`` is not a size, or is given for another engine.
    """
    limit = check_memory_limit(memory_limit)
    if con.name != "duckdb":
        if limit is not None:
            raise ConfigError(
                f"--memory-limit {limit}: applies to DuckDB only, not to the {con.name} "
                "engine; size the engine itself (e.g. Spark's executor memory) and leave it out"
            )
        return
    limit = default_memory_limit() if limit is None else limit
    if limit is not None:
        con.raw_sql("SET memory_limit = ?", parameters=[limit]).fetchall()
    con.raw_sql("SET enable_progress_bar = false")  # our bars
    spill = Path(tempfile.gettempdir()) / "seglift-duckdb"
    con.raw_sql("SET temp_directory = ?", parameters=[str(spill)]).fetchall()
