from __future__ import annotations

import itertools
import json
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from chalicelib.events import RawRecord, Transaction, decode_record
from fraudtools.simulate import NORMAL, SCENARIOS, START, load_labels, simulate, to_seed_format


@pytest.fixture(scope="module")
def stream():  # type: ignore[no-untyped-def]
    return simulate(seed=11, accounts=120, days=2)


def test_same_seed_same_stream_other_seed_other_stream(stream) -> None:  # type: ignore[no-untyped-def]
    again = simulate(seed=11, accounts=120, days=2)
    assert again.events == stream.events and again.labels == stream.labels
    assert again.account_labels == stream.account_labels
    other = simulate(seed=12, accounts=120, days=2)
    assert other.events != stream.events


def test_every_scenario_is_present_and_labels_are_consistent(stream) -> None:  # type: ignore[no-untyped-def]
    ids = {e["event_id"] for e in stream.events}
    assert len(ids) == len(stream.events)
    assert set(stream.labels) <= ids
    assert set(stream.labels.values()) == set(SCENARIOS)
    by_id = {e["event_id"]: e for e in stream.events}
    for event_id, scenario in stream.labels.items():
        assert stream.account_labels[by_id[event_id]["account_id"]] == scenario
    labelled_accounts = Counter(stream.account_labels.values())
    assert labelled_accounts["shared_ring"] == 10 and labelled_accounts["mule_ring"] == 9
    for account, scenario in stream.account_labels.items():
        assert any(stream.labels.get(e["event_id"]) == scenario for e in stream.events if e["account_id"] == account)
    assert stream.label_of("no-such-event") == NORMAL


def test_events_are_valid_transactions_in_the_period(stream) -> None:  # type: ignore[no-untyped-def]
    for index, event in enumerate(stream.events):
        tx = decode_record(RawRecord(f"s:{index}", str(index), "pk", json.dumps(event).encode()))
        assert isinstance(tx, Transaction), tx
        assert START <= tx.ts < START + timedelta(days=2, hours=1)
    # arrival is time order with at most two seconds of jitter
    times = [datetime.fromisoformat(e["ts"]) for e in stream.events]
    assert all(later >= earlier - timedelta(seconds=2) for earlier, later in itertools.pairwise(times))


def test_normal_behaviour_has_rhythm_and_legitimate_sharing(stream) -> None:  # type: ignore[no-untyped-def]
    normal = [e for e in stream.events if e["event_id"] not in stream.labels]
    by_hour = Counter(datetime.fromisoformat(e["ts"]).hour for e in normal)
    assert by_hour[19] > 3 * by_hour[3]  # evenings are busier than nights
    accounts_per_ip = Counter()
    for ip, accounts in _group(normal, "ip").items():
        accounts_per_ip[ip] = len(accounts)
    assert max(accounts_per_ip.values()) >= 10  # an office or a carrier NAT, legitimately shared
    assert any(len(a) == 2 for a in _group(normal, "device_id").values())  # households share devices


def _group(events, field):  # type: ignore[no-untyped-def]
    out: dict[str, set[str]] = {}
    for e in events:
        out.setdefault(e[field], set()).add(e["account_id"])
    return out


