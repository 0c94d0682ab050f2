"""Running records through the engine for the commands: the embedded pipeline, Lambda's
redelivery loop (`stream_through`), the real handler on embedded stores, progress and input helpers."""

from __future__ import annotations

import logging
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chalicelib import wiring
from chalicelib.lambda_response import MAX_REDELIVERIES, redelivery_point
from chalicelib.pipeline import Pipeline
from chalicelib.retry import Backoff
from chalicelib.rules import RulesError, RuleSet, load_rules_file
from chalicelib.settings import GraphBackend, Settings, rules_plugins_allowed
from chalicelib.stores import (
    DeadLetterSink,
    JsonLinesDeadLetterSink,
)
from fraudtools.record_files import (
    FileItem,
    RefusedLine,
    StreamRecord,
    batched,
    kinesis_event,
)

#: Lambda redelivers a failed batch at once; locally the wait follows the retry policy.
REDELIVERY_BACKOFF = Backoff(MAX_REDELIVERIES + 1, base_delay_s=0.1, max_delay_s=2.0)
_redelivery_rng = random.Random()


@dataclass
class RunTotals:
    events: int = 0
    accepted: int = 0
    duplicates: int = 0
    poison: int = 0
    hits: Counter[str] = field(default_factory=Counter)
    shadow_hits: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {"events": self.events, "accepted": self.accepted, "duplicates": self.duplicates,
                "poison": self.poison, "hits": dict(sorted((self.hits + self.shadow_hits).items()))}


def embedded_pipeline(ruleset: RuleSet, data_dir: Path, hits_path: Path,
                      dead_letters_path: Path | None = None) -> Pipeline:
    """A pipeline on embedded stores in `data_dir` with a fixed rule set and the given hit and
    dead-letter files (replay, the scenario tests); the other settings come from the environment."""
    return wiring.embedded_pipeline(Settings.from_env(), ruleset, data_dir, hits_path, dead_letters_path)


def embedded_graph_backend(settings: Settings) -> GraphBackend:
    """The embedded graph for local runs: the one GRAPH_BACKEND names if embedded (sqlite, gremlite), else sqlite."""
    return "gremlite" if settings.graph_backend == "gremlite" else "sqlite"


Deliver = Callable[[dict[str, Any]], Mapping[str, Any]]


def stream_through(deliver: Pipeline | Deliver, records: Sequence[FileItem], batch_size: int,
                   on_batch: Callable[[int], None] = lambda n: None, *,
                   dead_letters: DeadLetterSink | None = None) -> RunTotals:
    """Feed records in Kinesis-shaped batches to a pipeline (or to a Lambda handler), redelivering
    from a reported failure the way Lambda's event source mapping does. Lines the file reader
    refused go to `dead_letters` (the pipeline's own sink by default) and count as poison."""
    handler: Deliver = deliver.process_kinesis_event if isinstance(deliver, Pipeline) else deliver
    if isinstance(deliver, Pipeline):
        dead_letters = dead_letters or deliver.dead_letters
    totals = RunTotals()
    started = time.perf_counter()
    for batch in batched(records, batch_size):
        refused = [r for r in batch if isinstance(r, RefusedLine)]
        if refused:
            if dead_letters is None:
                raise ValueError("refused lines need a dead-letter sink")
            dead_letters.write([r.to_poison() for r in refused])
            totals.poison += len(refused)
        remaining = [r for r in batch if isinstance(r, StreamRecord)]
        for attempt in range(REDELIVERY_BACKOFF.attempts):
            if not remaining:
                break
            report = handler(kinesis_event(remaining))
            totals.accepted += report["accepted"]
            totals.duplicates += report["duplicates"] if attempt == 0 else 0
            totals.poison += report["poison"] if attempt == 0 else 0
            totals.hits.update(report["hits"])
            totals.shadow_hits.update(report["shadow_hits"])
            failed_from = redelivery_point(report)
            if failed_from is None:
                break
            remaining = [r for r in remaining if int(r.sequence_number) >= int(failed_from)]
            time.sleep(REDELIVERY_BACKOFF.delay(attempt, _redelivery_rng))
        else:
            raise SystemExit(f"error: batch starting at {batch[0].sequence_number} still failing after "
                             f"{MAX_REDELIVERIES} redeliveries: {report['error']}")
        totals.events += len(batch)
        totals.batches += 1
        on_batch(len(batch))
    totals.seconds = time.perf_counter() - started
    return totals


@contextmanager
def progress_bar(total: int | None, label: str) -> Iterator[Callable[[int], None]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), transient=True, console=_stderr_console()) as progress:
        task = progress.add_task(label, total=total)
        yield lambda n: progress.advance(task, n)


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def load_rules_or_exit(path: Path) -> RuleSet:
    try:
        return load_rules_file(path, plugins_allowed=rules_plugins_allowed())  # the tools read the setting
    except RulesError as exc:
        print(f"error: {path} is not a valid rules file:\n{exc}", file=sys.stderr)
        raise SystemExit(1) from None


@contextmanager
def data_directory(given: Path | None) -> Iterator[Path]:
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        yield given
        return
    temporary = Path(tempfile.mkdtemp(prefix="fraud-replay-"))
    try:
        yield temporary
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


class InputFileError(Exception):
    """An input file that is missing or of the wrong kind; the message says what to do."""


def read_input_text(path: Path, hint: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputFileError(f"{path} does not exist; {hint}") from None
    except UnicodeDecodeError:
        raise InputFileError(f"{path} is not UTF-8 text; {hint}") from None
    except OSError as exc:
        raise InputFileError(f"cannot read {path}: {exc.strerror or exc}; {hint}") from None


@contextmanager
def embedded_handler(rules: Path, data_dir: Path) -> Iterator[Deliver]:
    """The deployed function's own Kinesis handler (`app.on_transactions`), running a pipeline
    built from the environment's settings pointed at embedded stores in `data_dir` and the given
    rules (the environment itself is left alone)."""

    import app as chalice_app

    environment = Settings.from_env()
    settings = wiring.embedded_settings(environment, data_dir, rules_file=rules,
                                        graph_backend=embedded_graph_backend(environment))
    pipeline = wiring.build_pipeline(settings)
    logging.getLogger("chalicelib").setLevel(settings.log_level)  # as the handler's own cold start does
    chalice_app.reset_pipeline()
    chalice_app.use_pipeline(pipeline)
    try:
        yield lambda event: chalice_app.on_transactions(event, None)
    finally:
        chalice_app.use_pipeline(None)
        pipeline.close()


def run_through_handler(records: Sequence[FileItem], rules: Path, data_dir: Path, batch_size: int,
                        label: str) -> RunTotals:
    """Stream records through the handler as Lambda's event source mapping would; lines the file
    reader refused go to the handler's own dead-letter file in `data_dir`."""
    dead_letters = JsonLinesDeadLetterSink(data_dir / "dead-letters.jsonl")
    with embedded_handler(rules, data_dir) as handler, progress_bar(len(records), label) as advance:
        return stream_through(handler, records, batch_size, advance, dead_letters=dead_letters)
