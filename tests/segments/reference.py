"""An independent pandas evaluator of parsed rules (SQL three-valued logic via pandas' Kleene
booleans), used as the reference that engine membership must equal."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from segments.lifecycle import LifecycleConfig
from segments.rules import (
    Between,
    BoolOp,
    Compare,
    Const,
    ConstList,
    DaysSince,
    Not,
    NullCheck,
    SegmentRef,
    parse_rule,
)


def lifecycle_reference(df: pd.DataFrame, config: LifecycleConfig, as_of: dt.datetime):
    signup = _days_since(df[config.signup_column], as_of)
    recency = df[config.recency_column].astype("Float64")
    value = df[config.value_column].astype("float64")
    threshold = np.quantile(value.dropna().to_numpy(), 1 - config.vip_share)
    at_risk = (recency >= config.at_risk_days).fillna(False)
    if config.at_risk_signals:
        at_risk = at_risk | evaluate(parse_rule(config.at_risk_signals), df, as_of, {}).fillna(
            False
        )
    stage = np.select(
        [
            (signup <= config.new_days).fillna(False).to_numpy(bool),
            (recency > config.dormant_days).fillna(False).to_numpy(bool),
            at_risk.to_numpy(bool),
            (value >= threshold).fillna(False).to_numpy(bool),
        ],
        ["new", "dormant", "at_risk", "vip"],
        default="active",
    )
    return pd.Series(stage, index=df.index).astype("string")


def _days_since(ts, as_of: dt.datetime):
    seconds = (pd.Timestamp(as_of) - ts).dt.total_seconds()
    return np.floor(seconds / 86400).astype("Float64")


def _value(operand, df, as_of, lifecycle):
    if isinstance(operand, Const):
        return operand.value
    if isinstance(operand, DaysSince):
        return _days_since(df[operand.column.name], as_of)
    if operand.name not in df.columns and operand.name == "lifecycle":
        return lifecycle()
    col = df[operand.name]
    return col.convert_dtypes() if col.dtype != object else col.astype("string")


def evaluate(node, df, as_of, rules, lifecycle=None):  # noqa: PLR0911
    """Nullable boolean Series: NA where SQL would give NULL."""
    if isinstance(node, BoolOp):
        parts = [evaluate(o, df, as_of, rules, lifecycle) for o in node.operands]
        out = parts[0]
        for p in parts[1:]:
            out = (out & p) if node.op == "and" else (out | p)
        return out
    if isinstance(node, Not):
        return ~evaluate(node.operand, df, as_of, rules, lifecycle)
    if isinstance(node, SegmentRef):
        return evaluate(rules[node.name], df, as_of, rules, lifecycle).fillna(False)
    if isinstance(node, NullCheck):
        col = df[node.column.name]
        return (col.notna() if node.negate else col.isna()).astype("boolean")
    if isinstance(node, Between):
        v = _value(node.value, df, as_of, lifecycle)
        return ((v >= node.low.value) & (v <= node.high.value)).astype("boolean")
    if not isinstance(node, Compare):
        raise TypeError(node)
    left = _value(node.left, df, as_of, lifecycle)
    if isinstance(node.right, ConstList):
        isin = left.isin(list(node.right.values)).astype("boolean")
        isin[left.isna()] = pd.NA
        return ~isin if node.op == "not in" else isin
    right = _value(node.right, df, as_of, lifecycle)
    ops = {
        "==": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }
    return pd.Series(ops[node.op](left, right), index=df.index).astype("boolean")


def reference_membership(df, segment_set, as_of) -> dict[str, np.ndarray]:
    """Membership of the rule and crossed segments of a set (non-exclusive) in pandas."""
    rules = {s.name: s.rule for s in segment_set.segments if s.kind == "rule"}
    cache: dict[str, pd.Series] = {}

    def lifecycle():
        if "lc" not in cache:
            cache["lc"] = lifecycle_reference(df, segment_set.lifecycle, as_of)
        return cache["lc"]

    out = {}
    for seg in segment_set.segments:
        if seg.kind == "rule":
            out[seg.name] = (
                evaluate(seg.rule, df, as_of, rules, lifecycle).fillna(False).to_numpy(bool)
            )
        elif seg.kind == "cross":
            cols = [lifecycle() if c == "lifecycle" else df[c] for c in seg.cross]
            keys = pd.concat(cols, axis=1, keys=list(range(len(cols))))
            for key, rows in keys.groupby(list(range(len(cols))), dropna=True).groups.items():
                combo = key if isinstance(key, tuple) else (key,)
                if len(rows) >= segment_set.min_size:
                    name = "_".join([seg.name, *(str(v) for v in combo)])
                    mask = np.zeros(len(df), bool)
                    mask[df.index.get_indexer(rows)] = True
                    out[name] = mask
    return out
