from __future__ import annotations

import itertools
import json
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from chalicelib.events import RawRecord, Transaction, decode_record
from chalicelib.simulate import NORMAL, SCENARIOS, START, load_labels, simulate, to_seed_format


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
