"""What the fault tests share: building streams, running and killing `replay` processes, and
reading what a data directory holds - semantically, through public behaviour only (the CLI, the
files it writes, the time-series table read with sqlite3 read-only, the graph through Gremlin), so
the tests survive a rewrite of the hot path and of the graph store.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import chalicelib.rules  # noqa: F401 - registers the built-in kinds
from chalicelib.rules.registry import kinds
from tests.conftest import PROJECT

RULES = PROJECT / "rules.yaml"
#: hit kinds judged on the graph: their results depend on how the stream was cut into batches
MACRO_KINDS = frozenset(kind for kind, (_, rule_class) in kinds().items() if rule_class.view != "micro")
POISON_LINES = (
    "this line is not JSON",
    '{"account_id": "acct-poison", "amount": "lots", "ts": "2026-11-02T00:00:00+00:00"}',
    '{"amount": 5}',
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev")
#: The embedded graph the replays write (GRAPH_BACKEND, read by the CLI as here) and its file.
GRAPH_BACKEND = os.environ.get("GRAPH_BACKEND", "sqlite") if os.environ.get("GRAPH_BACKEND") == "gremlite" else "sqlite"
GRAPH_FILE = {"sqlite": "entity-graph.sqlite", "gremlite": "graph.sqlite"}[GRAPH_BACKEND]
STORE_FILES = ("timeseries.sqlite", GRAPH_FILE, "alerts.sqlite")


# --------------------------------------------------------------------------- streams


def simulated_lines(tmp: Path, *, accounts: int, days: float, seed: int = 7) -> list[str]:
    """A deterministic labelled stream from `simulate`, one native JSON record per line."""
    result = cli("simulate", "--out-dir", str(tmp), "--seed", str(seed), "--accounts", str(accounts),
                 "--days", str(days))
    assert result.returncode == 0, result.stderr
    return (tmp / "events.jsonl").read_text().splitlines()


def with_faults(lines: Sequence[str]) -> list[str]:
    """The stream with poison lines and one redelivered (repeated) event spread through it."""
    out = list(lines)
    for i, poison in enumerate(POISON_LINES):  # one near the start, so nearly every kill comes after one
        out.insert(5 + i * len(out) // len(POISON_LINES), poison)
    out.insert(2 * len(out) // 3, lines[len(lines) // 2])
    return out


def envelopes(lines: Iterable[tuple[int, str]]) -> str:
    """Kinesis envelope lines with the given sequence numbers, so records of several files stay
    distinct the way records of different shards of one stream are."""
    return "".join(json.dumps({"sequenceNumber": f"{seq:021d}", "partitionKey": "fault", "data": text}) + "\n"
                   for seq, text in lines)


def event_id_of(line: str) -> str | None:
    try:
        item = json.loads(line)
    except json.JSONDecodeError:
        return None
    return item.get("event_id") if isinstance(item, dict) else None


# --------------------------------------------------------------------------- processes


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chalicelib", *args], cwd=PROJECT, capture_output=True,
                          text=True, timeout=timeout)


def replay_args(events: Path, data_dir: Path, out: Path, batch_size: int, verbose: bool = False) -> list[str]:
    return [sys.executable, "-m", "chalicelib", *(["-v"] if verbose else []), "replay", "--rules", str(RULES),
            "--events", str(events), "--data-dir", str(data_dir), "--out", str(out), "--batch-size", str(batch_size)]


@dataclass
class Replay:
    """A `replay` subprocess whose output goes to files (a full pipe must never stall it)."""

    process: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, events: Path, data_dir: Path, out: Path, batch_size: int, verbose: bool = False,
              env: Mapping[str, str] | None = None) -> Replay:
        """`env`: settings added to this process's environment for the replay."""
        log = out.with_suffix(".log")
        with log.open("wb") as sink:
            process = subprocess.Popen(replay_args(events, data_dir, out, batch_size, verbose), cwd=PROJECT,
                                       stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        return cls(process, log)

    def finish(self, timeout: float = 300) -> dict[str, Any]:
        """Wait for a clean exit; the JSON summary the command prints last."""
        code = self.process.wait(timeout)
        text = self.log.read_text(errors="replace")
        assert code == 0, f"replay exited with {code}:\n{text[-3000:]}"
        assert "Traceback" not in text, text[-3000:]
        return dict(json.loads(text.strip().splitlines()[-1]))

    def kill_when_logged(self, text: str, timeout: float = 300) -> None:
        """SIGKILL the process as soon as its log shows `text` (run it with verbose=True)."""
        deadline = time.monotonic() + timeout
        while text not in self.log.read_text(errors="replace"):
            assert self.process.poll() is None, f"replay ended before logging {text!r}:\n{self.log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"replay never logged {text!r}"
            time.sleep(0.005)
        self.process.send_signal(signal.SIGKILL)
        assert self.process.wait(timeout) == -signal.SIGKILL

    def kill_when_stored(self, data_dir: Path, at_least: int, delay_ms: float, timeout: float = 300) -> int:
        """SIGKILL the process once the time-series store holds `at_least` events, `delay_ms` later
        (so the kill lands anywhere in a batch). Returns the events stored when it died."""
        deadline = time.monotonic() + timeout
        while stored_events(data_dir) < at_least:
            assert self.process.poll() is None, f"replay ended before the kill point:\n{self.log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "kill point never reached"
            time.sleep(0.005)
        time.sleep(delay_ms / 1000)
        self.process.send_signal(signal.SIGKILL)
        code = self.process.wait(timeout)
        assert code == -signal.SIGKILL, f"replay finished (exit {code}) before it could be killed"
        return stored_events(data_dir)


# --------------------------------------------------------------------------- reading a data directory


def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)


