"""The hostile-record corpus (tests/fixtures/hostile-records/) mixed with valid records, through
`replay` and through the Chalice Kinesis handler: every hostile record is dead-lettered with its
reason, every valid record is accepted exactly once, and nothing stops the run."""

from __future__ import annotations

import base64
import importlib.util
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.events import MAX_REASON_CHARS
from chalicelib.stores import SQLiteTimeSeriesStore
from fraudtools.cli import main
from fraudtools.record_files import split_lines
from tests.conftest import FIXTURES, PROJECT

CORPUS = FIXTURES / "hostile-records"
MANIFEST: list[dict[str, Any]] = json.loads((CORPUS / "manifest.json").read_text())
LINES = [line for _, line in split_lines((CORPUS / "records.jsonl").read_bytes().split(b"\n"))]


def valid(i: int) -> bytes:
    return json.dumps({"event_id": f"valid-{i}", "account_id": f"acct-{i % 7}", "amount": 10 + i,
                       "ts": f"2026-11-01T10:{i // 60:02d}:{i % 60:02d}Z"}).encode()


def test_corpus_is_what_its_generator_says() -> None:
    spec = importlib.util.spec_from_file_location("make_corpus", CORPUS / "make_corpus.py")
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    assert generator.build() == ((CORPUS / "records.jsonl").read_bytes(), (CORPUS / "manifest.json").read_text())
    assert len(LINES) == len(MANIFEST) >= 43 + 10
    assert sum(m["expect"] == "dead-letter" for m in MANIFEST) >= 43
    kinds = {m["name"] for m in MANIFEST}
    for kind in ("truncated-json", "json-array", "amount-1e400", "amount-nan-literal", "account-10k-chars",
                 "attributes-33", "ts-year-9999", "raw-nul-byte", "record-over-32kib", "invalid-utf8-byte",
                 "envelope-lone-surrogate", "escaped-lone-high-surrogate", "bare-cr-between-tokens",
                 "u2028-u2029-inside-string", "line-over-64kib"):
        assert kind in kinds


def expected_accepted() -> Counter[str]:
    return Counter([f"valid-{i}" for i in range(len(MANIFEST))]
                   + [m["event_id"] for m in MANIFEST if m["expect"] == "accept"])


def stored_event_ids(data_dir: Path) -> Counter[str]:
    store = SQLiteTimeSeriesStore(data_dir / "timeseries.sqlite")
    try:
        return Counter(row[2] for row in store.dump())
    finally:
        store.close()


def check_letter(meta: dict[str, Any], letter: dict[str, Any] | None, reason_key: str = "reason") -> None:
    assert letter is not None, f"{meta['name']} was not dead-lettered"
    assert meta[reason_key] in letter["reason"], (meta["name"], letter["reason"])
    assert len(letter["reason"]) <= MAX_REASON_CHARS


def test_replay_dead_letters_every_hostile_record_and_accepts_every_valid_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # valid record, corpus record, valid record, ... - physical line numbers 1, 2, 3, ...
    events = tmp_path / "mixed.jsonl"
    events.write_bytes(b"".join(valid(i) + b"\n" + line + b"\n" for i, line in enumerate(LINES)))
    data = tmp_path / "data"
    code = main(["replay", "--rules", str(PROJECT / "rules.yaml"), "--events", str(events), "--data-dir", str(data),
                 "--out", str(tmp_path / "hits.jsonl"), "--batch-size", "25"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    hostile = [m for m in MANIFEST if m["expect"] == "dead-letter"]
    assert summary["events"] == 2 * len(LINES)
    assert summary["poison"] == len(hostile)
    assert summary["accepted"] == sum(expected_accepted().values()) and summary["duplicates"] == 0

    letters = {d["sequence_number"]: d for d in map(json.loads, (data / "dead-letters.jsonl").read_text().splitlines())}
    assert len(letters) == len(hostile)
    for index, (meta, line) in enumerate(zip(MANIFEST, LINES, strict=True)):
        sequence = meta.get("envelope_sequence") or f"{2 * index + 2:021d}"
        if meta["expect"] == "accept":
            assert sequence not in letters, meta["name"]
            continue
        letter = letters.get(sequence)
        check_letter(meta, letter)
        assert letter is not None
        if "envelope_sequence" not in meta:  # the evidence: the line's bytes as they were
            assert base64.b64decode(letter["data_base64"]) == line[:64 * 1024]
    assert stored_event_ids(data) == expected_accepted()


def test_handler_dead_letters_every_hostile_record_and_accepts_every_valid_one(handler_client: Client,
                                                                               tmp_path: Path) -> None:
    bodies = [body for i, line in enumerate(LINES) for body in (valid(i), line)]
    totals: Counter[str] = Counter()
    for start in range(0, len(bodies), 40):
        event = handler_client.events.generate_kinesis_event(message_bodies=bodies[start:start + 40])
        for offset, record in enumerate(event["Records"]):
            record["kinesis"]["sequenceNumber"] = str(start + offset + 1)
            record["eventID"] = f"shardId-000000000000:{start + offset + 1}"
        report = handler_client.lambda_.invoke("on_transactions", event).payload
        assert report["batchItemFailures"] == [], report["error"]
        totals.update(accepted=report["accepted"], poison=report["poison"], duplicates=report["duplicates"])

    hostile = [m for m in MANIFEST if m["expect"] == "dead-letter"]
    assert totals["poison"] == len(hostile) and totals["duplicates"] == 0
    assert totals["accepted"] == sum(expected_accepted().values())
    letters = {d["sequence_number"]: d
               for d in map(json.loads, (tmp_path / "dead-letters.jsonl").read_text().splitlines())}
    assert len(letters) == len(hostile)
    for index, (meta, line) in enumerate(zip(MANIFEST, LINES, strict=True)):
        sequence = str(2 * index + 2)
        if meta["expect"] == "accept":
            assert sequence not in letters, meta["name"]
            continue
        letter = letters.get(sequence)
        check_letter(meta, letter, "handler_reason" if "handler_reason" in meta else "reason")
        assert letter is not None and base64.b64decode(letter["data_base64"]) == line[:64 * 1024]
    assert stored_event_ids(tmp_path) == expected_accepted()
