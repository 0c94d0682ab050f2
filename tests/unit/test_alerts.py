"""The pure alert logic (chalicelib/alerts.py): how a hit opens or joins an alert, severity order,
which new alerts are published, the transitions and their refusals, per-rule precision; and the
alert settings."""

from __future__ import annotations

from dataclasses import fields
from datetime import timedelta

import pytest

from chalicelib.alerts import (
    Alert,
    AlertConflict,
    AlertHit,
    AlertPolicy,
    AlertValueError,
    apply_hit,
    assign,
    check_actor,
    decide,
    precision_by_rule,
)
from chalicelib.settings import Settings, SettingsError
from fraudtools.cli.labels import verdict_labels

POLICY = AlertPolicy(quiet_period=timedelta(minutes=30))
NOW = "2026-12-01T12:00:00.000Z"


def hit(n: int, severity: str = "medium", rule: str = "r1", ts: str = "2026-12-01T10:00:00.000Z",
        account: str = "a") -> AlertHit:
    return AlertHit(f"h{n}", account, rule, severity, ts, f"e{n}")


def test_a_hit_opens_an_alert_and_later_hits_raise_its_severity_never_lower_it() -> None:
    opened = apply_hit(None, hit(1, "high"), POLICY, NOW)
    assert opened.before is None and opened.after.status == "open" and opened.audit.action == "opened"
    joined = apply_hit(opened.after, hit(2, "critical", "r2", "2026-12-01T09:00:00.000Z"), POLICY, NOW).after
    assert (joined.severity, joined.hit_count, joined.rules, joined.version) == ("critical", 2, ("r1", "r2"), 2)
    assert (joined.first_hit_ts, joined.last_hit_ts) == ("2026-12-01T09:00:00.000Z", "2026-12-01T10:00:00.000Z")
    assert apply_hit(joined, hit(3, "low"), POLICY, NOW).after.severity == "critical"
    assert apply_hit(None, hit(4, "weird"), POLICY, NOW).after.severity == "medium"



def test_a_joining_hit_changes_only_its_fields_and_keeps_every_other_field_of_the_alert() -> None:
    # every field set (generically: a field added to Alert is covered too), then a hit joins
    values = {f.name: f"x-{f.name}" for f in fields(Alert)}
    values.update(status="assigned", hit_count=3, severity="low", rules=("r0",), version=7,
                  first_hit_ts="2026-12-01T09:00:00.000Z", last_hit_ts="2026-12-01T09:30:00.000Z")
    latest = Alert(**values)
    after = apply_hit(latest, hit(9, "high", "r2"), POLICY, NOW).after
    changed = {"first_hit_ts", "last_hit_ts", "hit_count", "severity", "rules", "updated_at", "version"}
    assert {name: getattr(after, name) for name in values if name not in changed} == \
        {name: value for name, value in values.items() if name not in changed}
    assert (after.hit_count, after.severity, after.rules, after.updated_at, after.version) == \
        (4, "high", ("r0", "r2"), NOW, 8)
    assert (after.first_hit_ts, after.last_hit_ts) == ("2026-12-01T09:00:00.000Z", "2026-12-01T10:00:00.000Z")

@pytest.mark.parametrize(("severity", "published"), [("low", False), ("medium", False), ("high", True),
                                                     ("critical", True)])
def test_only_new_alerts_of_high_severity_or_above_are_published(severity: str, published: bool) -> None:
    change = apply_hit(None, hit(1, severity), POLICY, NOW)
    assert change.notify is published
    assert apply_hit(change.after, hit(2, "critical"), POLICY, NOW).notify is False  # joining publishes nothing


def test_the_quiet_period_counts_from_the_last_hit_at_close() -> None:
    alert = apply_hit(None, hit(1), POLICY, NOW).after
    closed = decide(alert, "legit", "known customer", "ana", POLICY, NOW).after
    assert closed.quiet_until == "2026-12-01T10:30:00.000Z"
    inside = apply_hit(closed, hit(2, ts="2026-12-01T10:29:59.999Z"), POLICY, NOW)
    assert inside.before == closed and inside.after.status == "closed" and inside.after.hit_count == 2
    after = apply_hit(closed, hit(3, ts="2026-12-01T10:30:00.000Z"), POLICY, NOW)
    assert after.before is None and after.after.alert_id != closed.alert_id and after.supersedes == closed.alert_id


