"""The proposals segments file written by ``exp refine``: the original file plus evidence.

The new file keeps every original segment unchanged and in order (and the file's
other fields), adds the new segments of every significant proposal beside the
segment they refine, and puts the held-out evidence in YAML comments above them.
Proposals that did not reach significance appear as comments only. The result
loads with :func:`segments.definitions.load_segments`, so it is valid input to
``exp segments validate`` and ``exp analyze``.

Placement: in an ordinary (overlapping) file a proposal's segments follow the
segment they refine. In an ``exclusive`` file (first match wins) they precede it,
so they take exactly its users and the original keeps only what they leave (e.g.
users with a null attribute); a refinement of ``all`` cannot be placed there
without changing the other segments, so it stays a comment.

User text (names, rules, descriptions) enters comments with every line break and
control character replaced by a space, so a comment can never become YAML.
"""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from experiment.config import read_yaml
from experiment.errors import ConfigError, RuleError
from experiment.files import text_writer, write_together
from reports.format import fmt_count, fmt_num, fmt_p, fmt_pct, fmt_pct_interval
from reports.refinement import describe_cut, p_is
from segments.definitions import RESERVED_NAMES, models_path, parse_segments
from segments.rules import parse_rule, segments_of

if TYPE_CHECKING:
    from collections.abc import Sequence

    from experiment.results.refinement import Proposal, Refinement, Side
    from segments.definitions import SegmentSet

