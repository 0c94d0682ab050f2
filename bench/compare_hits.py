"""Compare two hits files (JSON lines, as `replay --out` writes them): the same hit ids, and for
each id the same content, line for line in the same order.

    .venv/bin/python bench/compare_hits.py OLD.jsonl NEW.jsonl

Used to check that a change to the hot path finds exactly the hits the old code found: produce
OLD with the old code (e.g. a `git worktree` of main), NEW with the new, on the same stream and
rules. Exits non-zero, naming the first differences, when they differ.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def read_hits(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def differences(old: list[dict[str, Any]], new: list[dict[str, Any]], limit: int = 10) -> list[str]:
    """What differs between two hit lists (empty when they are identical), at most `limit` lines."""
    found: list[str] = []
    old_by_id = {h["hit_id"]: h for h in old}
    new_by_id = {h["hit_id"]: h for h in new}
    if len(old_by_id) != len(old) or len(new_by_id) != len(new):
        found.append(f"repeated hit ids: {len(old) - len(old_by_id)} old, {len(new) - len(new_by_id)} new")
    found += [f"missing: {i} ({old_by_id[i]['rule_id']} on {old_by_id[i]['event_id']})"
              for i in sorted(old_by_id.keys() - new_by_id.keys())]
    found += [f"extra: {i} ({new_by_id[i]['rule_id']} on {new_by_id[i]['event_id']})"
              for i in sorted(new_by_id.keys() - old_by_id.keys())]
    for hit_id in sorted(old_by_id.keys() & new_by_id.keys()):
        if old_by_id[hit_id] != new_by_id[hit_id]:
            found.append(f"content differs: {hit_id}: {json.dumps(old_by_id[hit_id], sort_keys=True)} != "
                         f"{json.dumps(new_by_id[hit_id], sort_keys=True)}")
    if not found and [h["hit_id"] for h in old] != [h["hit_id"] for h in new]:
        found.append("same hits in a different order")
    return found[:limit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("old", type=Path, help="hits of the old code")
    parser.add_argument("new", type=Path, help="hits of the new code")
    args = parser.parse_args()
    old, new = read_hits(args.old), read_hits(args.new)
    found = differences(old, new)
    if found:
        print(f"{args.old} and {args.new} differ:", *found, sep="\n  ", file=sys.stderr)
        sys.exit(1)
    print(f"identical: {len(old)} hits")


if __name__ == "__main__":
    main()