def test_transitions_and_their_refusals() -> None:
    alert = apply_hit(None, hit(1), POLICY, NOW).after
    assigned = assign(alert, "ana@example.com", "lead", NOW)
    assert (assigned.after.status, assigned.audit.changes) == (
        "assigned", {"status": ["open", "assigned"], "assignee": [None, "ana@example.com"]})
    with pytest.raises(AlertValueError, match="assignee"):
        assign(alert, "<script>", "lead", NOW)
    with pytest.raises(AlertValueError, match="verdict"):
        decide(alert, "guilty", None, "ana", POLICY, NOW)
    with pytest.raises(AlertValueError, match="note"):
        decide(alert, "fraud", "x" * 2001, "ana", POLICY, NOW)
    closed = decide(assigned.after, "unsure", None, "ana", POLICY, NOW).after
    with pytest.raises(AlertConflict):
        decide(closed, "fraud", None, "ana", POLICY, NOW)
    with pytest.raises(AlertConflict):
        assign(closed, "bob", "bob", NOW)
    assert check_actor("arn:aws:iam::123456789012:user/ana") == "arn:aws:iam::123456789012:user/ana"


def closed_alert(account: str, rules: tuple[str, ...], verdict: str) -> Alert:
    alert = apply_hit(None, hit(1, account=account, rule=rules[0]), POLICY, NOW).after
    for n, rule in enumerate(rules[1:], 2):
        alert = apply_hit(alert, hit(n, account=account, rule=rule), POLICY, NOW).after
    return decide(alert, verdict, None, "ana", POLICY, NOW).after


def test_precision_per_rule_counts_fraud_against_legit_and_ignores_unsure_and_open() -> None:
    alerts = [closed_alert("a", ("r1", "r2"), "fraud"), closed_alert("b", ("r1",), "legit"),
              closed_alert("c", ("r1",), "unsure"), apply_hit(None, hit(9, account="d", rule="r3"), POLICY, NOW).after]
    by_rule = {p.rule_id: p for p in precision_by_rule(alerts)}
    assert set(by_rule) == {"r1", "r2"}
    assert (by_rule["r1"].fraud, by_rule["r1"].legit, by_rule["r1"].unsure, by_rule["r1"].precision) == (1, 1, 1, 0.5)
    assert by_rule["r2"].precision == 1.0


def test_labels_from_verdicts_any_fraud_wins_and_legit_is_known_negative() -> None:
    alerts = [closed_alert("a", ("r1",), "fraud"), closed_alert("a", ("r1",), "legit"),
              closed_alert("b", ("r1",), "legit"), closed_alert("c", ("r1",), "unsure")]
    labels = verdict_labels(alerts, lambda accounts: {a: [f"{a}-e1", f"{a}-e2"] for a in accounts})
    assert labels["accounts"] == {"a": "fraud"}
    assert labels["events"] == {"a-e1": "fraud", "a-e2": "fraud"}
    assert labels["known_legit"] == {"accounts": ["b"], "events": ["b-e1", "b-e2"]}
    assert labels["verdicts"] == {"fraud": 1, "legit": 2, "unsure": 1}


def test_alert_settings_are_checked_and_the_webhook_secret_is_never_printed() -> None:
    settings = Settings.from_env({"ALERTS_QUIET_PERIOD_SECONDS": "60", "ALERTS_WEBHOOK_URL": "http://127.0.0.1:9/h",
                                  "ALERTS_WEBHOOK_SECRET": "s3cr3t"})
    assert (settings.alerts_backend, settings.alerts_quiet_period_s) == ("sqlite", 60.0)
    assert "s3cr3t" not in repr(settings)
    with pytest.raises(SettingsError, match="ALERTS_BACKEND"):
        Settings.from_env({"ALERTS_BACKEND": "postgres"})
    with pytest.raises(SettingsError, match="ALERTS_WEBHOOK_SECRET"):
        Settings.from_env({"ALERTS_WEBHOOK_URL": "https://example.invalid/hook"})
    with pytest.raises(SettingsError, match="not an HTTP URL"):
        Settings.from_env({"ALERTS_WEBHOOK_URL": "ftp://x", "ALERTS_WEBHOOK_SECRET": "s"})
