"""The files and report section of ``exp target``: policy segments, rollout YAML, HTML.

* The policy's segments file: one segment per cell, ``exclusive: true`` (first
  match wins), every rule self-contained, with the evidence in YAML comments.
  It loads with :func:`segments.definitions.load_segments`.
* The rollout YAML: which arm each segment gets (``control`` = no campaign).
* A standalone HTML section: the recommendation, the values per 1,000 customers
  (learned policy, treat-all, treat-none, for the primary metric and the
  guardrails), the cells, and the gain (Qini) curve as an inline SVG.

Everything reads a :class:`experiment.results.targeting.Targeting`; user text is
escaped (HTML) or quoted (YAML), and cleaned of line breaks in comments.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reports.format import fmt_count, fmt_num, fmt_p, fmt_pct, page_text
from reports.proposals import dump_yaml

if TYPE_CHECKING:
    from experiment.results.targeting import PolicyValue, Targeting

__all__ = [
    "METHOD_NOTE",
    "ValueView",
    "gain_svg",
    "policy_yaml",
    "rollout_yaml",
    "targeting_html",
    "value_views",
]

METHOD_NOTE = (
    "How this policy was found, honestly: every user was put at random into one of two "
    "halves (the same halves as exp refine). The learner saw only the discovery half: the "
    "segments made exclusive (first match wins), each cut in two on an attribute where the "
    "discovery half showed a significant difference in lift (Bonferroni over the cuts "
    "searched), then per cell the arm with the best lift net of the cost, departing from the "
    "overall best arm only on significant evidence (Bonferroni over the cells), within the "
    "budget. Every value below comes from the estimation half, which the learner never saw: "
    "1000 x the sum over treated cells of share x held-out lift, with a normal interval from "
    "the cells' independent variances. The recommendation ships the policy only when that "
    "value beats treating no one and no guardrail is harmed."
)


def _clean(text: object) -> str:
    return " ".join("".join(c if c.isprintable() else " " for c in str(text)).split())


@dataclass(frozen=True, kw_only=True)
class ValueView:
    """One policy value, formatted."""

    metric: str
    policy: str
    value: str
    ci: str
    p_value: str
    share_treated: str
    guardrail: bool


def _view(v: PolicyValue) -> ValueView:
    return ValueView(
        metric=v.metric,
        policy=v.policy.replace("_", " "),
        value=fmt_num(v.value, 4),
        ci=f"[{fmt_num(v.ci_low, 4)}, {fmt_num(v.ci_high, 4)}]",
        p_value=fmt_p(v.p_value),
        share_treated=fmt_pct(v.share_treated, signed=False),
        guardrail=v.guardrail,
    )


def value_views(targeting: Targeting) -> list[ValueView]:
    """Every value, primary metric first, in the order learned, treat-all, treat-none, diff."""
    return [_view(v) for v in targeting.values]


def _headline(t: Targeting) -> list[str]:
    v = t.value_of("learned")
    return [
        f"Rollout policy learned by `exp target` for experiment {t.experiment!r}: metric "
        f"{t.metric!r}, arms {', '.join(t.arms)} against {t.control!r}; cost per treated "
        f"customer {fmt_num(t.cost)}, budget {fmt_pct(t.budget, signed=False)} of customers.",
        f"Recommendation: {t.recommendation} ({t.reason}). Held-out value of the policy per "
        f"1,000 customers: {fmt_num(v.value, 4)} [{fmt_num(v.ci_low, 4)}, "
        f"{fmt_num(v.ci_high, 4)}] ({fmt_count(t.discovery_users)} discovery users, "
        f"{fmt_count(t.estimation_users)} held out, seed {t.seed}).",
        METHOD_NOTE,
    ]


def _comments(paragraphs: list[str]) -> list[str]:
    import textwrap

    out: list[str] = []
    for p in paragraphs:
        out += [f"# {line}" for line in textwrap.wrap(_clean(p), 96)] + ["#"]
    return out


def policy_yaml(targeting: Targeting) -> str:
    """The policy's exclusive segments file (one segment per cell), evidence in comments."""
    lines = _comments(_headline(targeting))
    lines += ["exclusive: true", "segments:"]
    for c in targeting.cells:
        lines += _comments(
            [
                f"{c.name}: {fmt_pct(c.share, signed=False)} of customers, gets "
                f"{c.arm or targeting.control!r}; discovery gain per customer "
                f"{fmt_num(c.gain, 4)}; "
                f"held-out lift of {c.best_arm!r} {fmt_num(c.lift_abs, 4)} "
                f"[{fmt_num(c.ci_abs_low, 4)}, {fmt_num(c.ci_abs_high, 4)}]"
            ]
        )[:-1]
        entry = {"name": c.name, "description": f"policy cell for {c.arm or targeting.control}"}
        entry["where"] = c.rule or "not_null(user_id)"  # the one cell of a file-less run
        if c.parent:
            entry["description"] += f", refined from {c.parent}"
        lines += [f"  {line}" for line in dump_yaml([entry]).splitlines()]
    return "\n".join(lines) + "\n"