def stored_events(data_dir: Path) -> int:
    """Events committed to the time-series store so far (0 while it does not exist yet)."""
    path = data_dir / "timeseries.sqlite"
    if not path.exists():
        return 0
    try:
        db = _read_only(path)
        try:
            return int(db.execute("SELECT COUNT(*) FROM events").fetchone()[0])
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def stored_event_ids(data_dir: Path) -> set[str]:
    db = sqlite3.connect(data_dir / "timeseries.sqlite", timeout=30)
    try:
        return {row[0] for row in db.execute("SELECT event_id FROM events")}
    finally:
        db.close()


def stored_and_unjudged(data_dir: Path) -> tuple[int, int]:
    """After a kill: (events stored, of which not judged). A read-write connection, because the
    store may first need recovering from the kill, as the next run would do anyway."""
    db = sqlite3.connect(data_dir / "timeseries.sqlite", timeout=30)
    try:
        stored, judged = db.execute("SELECT COUNT(*), COALESCE(SUM(judged), 0) FROM events").fetchone()
        return int(stored), int(stored) - int(judged)
    finally:
        db.close()


def read_alerts(data_dir: Path) -> dict[str, tuple[Any, ...]]:
    db = _read_only(data_dir / "alerts.sqlite")
    try:
        hits: dict[str, list[str]] = {}
        for alert_id, hit_id in db.execute("SELECT alert_id, hit_id FROM alert_hits ORDER BY hit_id"):
            hits.setdefault(alert_id, []).append(hit_id)
        out = {}
        for alert_id, body in db.execute("SELECT alert_id, body FROM alerts"):
            alert = json.loads(body)
            out[alert_id] = (alert["account_id"], alert["hit_count"], alert["severity"], tuple(alert["rules"]),
                             tuple(hits.get(alert_id, [])))
        return out
    finally:
        db.close()


def integrity(path: Path) -> str:
    db = _read_only(path)
    try:
        return "; ".join(str(row[0]) for row in db.execute("PRAGMA integrity_check"))
    finally:
        db.close()


