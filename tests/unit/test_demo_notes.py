"""The demo says which rules were warming up, so a silent rule is not read as a miss."""

from pathlib import Path

from chalicelib.rules import load_rules_file
from fraudtools.cli.demo import warm_up_notes

RULES = load_rules_file(Path(__file__).resolve().parents[2] / "rules.yaml")


def test_without_a_lead_in_the_new_payee_rule_is_named_silent_for_the_whole_run():
    notes = warm_up_notes(RULES, lead_in_days=0, days=3)
    assert len(notes) == 1
    assert notes[0].startswith("warming up: new-payee-fanout-3h ")
    assert "30-day window" in notes[0] and "the whole run" in notes[0]
    assert "--lead-in-days 30" in notes[0]


def test_a_partial_lead_in_names_the_silent_days():
    notes = warm_up_notes(RULES, lead_in_days=28, days=3)
    assert len(notes) == 1 and "its first 2 of 3 days" in notes[0]


def test_a_lead_in_covering_the_window_needs_no_note():
    assert warm_up_notes(RULES, lead_in_days=30, days=3) == []