def rollout_yaml(targeting: Targeting, segments_file: str) -> str:
    """Which arm each policy segment gets (``control``: no campaign), with the headline."""
    doc = {
        "experiment": targeting.experiment,
        "metric": targeting.metric,
        "segments_file": segments_file,
        "recommendation": targeting.recommendation,
        "rollout": [
            {"segment": c.name, "arm": c.arm or targeting.control} for c in targeting.cells
        ],
    }
    return "\n".join(_comments(_headline(targeting)[:2])) + "\n" + dump_yaml(doc)


def gain_svg(targeting: Targeting, width: int = 480, height: int = 260) -> str:
    """The gain (Qini) curve: held-out value per 1,000 vs share treated, with its CI band."""
    import xml.etree.ElementTree as ET

    pts = [g for g in targeting.gain_curve if g.value == g.value]  # drop nan
    svg = ET.Element("svg", width=str(width), height=str(height), role="img")
    ET.SubElement(svg, "title").text = "Gain curve: held-out value per 1,000 customers"
    if len(pts) < 2:
        return ET.tostring(svg, encoding="unicode")
    lows = [g.ci_low for g in pts if g.ci_low == g.ci_low]
    highs = [g.ci_high for g in pts if g.ci_high == g.ci_high]
    y_min, y_max = min([0.0, *lows]), max([0.0, *highs])
    span = (y_max - y_min) or 1.0
    pad = 36

    def xy(share: float, value: float) -> str:
        x = pad + share * (width - 2 * pad)
        y = height - pad - (value - y_min) / span * (height - 2 * pad)
        return f"{x:.1f},{y:.1f}"

    band = [xy(g.share_treated, g.ci_high) for g in pts] + [
        xy(g.share_treated, g.ci_low) for g in reversed(pts)
    ]
    ET.SubElement(svg, "polygon", points=" ".join(band), fill="#cfe0f5")
    ET.SubElement(
        svg, "polyline", points=" ".join([xy(0, 0), xy(1, 0)]), stroke="#888", fill="none"
    )
    line = " ".join(xy(g.share_treated, g.value) for g in pts)
    ET.SubElement(svg, "polyline", points=line, stroke="#1f5fa8", fill="none")
    ET.SubElement(
        svg, "text", x=str(pad), y=str(height - 8)
    ).text = "share treated (cells by discovery gain) →"
    ET.SubElement(
        svg, "text", x="4", y="14"
    ).text = f"value per 1,000 ({fmt_num(y_min, 3)} to {fmt_num(y_max, 3)})"
    return ET.tostring(svg, encoding="unicode")


def targeting_html(targeting: Targeting) -> str:
    """A standalone HTML page: recommendation, values, cells, gain curve, method."""

    def e(text: str) -> str:
        return html.escape(page_text(text))

    rows = "".join(
        f"<tr><td>{e(v.metric)}{' (guardrail)' if v.guardrail else ''}</td><td>{e(v.policy)}</td>"
        f"<td>{e(v.value)}</td><td>{e(v.ci)}</td><td>{e(v.p_value)}</td><td>{e(v.share_treated)}</td></tr>"
        for v in value_views(targeting)
    )
    cells = "".join(
        f"<tr><td>{e(c.name)}</td><td><code>{e(c.rule or 'everyone')}</code></td>"
        f"<td>{e(fmt_pct(c.share, signed=False))}</td><td>{e(c.arm or targeting.control)}</td>"
        f"<td>{e(fmt_num(c.gain, 4))}</td><td>{e(fmt_num(c.lift_abs, 4))} "
        f"[{e(fmt_num(c.ci_abs_low, 4))}, {e(fmt_num(c.ci_abs_high, 4))}]</td></tr>"
        for c in targeting.cells
    )
    head = "".join(f"<p>{e(_clean(p))}</p>" for p in _headline(targeting))
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Targeting: "
        f"{e(targeting.experiment)}</title></head><body><h2 id='targeting'>Targeting</h2>{head}"
        "<table><thead><tr><th>Metric</th><th>Policy</th><th>Value per 1,000</th>"
        f"<th>{e(f'{1 - targeting.alpha:.0%}')} CI</th><th>p</th><th>Treated</th></tr></thead>"
        f"<tbody>{rows}</tbody></table><h3>Cells</h3><table><thead><tr><th>Cell</th><th>Rule</th>"
        "<th>Share</th><th>Arm</th><th>Discovery gain</th><th>Held-out lift (best arm)</th></tr>"
        f"</thead><tbody>{cells}</tbody></table><h3>Gain curve (held out)</h3>"
        f"{gain_svg(targeting)}</body></html>\n"
    )