def jsonl_by_id(path: Path, id_field: str) -> tuple[dict[str, dict[str, Any]], Counter[str]]:
    """The items of a JSON-lines file by id, and how often each id occurs (a torn last line, the
    trace of a kill mid-append, is not an item)."""
    items: dict[str, dict[str, Any]] = {}
    times: Counter[str] = Counter()
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                continue
            items[str(item[id_field])] = item
            times[str(item[id_field])] += 1
    return items, times


@dataclass
class GraphContents:
    """The graph as sets: vertices by (label, key), relationships by (account, label, target
    label, target key), hit edges by hit_id - each with its properties and how often it occurs."""

    vertices: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    vertex_times: Counter[tuple[str, str]] = field(default_factory=Counter)
    relationships: dict[tuple[str, str, str, str], dict[str, Any]] = field(default_factory=dict)
    relationship_times: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)
    hit_edges: dict[str, dict[str, Any]] = field(default_factory=dict)
    hit_edge_times: Counter[str] = field(default_factory=Counter)

    def use_counts(self) -> dict[tuple[str, str, str, str], int]:
        """Each relationship's use count (the number of distinct events that used it)."""
        return {ref: int(props["use_count"]) for ref, props in self.relationships.items()}

    def doubled(self) -> dict[str, list[Any]]:
        """Everything that occurs more than once (empty when nothing is doubled)."""
        found = {name: sorted(k for k, n in times.items() if n > 1) for name, times in
                 (("vertices", self.vertex_times), ("relationships", self.relationship_times),
                  ("hit edges", self.hit_edge_times))}
        return {name: keys for name, keys in found.items() if keys}


def read_graph(data_dir: Path) -> GraphContents:
    return _read_sqlite_graph(data_dir) if GRAPH_BACKEND == "sqlite" else _read_gremlite_graph(data_dir)


def _read_sqlite_graph(data_dir: Path) -> GraphContents:
    db = _read_only(data_dir / GRAPH_FILE)
    db.row_factory = sqlite3.Row
    graph = GraphContents()
    try:
        for row in db.execute("SELECT * FROM graph_vertices"):
            ref = (row["label"], row["key"])
            graph.vertices[ref] = {"key": row["key"], "first_seen": row["first_seen"]}
            graph.vertex_times[ref] += 1
        for row in db.execute("SELECT * FROM graph_relationships"):
            rel = (row["account"], row["label"], row["target_label"], row["target_key"])
            graph.relationships[rel] = {"first_seen": row["first_seen"], "last_seen": row["last_seen"],
                                        "use_count": row["use_count"]}
            graph.relationship_times[rel] += 1
        for row in db.execute("SELECT * FROM graph_hits"):
            props = dict(row)
            props["edge"] = (row["label"], row["from_key"], row["to_label"], row["to_key"])
            graph.hit_edges[row["hit_id"]] = props
            graph.hit_edge_times[row["hit_id"]] += 1
    finally:
        db.close()
    return graph


def _read_gremlite_graph(data_dir: Path) -> GraphContents:
    from gremlin_python.process.graph_traversal import __

    from chalicelib.stores import GremliteConnection

    connection = GremliteConnection(data_dir / GRAPH_FILE)
    try:
        g = connection.g
        vertices = connection.run(g.V().project("label", "key", "props").by(__.label()).by(__.values("key"))
                                  .by(__.value_map()), "list")
        edges = connection.run(g.E().project("label", "from", "to_label", "to", "props").by(__.label())
                               .by(__.out_v().values("key")).by(__.in_v().label()).by(__.in_v().values("key"))
                               .by(__.value_map()), "list")
    finally:
        connection.close()
    graph = GraphContents()
    for v in vertices:
        ref = (v["label"], v["key"])
        graph.vertices[ref] = _flat(v["props"])
        graph.vertex_times[ref] += 1
    for e in edges:
        props = _flat(e["props"])
        if "hit_id" in props:
            graph.hit_edges[props["hit_id"]] = {**props, "edge": (e["label"], e["from"], e["to_label"], e["to"])}
            graph.hit_edge_times[props["hit_id"]] += 1
        else:
            ref = (e["from"], e["label"], e["to_label"], e["to"])
            graph.relationships[ref] = props
            graph.relationship_times[ref] += 1
    return graph


