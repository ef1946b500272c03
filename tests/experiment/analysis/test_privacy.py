"""The privacy floor withholds every number of a small segment, CUPED's included."""

import math
from dataclasses import fields, replace

from experiment.analysis.privacy import hidden_segments, suppress
from experiment.results import ResultRow, SegmentInfo
from tests.fixtures.results import make_results

# Fields that may stay on a suppressed row: its names, labels and flags.
KEPT = {"segment", "metric", "arm", "method", "metric_kind", "reason", "significant",
        "underpowered", "guardrail_breached", "suppressed", "n_control", "n_treatment"}  # fmt: skip


def test_suppress_withholds_every_number_including_adjusted_means():
    results = make_results()
    row = replace(
        results.results[0],
        segment="tiny",
        mean_control_adj=0.03,
        mean_treatment_adj=0.034,
        cuped_variance_reduction=0.25,
        chance_to_win=0.9,
        mde_rel=0.1,
    )
    segments = (*results.segments, SegmentInfo(name="tiny", where="x > 1", description="", users=9))
    hidden = hidden_segments(segments, 50)
    assert hidden == {"tiny"}
    (out,), _segments, _srm = suppress([row], segments, results.srm, hidden)
    assert out.suppressed
    assert out.n_control == out.n_treatment == 0
    for f in fields(ResultRow):
        value = getattr(out, f.name)
        if f.name not in KEPT and isinstance(value, float):
            assert math.isnan(value), f.name
    assert math.isnan(out.mean_control_adj)
    assert math.isnan(out.mean_treatment_adj)
