"""Precision, recall and F1 of the rules against ground-truth labels, per scenario and overall,
at event and at account level, for micro rules only, macro rules only, and combined.

Detectors (enforce-mode hits only; shadow hits are recorded but not acted on):

* `micro`     - the time-window kinds (velocity, fan_out, sum_over, amount_spike, ...);
* `macro`     - the graph kinds (`shared_identifier`, `near_flagged`, `linked_component`, ...);
* `combined`  - any enforce hit: micro, macro or composite;
* `composite` - the composite rules alone (micro and macro signals weighed together in YAML).

Each kind declares its view (`Rule.view`); `detector_of` reads it from the kind registry, so a
graph kind added as a plugin is scored as macro.

Per scenario S (one-vs-normal): TP = detected events (accounts) of S, FP = detected normal events
(accounts), precision = TP / (TP + FP), recall = TP / |S|. Overall: every labelled event
(account) is a positive. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib.rules.registry import view_of

DETECTORS = ("micro", "macro", "combined", "composite")
LEVELS = ("event", "account")
OVERALL = "overall"


def detector_of(kind: str) -> str:
    return view_of(kind)


@dataclass(frozen=True)
class Score:
    tp: int
    fp: int
    positives: int

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / self.positives if self.positives else None

    @property
    def f1(self) -> float | None:
        """2TP / (2TP + FP + FN): the harmonic mean of precision and recall, and 0 (not undefined)
        when nothing was detected among existing positives."""
        denominator = 2 * self.tp + self.fp + (self.positives - self.tp)
        return 2 * self.tp / denominator if denominator else None

    def to_dict(self) -> dict[str, Any]:
        return {"tp": self.tp, "fp": self.fp, "positives": self.positives, "precision": self.precision,
                "recall": self.recall, "f1": self.f1}


@dataclass
class Evaluation:
    #: scores[level][detector][scenario or "overall"]
    scores: dict[str, dict[str, dict[str, Score]]] = field(default_factory=dict)
    scenarios: list[str] = field(default_factory=list)
    ruleset_versions: list[str] = field(default_factory=list)
    hits_by_rule: dict[str, int] = field(default_factory=dict)
    #: lookalikes[family][detector] = (accounts flagged, accounts): legitimate look-alikes hit
    lookalikes: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)

    def score(self, level: str, detector: str, scenario: str = OVERALL) -> Score:
        return self.scores[level][detector][scenario]

    def to_dict(self) -> dict[str, Any]:
        return {"scenarios": self.scenarios, "ruleset_versions": self.ruleset_versions,
                "hits_by_rule": self.hits_by_rule,
                "lookalikes": {f: {d: list(v) for d, v in per.items()} for f, per in self.lookalikes.items()},
                "scores": {level: {det: {s: sc.to_dict() for s, sc in per.items()} for det, per in dets.items()}
                           for level, dets in self.scores.items()}}


def evaluate_hits(hits: Iterable[Mapping[str, Any]], event_labels: Mapping[str, str],
                  account_labels: Mapping[str, str], lookalikes: Mapping[str, str] | None = None) -> Evaluation:
    """Scores per level, detector and scenario; `lookalikes` (normal account -> family) adds how
    many accounts of each legitimate look-alike family each detector flagged."""
    detected: dict[str, dict[str, set[str]]] = {level: {d: set() for d in DETECTORS} for level in LEVELS}
    versions: dict[str, None] = {}
    by_rule: dict[str, int] = {}
    for hit in hits:
        versions[hit["ruleset_version"]] = None
        by_rule[hit["rule_id"]] = by_rule.get(hit["rule_id"], 0) + 1
        if hit["mode"] != "enforce":
            continue
        for detector in (detector_of(hit["kind"]), "combined"):
            detected["event"][detector].add(hit["event_id"])
            detected["account"][detector].add(hit["account_id"])
    scenarios = sorted(set(event_labels.values()) | set(account_labels.values()))
    truth = {"event": event_labels, "account": account_labels}
    evaluation = Evaluation(scenarios=scenarios, ruleset_versions=list(versions),
                            hits_by_rule=dict(sorted(by_rule.items())))
    for level in LEVELS:
        labels = truth[level]
        members: dict[str, set[str]] = {s: set() for s in scenarios}
        for item, scenario in labels.items():
            members[scenario].add(item)
        evaluation.scores[level] = {}
        for detector in DETECTORS:
            found = detected[level][detector]
            false_positives = len(found - labels.keys())
            per = {s: Score(len(found & members[s]), false_positives, len(members[s])) for s in scenarios}
            per[OVERALL] = Score(len(found & labels.keys()), false_positives, len(labels))
            evaluation.scores[level][detector] = per
    families: dict[str, set[str]] = {}
    for account, family in (lookalikes or {}).items():
        if account not in account_labels:
            families.setdefault(family, set()).add(account)
    evaluation.lookalikes = {family: {d: (len(members & detected["account"][d]), len(members)) for d in DETECTORS}
                             for family, members in sorted(families.items())}
    return evaluation


# --------------------------------------------------------------------------- input shapes

HIT_FIELDS = ("ruleset_version", "rule_id", "kind", "mode", "event_id", "account_id")


class InputShapeError(ValueError):
    """A labels or hits document of the wrong shape; the message says what was expected."""


def labels_from_document(data: Any) -> tuple[dict[str, str], dict[str, str]]:
    """(event labels, account labels) from the parsed labels.json that `simulate` writes."""
    expected = 'expected {"events": {event_id: scenario}, "accounts": {account_id: scenario}}'
    if not isinstance(data, dict) or not isinstance(data.get("events"), dict) \
            or not isinstance(data.get("accounts"), dict):
        found = f"an object with keys {', '.join(map(str, list(data)[:6])) or 'none'}" if isinstance(data, dict) \
            else f"JSON {type(data).__name__}"
        raise InputShapeError(f"{expected}, found {found}")
    for part in ("events", "accounts"):
        for key, scenario in data[part].items():
            if not isinstance(scenario, str):
                raise InputShapeError(f"{expected}, but {part}[{key!r}] is {type(scenario).__name__}, not text")
    return dict(data["events"]), dict(data["accounts"])


def check_hit(item: Any) -> dict[str, Any]:
    """A parsed hit line, if it has the fields scoring reads."""
    if not isinstance(item, dict):
        raise InputShapeError(f"not a hit object but JSON {type(item).__name__}")
    missing = [name for name in HIT_FIELDS if not isinstance(item.get(name), str)]
    if missing:
        hint = " (it looks like an event, not a hit)" if "rule_id" not in item and "amount" in item else ""
        raise InputShapeError(f"not a hit{hint}: no text field {', '.join(repr(m) for m in missing)}")
    return item


# --------------------------------------------------------------------------- reports


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


def markdown_table(evaluation: Evaluation, level: str) -> str:
    head = "| scenario | positives | " + " | ".join(f"{d} P / R / F1" for d in DETECTORS) + " |"
    rule = "|---|---:|" + "---|" * len(DETECTORS)
    rows = [head, rule]
    for scenario in [*evaluation.scenarios, OVERALL]:
        cells = []
        for detector in DETECTORS:
            sc = evaluation.score(level, detector, scenario)
            cells.append(f"{_pct(sc.precision)} / {_pct(sc.recall)} / {_pct(sc.f1)}")
        name = f"**{scenario}**" if scenario == OVERALL else scenario
        rows.append(f"| {name} | {evaluation.score(level, 'micro', scenario).positives} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def reading(evaluation: Evaluation) -> list[str]:
    """Sentences that read the numbers: who wins where, and what combining adds. Generated, so
    they never disagree with the table."""
    lines = []
    for level in LEVELS:
        micro_only, macro_only, both_needed, neither = [], [], [], []
        for scenario in evaluation.scenarios:
            r_micro = evaluation.score(level, "micro", scenario).recall or 0.0
            r_macro = evaluation.score(level, "macro", scenario).recall or 0.0
            r_comb = evaluation.score(level, "combined", scenario).recall or 0.0
            if r_comb == 0:
                neither.append(scenario)
            elif r_micro > r_macro and r_micro >= r_comb - 1e-9:
                micro_only.append(f"{scenario} ({_pct(r_micro)} vs {_pct(r_macro)})")
            elif r_macro > r_micro and r_macro >= r_comb - 1e-9:
                macro_only.append(f"{scenario} ({_pct(r_macro)} vs {_pct(r_micro)})")
            else:
                both_needed.append(f"{scenario} (micro {_pct(r_micro)}, macro {_pct(r_macro)}, "
                                   f"combined {_pct(r_comb)})")
        o = {d: evaluation.score(level, d) for d in DETECTORS}
        lines.append(f"**{level.capitalize()} level.** Micro alone: precision {_pct(o['micro'].precision)}, "
                     f"recall {_pct(o['micro'].recall)}, F1 {_pct(o['micro'].f1)}. Macro alone: precision "
                     f"{_pct(o['macro'].precision)}, recall {_pct(o['macro'].recall)}, F1 {_pct(o['macro'].f1)}. "
                     f"Combined: precision {_pct(o['combined'].precision)}, recall {_pct(o['combined'].recall)}, "
                     f"F1 {_pct(o['combined'].f1)}. Composite rules alone: precision "
                     f"{_pct(o['composite'].precision)}, recall {_pct(o['composite'].recall)}.")
        if micro_only:
            lines.append(f"- Micro wins (recall, micro vs macro): {', '.join(micro_only)}.")
        if macro_only:
            lines.append(f"- Macro wins (recall, macro vs micro): {', '.join(macro_only)}.")
        if both_needed:
            lines.append(f"- Only the combination reaches its recall: {', '.join(both_needed)}.")
        if neither:
            lines.append(f"- Caught by neither: {', '.join(neither)}.")
        best_single = max(o["micro"].f1 or 0.0, o["macro"].f1 or 0.0)
        verdict = "beats" if (o["combined"].f1 or 0.0) > best_single + 1e-9 else "does not beat"
        lines.append(f"- Verdict at {level} level: combining {verdict} the better single view on F1 "
                     f"({_pct(o['combined'].f1)} vs {_pct(best_single)}).")
    return lines


def lookalike_table(evaluation: Evaluation) -> str:
    """Legitimate look-alikes flagged per detector (accounts flagged / accounts in the family)."""
    rows = ["| look-alike family | accounts | " + " | ".join(f"{d} flagged" for d in DETECTORS) + " |",
            "|---|---:|" + "---:|" * len(DETECTORS)]
    for family, per in evaluation.lookalikes.items():
        total = next(iter(per.values()))[1]
        rows.append(f"| {family} | {total} | " + " | ".join(str(per[d][0]) for d in DETECTORS) + " |")
    return "\n".join(rows)


def macro_family_score(evaluation: Evaluation, families: Iterable[str], level: str = "account") -> tuple[float, float]:
    """(macro-averaged recall over `families`, precision of the macro detector overall) at `level`."""
    recalls = [evaluation.score(level, "macro", f).recall or 0.0 for f in families if f in evaluation.scenarios]
    precision = evaluation.score(level, "macro").precision
    return (sum(recalls) / len(recalls) if recalls else 0.0, precision if precision is not None else 0.0)


RING_FAMILIES = ("hubless_ring", "identity_cluster")


def _targets(evaluation: Evaluation) -> tuple[list[str], bool]:
    """Cells of the targets table for one seed, and whether every target held."""
    cells, held = [], True
    for level in LEVELS:
        f1 = {d: evaluation.score(level, d).f1 or 0.0 for d in ("micro", "macro", "combined")}
        beats = f1["combined"] > max(f1["micro"], f1["macro"]) + 1e-9
        held &= beats
        cells.append(f"{_pct(f1['micro'])} / {_pct(f1['macro'])} / {_pct(f1['combined'])} "
                     f"{'yes' if beats else '**no**'}")
    recall, precision = macro_family_score(evaluation, RING_FAMILIES)
    ok = recall >= 0.7 and precision >= 0.8
    held &= ok
    cells.append(f"{_pct(recall)} / {_pct(precision)} {'yes' if ok else '**no**'}")
    for level in LEVELS:
        micro = evaluation.score(level, "micro")
        cells.append(f"{_pct(micro.precision)} / {_pct(micro.recall)}")
    return cells, held


def _targets_table(seeds: Mapping[int, Evaluation]) -> list[str]:
    lines = ["| seed | event F1 micro / macro / combined, combined best? | account F1 micro / macro / combined, "
             "combined best? | macro recall on hub-less rings + identity clusters / macro precision (account), "
             ">= 70% / >= 80%? | micro P / R (event) | micro P / R (account) |",
             "|---:|---|---|---|---|---|"]
    for seed, evaluation in seeds.items():
        cells, _ = _targets(evaluation)
        lines.append(f"| {seed} | " + " | ".join(cells) + " |")
    return lines


def _family_table(seeds: Mapping[int, Evaluation]) -> list[str]:
    families = sorted({f for e in seeds.values() for f in e.scenarios})
    lines = ["| family | " + " | ".join(f"seed {s}: micro / macro / combined" for s in seeds) + " |",
             "|---|" + "---|" * len(seeds)]
    for family in [*families, OVERALL]:
        cells = []
        for evaluation in seeds.values():
            if family not in evaluation.scenarios and family != OVERALL:
                cells.append("–")
                continue
            cells.append(" / ".join(_pct(evaluation.score("account", d, family).recall)
                                    for d in ("micro", "macro", "combined")))
        name = "**overall recall**" if family == OVERALL else family
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("| **precision** | " + " | ".join(
        " / ".join(_pct(e.score("account", d).precision) for d in ("micro", "macro", "combined"))
        for e in seeds.values()) + " |")
    return lines


def _lookalikes_by_seed(seeds: Mapping[int, Evaluation]) -> list[str]:
    families = sorted({f for e in seeds.values() for f in e.lookalikes})
    lines = ["| look-alike family | " + " | ".join(f"seed {s}: flagged by combined (micro / macro) of n"
                                                   for s in seeds) + " |",
             "|---|" + "---|" * len(seeds)]
    for family in families:
        cells = []
        for evaluation in seeds.values():
            per = evaluation.lookalikes.get(family)
            cells.append("–" if per is None else
                         f"{per['combined'][0]} ({per['micro'][0]} / {per['macro'][0]}) of {per['combined'][1]}")
        lines.append(f"| {family} | " + " | ".join(cells) + " |")
    return lines


def generalisation_sections(tuning: Mapping[int, Evaluation], held_out: Mapping[int, Evaluation],
                            reference: Mapping[str, Any] | None,
                            reference_runs: Mapping[str, Any] | None = None) -> list[str]:
    """RESULTS.md sections: targets per held-out seed, recall per family and seed, look-alikes,
    the reference producer's ring, and the tuning seeds apart."""
    lines = ["## Held-out seeds: the targets", "",
             f"Seeds {', '.join(map(str, held_out))} were chosen as held-out seeds before any tuning and never "
             f"looked at while tuning; seeds {', '.join(map(str, tuning))} are the tuning seeds (below, apart). "
             "Targets: combined F1 above both single views at event and account level; macro recall "
             "(account level, averaged over the two families) on hub-less rings and identity clusters >= 70% "
             "with macro precision >= 80%.", "",
             *_targets_table(held_out), ""]
    missed = [seed for seed, e in held_out.items() if not _targets(e)[1]]
    lines += ["Every target held on every held-out seed." if not missed else
              f"Targets missed on held-out seeds {', '.join(map(str, missed))} (marked **no** above).", ""]
    lines += ["## Held-out seeds: account-level recall per family", "",
              "Recall of micro / macro / combined per family (its accounts found); the last row is each "
              "detector's account-level precision over all families.", "", *_family_table(held_out), ""]
    lines += ["## Held-out seeds: legitimate look-alikes flagged", "",
              "Normal accounts in look-alike families (offices sharing an IP, households sharing a device, "
              "families sharing a device and a phone, one-off large purchases, customers whose e-mail and phone "
              "vary per transaction): how many any enforce rule "
              "flagged.", "", *_lookalikes_by_seed(held_out), ""]
    if reference is not None:
        dets = reference["detectors"]
        others = dets["combined"]["others"]
        ok = dets["combined"]["ring"] == reference["ring_size"] and len(others) <= 2
        lines += ["## The reference producer's records", "",
                  f"{reference['records']} records of the original producer (`tests/fixtures/seed-producer-sample"
                  ".jsonl`, not tuned on - only checked) replayed through the handler. "
                  f"Its ring (1234-5678-20..30): {dets['combined']['ring']}/{reference['ring_size']} flagged; "
                  f"other accounts flagged: {len(others)}" + (f" ({', '.join(others)})" if others else "")
                  + f" - target 11/11 with at most two others: {'held' if ok else '**missed**'}.", "",
                  "| detector | ring members flagged | other accounts flagged |", "|---|---:|---:|",
                  *[f"| {d} | {v['ring']} | {len(v['others'])} |" for d, v in dets.items()], "",
                  "Per rule (enforce): " + ", ".join(f"`{r}` {v['ring']} ring + {v['others']} others"
                                                     for r, v in reference["rules"].items()) + ".", ""]
    if reference_runs is not None:
        macro = reference_runs["detectors"]["macro"]
        ok = macro["ring"] == reference_runs["ring_size"] and len(macro["others"]) <= 2
        lines += ["## The reference producer's records, three runs", "",
                  f"{reference_runs['records']} records: the sample run three times into one data directory "
                  "(`tests/fixtures/seed-producer-three-runs.jsonl`, built by `tests/seed_runs.py`: times shifted "
                  "an hour per run, the same accounts, the ordinary accounts' e-mails and phones drawn afresh per "
                  "run as the producer does; looked at once when choosing `min_link_share`: see below). Graph rules in "
                  "enforce mode: ring "
                  f"{macro['ring']}/{reference_runs['ring_size']}, other accounts {len(macro['others'])}"
                  + (f" ({', '.join(macro['others'])})" if macro["others"] else "")
                  + f" - target 11/11 with at most two others: {'held' if ok else '**missed**'}.", "",
                  "| detector | ring members flagged | other accounts flagged |", "|---|---:|---:|",
                  *[f"| {d} | {v['ring']} | {len(v['others'])} |" for d, v in reference_runs["detectors"].items()],
                  "", "Per rule (enforce): " + ", ".join(f"`{r}` {v['ring']} ring + {v['others']} others"
                                                         for r, v in reference_runs["rules"].items()) + ".", ""]
    lines += ["## Tuning seeds (for comparison only)", "",
              f"Seeds {', '.join(map(str, tuning))}: the new rules' thresholds and weights were chosen by "
              "looking at these runs only.", "", *_targets_table(tuning), "", *_family_table(tuning), ""]
    return lines