__all__ = ["ProposalFiles", "dump_yaml", "models_path", "proposals_yaml", "write_proposals"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$")
_WIDTH = 100
# Keys written without quotes: identifiers that YAML 1.1 reads as strings.
_PLAIN_KEY = re.compile(
    r"^(?!(?:y|n|yes|no|on|off|true|false|null)$)[A-Za-z_][A-Za-z0-9_\-]*$", re.IGNORECASE
)


@dataclass(frozen=True, kw_only=True)
class ProposalFiles:
    """The files ``exp refine`` wrote: the segments YAML, its JSON evidence, the models copy."""

    segments: Path
    evidence: Path
    models: Path | None


def _clean(text: object) -> str:
    """One line of text safe inside a YAML comment: no line breaks or control characters."""
    return " ".join("".join(c if c.isprintable() else " " for c in str(text)).split())


def _comment(text: str, indent: str = "", *, bullet: str = "", wrap: bool = True) -> list[str]:
    clean = _clean(text)
    if not wrap:
        return [f"{indent}# {bullet}{clean}"]
    width = _WIDTH - len(indent) - 2 - len(bullet)
    lines = textwrap.wrap(clean, width, break_on_hyphens=False) or [""]
    pad = " " * len(bullet)
    return [f"{indent}# {bullet if i == 0 else pad}{line}" for i, line in enumerate(lines)]


def _side_line(side: Side) -> str:
    return (
        f"{side.name!r} ({side.rule}): lift {fmt_pct(side.lift_rel)} "
        f"{fmt_pct_interval(side.ci_low, side.ci_high)}, {p_is(side.p_value)}; "
        f"{fmt_count(side.users)} users, held out {fmt_count(side.n_control)} control / "
        f"{fmt_count(side.n_treatment)} treatment; "
        f"follow-up MDE {fmt_pct(side.mde_rel, signed=False)}"
    )


def _evidence(proposal: Proposal, refinement: Refinement, verdict: str) -> list[str]:
    """Comment lines (two-space list indentation) describing one proposal."""
    indent = "  "
    lines = [f"{indent}#"]
    lines += _comment(
        f"{verdict}: {describe_cut(proposal)}, metric {proposal.metric!r}, arm {proposal.arm!r} "
        f"(best of {fmt_count(proposal.candidates)} candidates on the discovery half, "
        f"z = {fmt_num(proposal.discovery_z, 3)})",
        indent,
    )
    for side in proposal.sides:
        lines += _comment(_side_line(side), indent, bullet="  side ", wrap=False)
    adjusted = (
        f"{refinement.correction}-adjusted {fmt_p(proposal.p_adjusted)} "
        f"(alpha {fmt_num(refinement.alpha)})"
    )
    if proposal.kind == "merge":
        test = (
            f"equivalence (two one-sided tests) {p_is(proposal.equivalence_p)}, {adjusted}; "
            f"difference {p_is(proposal.interaction_p)}"
        )
    else:
        test = f"interaction {p_is(proposal.interaction_p)}, {adjusted}"
    lines += _comment(test, indent, bullet="  ")
    if proposal.summary:
        lines += _comment(proposal.summary, indent, bullet="  ")
    return lines


class _QuotingDumper(yaml.SafeDumper):
    """Every string value double-quoted (escapes for quotes, line breaks, tabs, controls).

    A plain YAML scalar can change meaning (``yes``, ``null``, ``~``, ``- x``,
    ``a: b``, ``#``); a double-quoted one is always the same string. Mapping keys
    stay plain where that is unambiguous (``name:``), as PyYAML decides.
    """

    def represent_mapping(self, tag: str, mapping: Any, flow_style: Any = None) -> yaml.MappingNode:
        node = super().represent_mapping(tag, mapping, flow_style)
        for key, _ in node.value:
            if isinstance(key, yaml.ScalarNode) and key.tag == "tag:yaml.org,2002:str":
                key.style = None if _PLAIN_KEY.match(key.value) else '"'
        return node


def _quoted_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')


_QuotingDumper.add_representer(str, _quoted_str)


def dump_yaml(value: Any) -> str:
    """YAML text of ``value`` with every string value quoted (see :class:`_QuotingDumper`)."""
    return yaml.dump(value, Dumper=_QuotingDumper, sort_keys=False, allow_unicode=True, width=4096)


def _entry_yaml(entry: dict[str, Any]) -> list[str]:
    return [f"  {line}" for line in dump_yaml([entry]).splitlines()]


def _entry_name(entry: Any) -> str:
    if not isinstance(entry, dict):
        return ""
    if entry.get("name"):
        return str(entry["name"])
    cross = entry.get("cross")
    return "_".join(map(str, cross)) if isinstance(cross, list) else ""


def _anchor(
    proposal: Proposal, names: list[str], kinds: Sequence[str], *, exclusive: bool
) -> int | None:
    """Index of the file entry a proposal refines (None: ``all`` or not found)."""
    wanted = [proposal.segment]
    if proposal.kind == "merge":
        wanted += [s.name for s in proposal.sides]
    found = set()
    for segment in wanted:
        for i, name in enumerate(names):
            expands = kinds[i] != "rule" and segment.startswith(f"{name}_")
            if name == segment or expands:
                found.add(i)
    if not found:
        return None
    return min(found) if exclusive else max(found)


def _problem(proposal: Proposal, taken: set[str], rule_names: set[str]) -> str | None:
    """Why a proposal's new segments cannot be written as valid entries (None: they can)."""
    if not proposal.new_segments:
        return "it has no new segments"
    names = set(taken)
    for seg in proposal.new_segments:
        if not _NAME.match(seg.name) or seg.name in RESERVED_NAMES:
            return f"{seg.name!r} is not a valid segment name"
        if seg.name in names:
            return f"a segment named {seg.name!r} already exists"
        names.add(seg.name)
        try:
            refs = segments_of(parse_rule(seg.where))
        except RuleError as exc:
            return f"the rule of {seg.name!r} does not parse ({exc})"
        unknown = [r for r in refs if r not in rule_names]
        if unknown:
            return f"its rule refers to {unknown[0]!r}, which is not a rule segment of the file"
    return None


def _header(
    refinement: Refinement, source: str | None, *, exclusive: bool, evidence: str
) -> list[str]:
    n = len(refinement.proposals)
    added = sum(p.significant for p in refinement.proposals)
    kept = "The experiment had no segments file. "
    if source is not None:
        kept = (
            f"Based on {Path(source).name}: its segments and fields are kept unchanged, in order. "
        )
    placement = (
        "This file is exclusive (first match wins), so proposed segments precede the segment "
        "they refine and take its users."
        if exclusive
        else "Proposed segments follow the segment they refine."
    )
    paragraphs = [
        f"Segments proposed by `exp refine` for experiment {refinement.experiment!r}: metric "
        f"{refinement.metric!r}, arm {refinement.arm!r} against {refinement.control!r}.",
        kept + placement,
        "Method: every user was put at random into one of two halves (seed "
        f"{refinement.seed}). The search ran on the discovery half "
        f"({fmt_count(refinement.discovery_users)} users): for each segment it tried "
        f"{fmt_count(refinement.candidates)} candidate splits, thresholds and merges in all over "
        f"the attributes {', '.join(refinement.attributes) or '(none)'} and kept the best "
        "per segment. Every number below comes from the estimation half "
        f"({fmt_count(refinement.estimation_users)} users), which the search never saw.",
        "The interaction test asks whether the two sides' relative lifts differ; its p-values "
        f"are {refinement.correction}-adjusted over the split and threshold proposals, and a "
        f"proposal is added when the adjusted p < {fmt_num(refinement.alpha)} (a merge: when "
        "two one-sided tests, adjusted over the merges, show the two lifts equivalent within "
        "the experiment's target lift). Follow-up MDE: the relative lift a new "
        "experiment on that side alone, with all its users, would detect at the "
        "experiment's alpha and power.",
        f"{added} of {n} proposals added; the others are listed as comments "
        "(considered, not proposed). Full evidence: "
        f"{evidence or 'the JSON file beside this one'}.",
    ]
    lines: list[str] = []
    for paragraph in paragraphs:
        lines += _comment(paragraph)
    return lines


def proposals_yaml(
    refinement: Refinement, segment_set: SegmentSet | None, *, evidence: str = ""
) -> str:
    """The proposals segments file as YAML text (see the module docstring).

    Args:
        refinement: What ``segments.refine.refine`` found.
        segment_set: The experiment's segments file, or None when it has none.
        evidence: The name of the JSON evidence file, for the header.

    Returns:
        YAML text that :func:`segments.definitions.parse_segments` accepts whenever the
        original file had a segment or a proposal was added.

    Raises:
        ConfigError: the original segments file can no longer be read.
    """
    raw: dict[str, Any] = {"segments": []}
    if segment_set is not None:
        raw = read_yaml(Path(segment_set.source), what="segments")
    exclusive = bool(segment_set is not None and segment_set.exclusive)
    entries: list[Any] = list(raw.get("segments") or [])
    names = [_entry_name(e) for e in entries]
    kinds = [s.kind for s in segment_set.segments] if segment_set is not None else []
    rule_names = {n for n, k in zip(names, kinds, strict=False) if k == "rule"}
    taken = set(names)
    before: dict[int | None, list[str]] = {}
    after: dict[int | None, list[str]] = {}
    for proposal in refinement.proposals:
        anchor = _anchor(proposal, names, kinds, exclusive=exclusive)
        problem = _problem(proposal, taken, rule_names) if proposal.significant else None
        if proposal.significant and problem is None and exclusive and anchor is None:
            problem = "an exclusive file has no place for it that keeps the other segments"
        if not proposal.significant or problem is not None:
            verdict = "considered, not proposed"
            if problem is not None:
                verdict = f"significant but not added ({problem})"
            after.setdefault(anchor, []).extend(_evidence(proposal, refinement, verdict))
            continue
        verdict = "PROPOSED (equivalent lifts)" if proposal.kind == "merge" else "PROPOSED"
        block = _evidence(proposal, refinement, verdict)
        for seg in proposal.new_segments:
            taken.add(seg.name)
            entry = {"name": seg.name, "description": seg.description, "where": seg.where}
            block += _entry_yaml({k: v for k, v in entry.items() if v or k != "description"})
        (before if exclusive else after).setdefault(anchor, []).extend(block)
    source = segment_set.source if segment_set else None
    lines = _header(refinement, source, exclusive=exclusive, evidence=evidence)
    for key, value in raw.items():
        if key != "segments":
            lines += dump_yaml({key: value}).splitlines()
            continue
        if not taken:
            lines += _comment(
                "No segments: the experiment has no segments file and no proposal was added, "
                "so this file is a record of what was considered, not a segments file to use."
            )
        lines.append("segments:" if taken else "segments: []")
        for i, entry in enumerate(entries):
            lines += before.get(i, [])
            lines += _entry_yaml(entry)
            lines += after.get(i, [])
        lines += before.get(None, []) + after.get(None, [])
    text = "\n".join(lines) + "\n"
    if taken:  # a file without segments cannot be valid; its comments say why
        _check(text)
    return text


def _check(text: str) -> None:
    """The written file must parse exactly as a segments file does (an internal invariant)."""
    try:
        parse_segments(yaml.safe_load(text), source="proposals")
    except (ConfigError, RuleError, yaml.YAMLError) as exc:  # pragma: no cover - a bug here
        raise RuntimeError(f"Proposals file does not parse: {exc}") from exc


def _models_copy(segment_set: SegmentSet, target: Path) -> str | None:
    """The sidecar's text, re-pointed at the new segments file (None: no sidecar)."""
    if not segment_set.sidecar.is_file():
        return None
    text = segment_set.sidecar.read_text(encoding="utf-8")
    try:
        doc = json.loads(text)
    except ValueError:
        return text  # copied as it is; loading it will say what is wrong
    if isinstance(doc, dict) and "segments_file" in doc:
        doc["segments_file"] = target.name
        return json.dumps(doc, indent=2, allow_nan=False) + "\n"
    return text


def write_proposals(
    refinement: Refinement,
    segment_set: SegmentSet | None,
    out: Path,
    *,
    also: Sequence[tuple[Path, str]] = (),
) -> ProposalFiles:
    """Write the proposals YAML, its JSON evidence beside it and the copied models sidecar.

    Everything is rendered before the first file is written, and the files are
    replaced together (:func:`experiment.files.write_together`), with ``also``
    (more ``(path, text)`` files of the same run, e.g. the HTML report).

    Args:
        refinement: What ``segments.refine.refine`` found.
        segment_set: The experiment's segments file, or None.
        out: The YAML file to write; the evidence goes to ``out`` with a ``.json``
            suffix and fitted models to ``<stem>.models.json``.
        also: More ``(path, text)`` files of the same run, replaced with these.

    Returns:
        The paths written.
    """
    out = Path(out)
    evidence = out.with_suffix(".json")
    text = proposals_yaml(refinement, segment_set, evidence=evidence.name)
    doc = refinement.to_json()
    models = _models_copy(segment_set, out) if segment_set is not None else None
    texts = [(out, text), (evidence, doc), *also]
    if models is not None:
        texts.insert(2, (models_path(out), models))
    write_together([(path, text_writer(body)) for path, body in texts])
    return ProposalFiles(
        segments=out, evidence=evidence, models=models_path(out) if models is not None else None
    )
