from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from chalicelib.rules import FileRulesSource, RulesFileError

V1 = "version: 1\nrules:\n  - {id: v, kind: velocity, window: 1m, threshold: 5}\n"
V2 = "version: 1\nrules:\n  - {id: v, kind: velocity, window: 1m, threshold: 7}\n"
BROKEN = "version: 1\nrules:\n  - {id: v, kind: velocity, window: 1 minute, threshold: 7}\n"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def write(path: Path, text: str, bump: int) -> None:
    path.write_text(text)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + bump * 1_000_000_000))


def threshold(source: FileRulesSource) -> int:
    return int(source.current().rules[0].config.threshold)


def test_good_edit_is_picked_up_after_the_reload_interval(tmp_path: Path) -> None:
    path, clock = tmp_path / "rules.yaml", Clock()
    write(path, V1, 0)
    source = FileRulesSource(path, reload_seconds=30, clock=clock)
    write(path, V2, 1)
    clock.now += 29
    assert threshold(source) == 5  # not checked yet
    clock.now += 1
    assert threshold(source) == 7


def test_broken_edit_keeps_the_last_good_rules_and_logs_why(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path, clock = tmp_path / "rules.yaml", Clock()
    write(path, V1, 0)
    source = FileRulesSource(path, reload_seconds=10, clock=clock)
    version = source.current().version
    write(path, BROKEN, 1)
    clock.now += 10
    with caplog.at_level(logging.ERROR):
        assert threshold(source) == 5
    assert source.current().version == version
    assert "invalid; keeping version " + version in caplog.text
    assert "rules.yaml:3 rule 'v' field 'window'" in caplog.text
    assert source.rejected is not None
    write(path, V2, 2)  # the fix is picked up
    clock.now += 10
    assert threshold(source) == 7 and source.rejected is None


def test_vanished_file_keeps_the_last_good_rules(tmp_path: Path) -> None:
    path, clock = tmp_path / "rules.yaml", Clock()
    write(path, V1, 0)
    source = FileRulesSource(path, reload_seconds=1, clock=clock)
    path.unlink()
    clock.now += 5
    assert threshold(source) == 5


def test_a_broken_file_at_start_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(BROKEN)
    with pytest.raises(RulesFileError, match="invalid duration"):
        FileRulesSource(path)