def _flat(props: dict[str, Any]) -> dict[str, Any]:
    # vertex value maps hold lists (multi-properties); edge value maps hold plain values
    return {k: (v[0] if isinstance(v, list) and len(v) == 1 else v) for k, v in props.items()}


@dataclass
class DataDir:
    """Everything a data directory holds after a run, read semantically."""

    events: dict[str, dict[str, Any]]  # event_id -> the stored row, every column (arrival seq, judged mark)
    event_times: Counter[str]
    dead_letters: dict[str, dict[str, Any]]
    dead_letter_times: Counter[str]
    graph: GraphContents
    integrity: dict[str, str]
    #: alert id -> (account, hit count, severity, rules, its hits' ids): what the alerts say,
    #: without the wall-clock times they were written at
    alerts: dict[str, tuple[Any, ...]]

    @staticmethod
    def read_events(data_dir: Path) -> dict[str, dict[str, Any]]:
        db = sqlite3.connect(data_dir / "timeseries.sqlite", timeout=30)  # may recover from a kill first
        db.row_factory = sqlite3.Row
        try:
            return {row["event_id"]: dict(row) for row in db.execute("SELECT * FROM events")}
        finally:
            db.close()

    @classmethod
    def read(cls, data_dir: Path) -> DataDir:
        db = _read_only(data_dir / "timeseries.sqlite")
        db.row_factory = sqlite3.Row
        try:
            rows = [dict(row) for row in db.execute("SELECT * FROM events")]
        finally:
            db.close()
        dead, dead_times = jsonl_by_id(data_dir / "dead-letters.jsonl", "record_id")
        return cls(
            events={row["event_id"]: row for row in rows},
            event_times=Counter(row["event_id"] for row in rows),
            dead_letters=dead,
            dead_letter_times=dead_times,
            graph=read_graph(data_dir),
            integrity={name: integrity(data_dir / name) for name in STORE_FILES},
            alerts=read_alerts(data_dir),
        )

    def unjudged(self) -> list[str]:
        return sorted(event_id for event_id, row in self.events.items() if not row["judged"])

    def arrival_order(self) -> list[str]:
        return [event_id for event_id, _ in sorted(self.events.items(), key=lambda item: item[1]["seq"])]


def assert_same_stores(after: DataDir, hits: dict[str, dict[str, Any]], clean: DataDir,
                       clean_hits: dict[str, dict[str, Any]]) -> None:
    """Nothing doubled, no corruption, and identical to the clean run: every stored row (arrival
    order and judged marks included), every dead letter, every hit (in the sinks and as graph
    edges), every vertex, every relationship and its first_seen. Not compared: relationships'
    last_seen (refreshed at most hourly and, until the graph-timestamps fix, not after a restart)."""
    assert after.integrity == dict.fromkeys(STORE_FILES, "ok")
    assert max(after.event_times.values()) == 1
    assert max(after.dead_letter_times.values(), default=1) == 1
    assert after.graph.doubled() == {}
    assert after.alerts == clean.alerts  # no hit counted twice or lost, the same alerts opened
    assert after.unjudged() == []
    assert after.events == clean.events
    assert after.dead_letters == clean.dead_letters
    assert sorted(hits) == sorted(clean_hits)
    assert hits == clean_hits
    assert after.graph.hit_edges == clean.graph.hit_edges
    assert after.graph.vertices == clean.graph.vertices
    assert sorted(after.graph.relationships) == sorted(clean.graph.relationships)
    assert {ref: props["first_seen"] for ref, props in after.graph.relationships.items()} == \
        {ref: props["first_seen"] for ref, props in clean.graph.relationships.items()}
    # use counts: each event counted once, however often its batch was written (DESIGN.md "Link strength")
    assert after.graph.use_counts() == clean.graph.use_counts()