def test_seed_format_round_trips(stream, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    stream.write(tmp_path / "events.jsonl", tmp_path / "labels.json", fmt="seed")
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    assert len(lines) == len(stream.events)
    for index, (line, native) in enumerate(zip(lines, stream.events, strict=True)):
        seed_tx = decode_record(RawRecord(f"s:{index}", str(index), "pk", line.encode()))
        assert isinstance(seed_tx, Transaction)
        assert (seed_tx.event_id, seed_tx.account_id, str(seed_tx.amount), seed_tx.email) == (
            native["event_id"], native["account_id"], native["amount"], native["email"])
        assert abs(seed_tx.ts - datetime.fromisoformat(native["ts"])) < timedelta(milliseconds=1)
    events, accounts = load_labels(tmp_path / "labels.json")
    assert events == stream.labels and accounts == stream.account_labels
    assert to_seed_format(stream.events[0])["object_type"] == "transaction"


def _members(stream, family: str) -> dict[str, list[dict]]:  # type: ignore[no-untyped-def]
    events: dict[str, list[dict]] = {}
    for e in stream.events:
        if stream.account_labels.get(e["account_id"]) == family:
            events.setdefault(e["account_id"], []).append(e)
    return events


def _shared(events: dict[str, list[dict]], fields: tuple[str, ...]) -> dict[tuple[str, str], set[str]]:
    sharing: dict[tuple[str, str], set[str]] = {}
    for account, own in events.items():
        for e in own:
            for name in fields:
                if e.get(name):
                    sharing.setdefault((name, e[name]), set()).add(account)
    return {k: v for k, v in sharing.items() if len(v) > 1}


def test_hubless_rings_link_members_pairwise_in_two_settings(stream) -> None:  # type: ignore[no-untyped-def]
    members = _members(stream, "hubless_ring")
    rings: dict[str, dict[str, list[dict]]] = {}
    for account, events in members.items():
        rings.setdefault(account.split("-")[1][:4], {})[account] = events  # hubring-9300x / -9302x
    assert sorted(len(r) for r in rings.values()) == [6, 8]
    for ring in rings.values():
        links = _shared(ring, ("email", "phone", "device_id", "card_id"))
        assert all(len(accounts) == 2 for accounts in links.values())  # no hub: pairs only
        assert len(links) in (len(ring), len(ring) - 1)  # a cycle or a chain
        kinds = {name for name, _ in links}
        assert len(kinds) >= 2  # links of several kinds
        # connected through the pairs
        seen, todo = set(), [next(iter(ring))]
        while todo:
            account = todo.pop()
            seen.add(account)
            todo += [b for accounts in links.values() if account in accounts for b in accounts if b not in seen]
        assert seen == set(ring)
        assert all(any(float(e["amount"]) >= 900 for e in own) for own in ring.values())  # each cashes out


def test_identity_clusters_reuse_a_ring_members_device_and_phone(stream) -> None:  # type: ignore[no-untyped-def]
    clones = _members(stream, "identity_cluster")
    ring = _members(stream, "hubless_ring")
    assert len(clones) == 7
    ring_devices = {(e["device_id"], e["phone"]) for own in ring.values() for e in own}
    for own in clones.values():
        assert all((e["device_id"], e["phone"]) in ring_devices for e in own)


def test_card_testing_spread_stays_below_the_per_card_threshold(stream) -> None:  # type: ignore[no-untyped-def]
    spread = [e for e in stream.events if stream.labels.get(e["event_id"]) == "card_testing_spread"]
    per_card = Counter(e["card_id"] for e in spread)
    assert len(per_card) == 4 + 6 and max(per_card.values()) <= 6  # card-testing-10m needs more than 8
    assert all(float(e["amount"]) < 5 for e in spread)
    assert {e["merchant_id"] for e in spread} == {"m-online-12", "m-online-13"}


def test_value_bursts_and_one_offs_stand_out_against_habit(stream) -> None:  # type: ignore[no-untyped-def]
    bursts = _members(stream, "value_burst")
    assert len(bursts) == 4
    for own in bursts.values():
        labelled = [e for e in own if stream.labels.get(e["event_id"]) == "value_burst"]
        normal = [float(e["amount"]) for e in own if e not in labelled]
        assert len(labelled) >= 2 and normal
        assert min(float(e["amount"]) for e in labelled) > 4 * sum(normal) / len(normal)


def test_lookalikes_are_normal_and_tagged(stream) -> None:  # type: ignore[no-untyped-def]
    families = Counter(stream.lookalikes.values())
    assert families["office_ip"] >= 20 and families["family"] >= 2 + 3 + 3 and families["one_off_purchase"] == 4
    assert not set(stream.lookalikes) & set(stream.account_labels)
    by_account: dict[str, set[tuple[str, str]]] = {}
    for e in stream.events:
        if stream.lookalikes.get(e["account_id"]) == "family":
            by_account.setdefault(e["account_id"], set()).add((e["phone"], e["device_id"]))
    shared = Counter(pair for pairs in by_account.values() for pair in pairs)
    assert max(shared.values()) >= 3  # families share a phone and a device


def test_varying_identifiers_draw_an_email_and_phone_per_transaction_with_chance_collisions(stream) -> None:  # type: ignore[no-untyped-def]
    members = {a for a, family in stream.lookalikes.items() if family == "varying_identifiers"}
    assert len(members) >= 10 and not members & set(stream.account_labels)
    emails: dict[str, set[str]] = {}
    users: dict[str, set[str]] = {}
    for e in stream.events:
        if e["account_id"] in members:
            assert e["event_id"] not in stream.labels  # normal, never labelled fraud
            emails.setdefault(e["account_id"], set()).add(e["email"])
            users.setdefault(e["email"], set()).add(e["account_id"])
    assert sum(len(v) for v in emails.values()) / len(emails) > 1.5  # e-mails vary per account
    assert sum(1 for v in users.values() if len(v) > 1) > len(users) / 2  # most are shared by chance


def test_scam_payees_are_new_and_paid_by_unrelated_customers_within_hours(stream) -> None:  # type: ignore[no-untyped-def]
    by_payee: dict[str, list[dict]] = {}
    for e in stream.events:
        if stream.labels.get(e["event_id"]) == "scam_payee":
            by_payee.setdefault(e["merchant_id"], []).append(e)
    assert len(by_payee) == 2
    for payee, payments in by_payee.items():
        times = sorted(datetime.fromisoformat(e["ts"]) for e in payments)
        assert times[-1] - times[0] <= timedelta(hours=4)
        assert all(100 <= float(e["amount"]) < 1000 for e in payments)
        payers = {e["account_id"] for e in payments}
        assert len(payers) == len(payments) >= 10  # each customer pays once
        assert len({e["ip"] for e in payments}) > len(payments) / 2  # their own IPs
        assert all(stream.account_labels[a] == "scam_payee" for a in payers)
        # nobody paid the payee before the scam
        assert all(e["merchant_id"] != payee for e in stream.events if stream.labels.get(e["event_id"]) is None)


def test_regular_payees_have_history_and_travellers_fly_at_real_speeds(stream) -> None:  # type: ignore[no-untyped-def]
    regular = {a for a, f in stream.lookalikes.items() if f == "regular_payee"}
    travellers = {a for a, f in stream.lookalikes.items() if f == "traveller"}
    assert len(regular) >= 20 and len(travellers) == 12
    first_payment: dict[str, datetime] = {}
    for e in stream.events:
        if e["merchant_id"].startswith("m-payee-") and e["account_id"] not in regular:
            ts = datetime.fromisoformat(e["ts"])
            first_payment[e["merchant_id"]] = min(ts, first_payment.get(e["merchant_id"], ts))
    for e in stream.events:
        if e["account_id"] in regular and e["merchant_id"] in first_payment:
            assert first_payment[e["merchant_id"]] < datetime.fromisoformat(e["ts"]) - timedelta(hours=3)
    from chalicelib.rules.geo_velocity import haversine_km

    for account in travellers:
        located = [(datetime.fromisoformat(e["ts"]), e["lat"], e["lon"]) for e in stream.events
                   if e["account_id"] == account]
        located.sort()
        moves = [(b[0] - a[0], haversine_km(a[1], a[2], b[1], b[2])) for a, b in itertools.pairwise(located)
                 if haversine_km(a[1], a[2], b[1], b[2]) > 100]
        assert len(moves) == 1  # one flight to another continent, no way back within the stream
        elapsed, distance = moves[0]
        assert distance > 2500 and elapsed.total_seconds() / 3600 >= 0.4 + distance / 940


def test_a_lead_in_comes_first_unlabelled_and_leaves_the_evaluated_period_as_it_was(stream) -> None:  # type: ignore[no-untyped-def]
    led = simulate(seed=11, accounts=120, days=2, lead_in_days=30)
    assert led.lead_in_events > 120 * 30  # about the customers' daily activity, for a month
    lead, period = led.events[:led.lead_in_events], led.events[led.lead_in_events:]
    assert period == stream.events and led.labels == stream.labels and led.account_labels == stream.account_labels
    assert all(e["event_id"].startswith("sim-11-lead-") and e["event_id"] not in led.labels for e in lead)
    times = [datetime.fromisoformat(e["ts"]) for e in lead]
    assert START - timedelta(days=30) <= min(times) and max(times) < START
    # the customers only: no ring, mule, traveller or other account the period brings new
    assert all(e["account_id"].startswith("acct-") for e in lead)
    payees = Counter(e["merchant_id"] for e in lead)
    assert payees["m-payee-utility"] >= 30 * 6 and payees["m-payee-school"] >= 30 * 6
    assert not any(m.startswith("m-payee-new") for m in payees)  # the scam payees are new


@pytest.mark.parametrize("sizes", [dict(accounts=10), dict(days=0.5), dict(days=float("nan")), dict(days=float("inf")),
                                   dict(days=400), dict(lead_in_days=-1), dict(lead_in_days=1e-7),
                                   dict(lead_in_days=float("nan")), dict(lead_in_days=float("inf"))])
def test_simulate_refuses_sizes_it_cannot_honour_with_a_reason(sizes):
    with pytest.raises(ValueError, match=r"simulate needs|a lead-in is"):
        simulate(**{"accounts": 50, "days": 1.0, **sizes})


@pytest.mark.parametrize("command", ["simulate --out-dir {tmp}", "demo --data-dir {tmp}", "results --out {tmp}/r.md"])
@pytest.mark.parametrize("option", ["--days nan", "--days inf", "--days 0", "--lead-in-days -5",
                                    "--lead-in-days 1e-7", "--lead-in-days inf",
                                    "--accounts 3", "--days many"])
def test_the_commands_answer_a_bad_size_with_a_usage_error_not_a_traceback(command, option, tmp_path, capsys):
    from fraudtools.cli.parser import main

    with pytest.raises(SystemExit) as exited:
        main([*command.format(tmp=tmp_path).split(), *option.split()])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert f"argument {option.split()[0]}:" in error and "Traceback" not in error
