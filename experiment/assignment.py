"""Deterministic, ramp-safe hash assignment of users to arms, per user or in the engine.

The hash (a documented contract; do not change it for a running experiment)::

    digest = md5(f"{salt}:{user_id}").hexdigest()      # 32 hex characters
    bucket  = int(digest[0:8], 16)   / 2**32            # arm: control or treatment
    entry   = int(digest[8:16], 16)  / 2**32            # traffic: enters the experiment?
    pick    = int(digest[16:24], 16) / 2**32            # which treatment, when several
    holdout = int(md5(f"{holdout_salt}:{user_id}")[0:8], 16) / 2**32

The slices of one MD5 digest are independent uniform numbers (tested with a
chi-square test of independence), so one digest per user serves arm, traffic and
treatment choice; the holdout uses its own salt so that experiments sharing
``holdout_salt`` share the same held-out users. MD5 exists in Python's
``hashlib`` and in DuckDB, Spark, BigQuery and Snowflake, and the hex digits are
turned into an integer with per-character arithmetic that every engine has, so
:func:`assign` (one user, at request time) and :func:`assignment_expr` (millions,
in the engine) agree exactly: thresholds are compared as integers
(``int(digest[0:8], 16) < ceil(share * 2**32)``), never as rounded floats.

A user is, in this order:

1. ``"holdout"`` when ``holdout < holdout share``: fixed, whatever the weights;
2. out of the experiment (``None``) when ``entry >= traffic`` of the user's allocation;
3. control when ``bucket < control share``, else a treatment: the only one, or the
   one whose range of cumulative relative treatment weights holds ``pick``.

The allocation (weights and traffic) is that of the highest-priority segment with
an allocation the user belongs to, else the experiment's. Ramp safety follows from
the layout: raising ``traffic`` only admits users (``entry`` is fixed), and lowering
the control share only moves ``[new, old)`` from control into treatment. Changing
the ratio *between* treatment arms reshuffles treated users: use a new salt.

:func:`bucket` and :func:`assign_many` are the plain layout (arms own consecutive
ranges of ``bucket`` in file order), which the simulator uses; for two arms with
control listed first and no holdout or traffic limit it equals the above.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from experiment.errors import ConfigError

if TYPE_CHECKING:
    import ibis.expr.types as ir
    import numpy as np
    from numpy.typing import NDArray

    from experiment.config import ExperimentConfig

__all__ = [
    "HOLDOUT",
    "Allocation",
    "AssignmentSpec",
    "assign",
    "assign_many",
    "assignment_expr",
    "bucket",
    "hex_int",
]

HOLDOUT = "holdout"

_SCALE = float(2**32)
_HEX = "0123456789abcdef"


def bucket(user_id: str, *, salt: str) -> float:
    """The user's position in [0, 1) for this salt.

    Examples:
        >>> round(bucket("user-1", salt="winback"), 6)
        0.707668
    """
    digest = hashlib.md5(f"{salt}:{user_id}".encode()).hexdigest()
    return int(digest[:8], 16) / _SCALE


def _edges(arms: Mapping[str, float]) -> NDArray[np.float64]:
    import numpy as np  # lazily: `import experiment` (and Ctrl-C set-up of `exp`) stays fast

    weights = np.asarray(list(arms.values()), dtype=np.float64)
    if weights.size == 0 or np.any(weights <= 0):
        raise ValueError("arms must map at least one arm name to a weight > 0.")
    return np.cumsum(weights / weights.sum())[:-1]


def assign_many(
    user_ids: Iterable[str], *, salt: str, arms: Mapping[str, float]
) -> NDArray[np.str_]:
    """Arms of many users in the plain layout (arms own consecutive ``bucket`` ranges).

    Examples:
        >>> assign_many(["user-1"], salt="winback", arms={"control": 1, "treatment": 1}).tolist()
        ['treatment']
    """
    import numpy as np

    buckets = np.fromiter((bucket(u, salt=salt) for u in user_ids), dtype=np.float64)
    index = np.searchsorted(_edges(arms), buckets, side="right")
    return np.asarray(list(arms), dtype=np.str_)[index]


def _threshold(share: float) -> int:
    """The integer cut: ``x / 2**32 < share`` exactly when ``x < cut``, for ``0 <= x < 2**32``."""
    return min(math.ceil(share * _SCALE), 2**32)


@dataclass(frozen=True)
class Allocation:
    """One split as integer thresholds on the 32-bit hash slices.

    Attributes:
        control: ``bucket`` below this → control.
        traffic: ``entry`` below this → in the experiment.
        treatments: Treatment arms with the upper ``pick`` threshold of each
            (cumulative relative weights; the last is ``2**32``).
    """

    control: int
    traffic: int
    treatments: tuple[tuple[str, int], ...]

    @classmethod
    def from_weights(cls, arms: Mapping[str, float], *, control: str, traffic: float) -> Allocation:
        """Thresholds from arm weights (any positive scale) and a traffic share.

        Raises:
            ValueError: ``control`` is not an arm, or the weights are not >= 0 with a positive sum.
        """
        import numpy as np

        weights = {a: float(w) for a, w in arms.items()}
        total = sum(weights.values())
        if control not in weights or total <= 0 or min(weights.values()) < 0:
            raise ValueError(f"Arms {weights} need a {control!r} arm and weights >= 0, sum > 0.")
        treated = [(a, w) for a, w in weights.items() if a != control]
        treated_total = sum(w for _, w in treated)
        cum = np.cumsum([w for _, w in treated]) / treated_total if treated_total > 0 else None
        uppers = [
            2**32 if cum is None or i == len(treated) - 1 else _threshold(float(cum[i]))
            for i in range(len(treated))
        ]
        return cls(
            control=_threshold(weights[control] / total),
            traffic=_threshold(traffic),
            treatments=tuple((a, u) for (a, _), u in zip(treated, uppers, strict=True)),
        )


@dataclass(frozen=True)
class AssignmentSpec:
    """Everything that decides a user's arm, resolved to integer thresholds.

    Build it with :meth:`from_config`; ``segments`` are in priority order.
    """

    salt: str
    control: str
    default: Allocation
    segments: tuple[tuple[str, Allocation], ...] = ()
    holdout: int = 0
    holdout_salt: str = HOLDOUT

    @classmethod
    def from_config(
        cls, config: ExperimentConfig, *, priority: Sequence[str] | None = None
    ) -> AssignmentSpec:
        """The spec of an experiment file.

        Args:
            config: The parsed experiment.
            priority: Segment names in priority order (the segments file's); defaults
                to the order of ``allocation`` in the experiment file.

        Raises:
            ValueError: an allocation names a segment missing from ``priority``.
        """
        order = list(priority) if priority is not None else list(config.allocation)
        unknown = sorted(set(config.allocation) - set(order))
        if unknown:
            raise ValueError(f"Allocation segments {unknown} are not among segments {order}.")

        def alloc(arms: Mapping[str, float] | None, traffic: float | None) -> Allocation:
            return Allocation.from_weights(
                arms if arms is not None else config.arms,
                control=config.control,
                traffic=traffic if traffic is not None else config.traffic,
            )

        return cls(
            salt=config.assignment_salt,
            control=config.control,
            default=alloc(None, None),
            segments=tuple(
                (s, alloc(config.allocation[s].arms, config.allocation[s].traffic))
                for s in order
                if s in config.allocation
            ),
            holdout=_threshold(config.holdout),
            holdout_salt=config.holdout_salt,
        )


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def assign(user_id: str | int, spec: AssignmentSpec, *, segments: Iterable[str] = ()) -> str | None:
    """The arm of one user, at request time; equal to :func:`assignment_expr` in the engine.

    Args:
        user_id: The user.
        spec: The experiment's :class:`AssignmentSpec`.
        segments: Names of the segments the user belongs to (any order).

    Returns:
        The arm name, ``"holdout"`` for held-out users, or ``None`` for users outside
        the experiment's traffic share.

    Examples:
        >>> spec = AssignmentSpec("winback", "control", Allocation.from_weights(
        ...     {"control": 1, "treatment": 1}, control="control", traffic=1.0))
        >>> assign("user-1", spec)
        'treatment'

    Raises:
        ConfigError: ``user_id`` is not text or an integer (``None`` would hash as
            ``"None"``: every missing id one arm), ``spec`` is not an
            :class:`AssignmentSpec`, or ``segments`` is one string (read letter by letter).
    """
    if isinstance(user_id, bool) or not isinstance(user_id, str | int):
        raise ConfigError(f"user_id: expected a str or int, not {type(user_id).__name__}")
    if not isinstance(spec, AssignmentSpec):
        raise ConfigError(
            f"spec: expected an AssignmentSpec (AssignmentSpec.from_config(config)), "
            f"not {type(spec).__name__}"
        )
    if isinstance(segments, str):
        raise ConfigError(
            f"segments: expected a list of segment names, not the str {segments!r:.60}"
        )
    if spec.holdout and int(_md5(f"{spec.holdout_salt}:{user_id}")[:8], 16) < spec.holdout:
        return HOLDOUT
    member = set(segments)
    alloc = next((a for s, a in spec.segments if s in member), spec.default)
    if int((d := _md5(f"{spec.salt}:{user_id}"))[8:16], 16) >= alloc.traffic:
        return None
    if int(d[0:8], 16) < alloc.control:
        return spec.control
    pick = int(d[16:24], 16)
    return next(a for a, upper in alloc.treatments if pick < upper)


def _int64(value: Any) -> Any:
    """``CAST(value AS BIGINT)`` in the SQL, even where Ibis already types ``value`` int64.

    Ibis drops a cast to the type it infers, but engines type the SQL themselves:
    ``find`` is int64 to Ibis and a 32-bit INT on Spark and PostgreSQL, where eight
    hex digits then overflow (ANSI) or silently wrap. So every step casts explicitly.
    """
    import ibis.expr.datatypes as dt
    import ibis.expr.operations as ops

    return ops.Cast(value.op(), to=dt.int64).to_expr()


def _int64_literal(value: int) -> Any:
    import ibis

    return _int64(ibis.literal(value, type="int64"))


def hex_int(digest: Any, start: int) -> Any:
    """``int(digest[start:start+8], 16)`` with per-character arithmetic every engine has.

    Computed in 64-bit on every engine (the value reaches ``2**32 - 1``).
    """
    import ibis

    digits = ibis.literal(_HEX)
    sixteen = _int64_literal(16)
    value = None
    for i in range(start, start + 8):
        d = _int64(digits.find(digest.substr(i, 1)))
        value = d if value is None else _int64(_int64(value * sixteen) + d)
    return value


def _md5_hex(text: ir.StringValue) -> ir.StringValue:
    """The lowercase hex MD5 of ``text``: Ibis's ``hexdigest``, else the engine's ``md5()``.

    PostgreSQL has no Ibis rule for ``hexdigest`` but a ``md5(text)`` that returns
    the hex digest of the text's UTF-8 bytes (in a UTF8 database), like DuckDB's and Spark's.
    """
    import ibis
    import ibis.expr.operations as ops
    from ibis.common.exceptions import IbisError

    try:
        native = ibis.get_backend(text).has_operation(ops.HexDigest)
    except IbisError:  # unbound tables: compiled later for any backend
        native = True
    if native:
        return text.hexdigest("md5")

    @ibis.udf.scalar.builtin(name="md5")  # type: ignore[untyped-decorator]
    def md5(value: str) -> str:  # type: ignore[empty-body]
        """The engine's own ``md5(text)``."""

    result: ir.StringValue = md5(text)
    return result


def assignment_expr(
    user_id: ir.StringValue, spec: AssignmentSpec, members: Mapping[str, ir.BooleanValue]
) -> ir.StringValue:
    """The arm of every user as an engine expression (null: outside the traffic share).

    The same on DuckDB, Spark (ANSI on or off) and PostgreSQL: hash slices and
    thresholds are 64-bit integers in the SQL, and the arm comes from a ``CASE`` on
    an integer outcome code (engines differ in the index type arrays take).

    Args:
        user_id: The user id column.
        spec: The experiment's :class:`AssignmentSpec`.
        members: Segment name → membership expression, for the allocation segments.

    Returns:
        A string expression: an arm, ``"holdout"``, or null.
    """
    import ibis

    digest = _md5_hex(ibis.literal(f"{spec.salt}:") + user_id.cast("string"))
    allocs = [spec.default, *(a for _, a in spec.segments)]
    arms = [name for name, _ in spec.default.treatments]
    in_segment = [members[s].fill_null(False) for s, _ in spec.segments]

    def per_user(values: list[int]) -> Any:
        """A constant per allocation, chosen by the user's allocation segment."""
        if len(set(values)) == 1:
            return _int64_literal(values[0])
        branches = [(m, _int64_literal(v)) for m, v in zip(in_segment, values[1:], strict=True)]
        return _int64(ibis.cases(*branches, else_=_int64_literal(values[0])))

    # Engines evaluate CASE branches lazily and do not share sub-expressions across
    # them, so the hash slices go into plain arithmetic (each computed once) that
    # yields an outcome code; the one CASE on it is a simple ``CASE code WHEN``.
    def flag(cond: Any) -> Any:
        return _int64(cond.cast("int32"))  # PostgreSQL casts boolean to INT, not to BIGINT

    zero = _int64_literal(0)
    held = zero
    if spec.holdout:
        held_digest = _md5_hex(ibis.literal(f"{spec.holdout_salt}:") + user_id.cast("string"))
        held = flag(hex_int(held_digest, 0) < _int64_literal(spec.holdout))
    out = zero
    if any(a.traffic < 2**32 for a in allocs):
        out = flag(hex_int(digest, 8) >= per_user([a.traffic for a in allocs]))
    ctrl = flag(hex_int(digest, 0) < per_user([a.control for a in allocs]))
    which = zero
    if len(arms) > 1:
        pick = hex_int(digest, 16)
        for j in range(len(arms) - 1):
            which = _int64(which + flag(pick >= per_user([a.treatments[j][1] for a in allocs])))
    keep = _int64((1 - held) * (1 - out))
    code = _int64(out * (1 - held) + keep * ctrl * 2 + keep * (1 - ctrl) * (3 + which))
    # code: 0 holdout, 1 not entered, 2 control, 3 + j the j-th treatment arm
    outcomes = [(0, HOLDOUT), (2, spec.control), *((3 + j, a) for j, a in enumerate(arms))]
    arm = code.cases(*outcomes, else_=ibis.null("string"))
    result: ir.StringValue = arm
    return result
