from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from chalicelib.rules import FileRulesSource, RulesFileError, S3RulesSource, limits, load_rules_text
from tests.conftest import PROJECT

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


# --------------------------------------------------------------------------- every kind of rejected edit

BOMB = (PROJECT / "tests" / "fixtures" / "hostile-rules" / "alias-bomb-in-where.yaml").read_bytes()

#: name -> (content of the edit, fragment of the logged reason)
#: the allow-list the sources under test are given: the one module the import-failure edit names
ALLOWED_PLUGINS = ("no_such_plugin_mod",)
REJECTED_EDITS: dict[str, tuple[bytes, str]] = {
    "schema": (BROKEN.encode(), "rule 'v' field 'window': invalid duration"),
    "window overflow": (V1.replace("1m", "99999999999d").encode(), "longer than the maximum of 400d"),
    "alias bomb": (BOMB, "refused: more than 200000 values once aliases are expanded"),
    "too large": (V1.encode() + b"#" * limits.MAX_FILE_BYTES, "larger than"),
    "not utf-8": (V1.encode() + b"# \xff\xfe\n", "not UTF-8 text"),
    "yaml syntax": (b"version: 1\nrules: [\n", "not valid YAML"),
    "nul byte": (V1.encode().replace(b"rules:", b"rules: \x00", 1), ":2: not valid YAML: control character #x00"),
    "bel byte": (V1.encode() + b"# \x07\n", ":4: not valid YAML: control character #x07"),
    "empty": (b"", "the file is empty"),
    "plugin not allowed": (V1.replace("rules:", "plugins: [os]\nrules:").encode(), "plugin 'os' is not allowed"),
    "plugin import fails": (V1.replace("rules:", "plugins: [no_such_plugin_mod]\nrules:").encode(),
                            "plugin 'no_such_plugin_mod' could not be imported"),
    "negative threshold": (V1.replace("kind: velocity, window: 1m, threshold: 5",
                                      "kind: sum_over, window: 1m, threshold: -1000").encode(),
                           "greater than or equal to 0"),
}


class S3Stage:
    """An S3RulesSource over moto's in-process S3, edited like the file."""

    def __init__(self) -> None:
        self.s3 = boto3.client("s3", region_name="us-east-1")
        self.s3.create_bucket(Bucket="rules")

    def write(self, body: bytes) -> None:
        self.s3.put_object(Bucket="rules", Key="rules.yaml", Body=body)

    def source(self, clock: Clock) -> S3RulesSource:
        return S3RulesSource("rules", "rules.yaml", self.s3, reload_seconds=10, clock=clock,
                             plugins_allowed=ALLOWED_PLUGINS)


class FileStage:
    def __init__(self, tmp_path: Path) -> None:
        self.path, self.bump = tmp_path / "rules.yaml", 0

    def write(self, body: bytes) -> None:
        self.path.write_bytes(body)
        self.bump += 1
        stat = self.path.stat()
        os.utime(self.path, ns=(stat.st_atime_ns, stat.st_mtime_ns + self.bump * 1_000_000_000))

    def source(self, clock: Clock) -> FileRulesSource:
        return FileRulesSource(self.path, reload_seconds=10, clock=clock, plugins_allowed=ALLOWED_PLUGINS)


@pytest.fixture(params=["file", "s3"])
def stage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FileStage | S3Stage]:
    if request.param == "file":
        yield FileStage(tmp_path)
        return
    with mock_aws():
        yield S3Stage()


@pytest.mark.parametrize("edit", sorted(REJECTED_EDITS))
def test_each_kind_of_rejected_edit_keeps_the_last_good_version_and_logs_why(
        stage: FileStage | S3Stage, edit: str, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    body, reason = REJECTED_EDITS[edit]
    clock = Clock()
    stage.write(V1.encode())
    source = stage.source(clock)
    good = source.current().version
    stage.write(body)
    clock.now += 10
    with caplog.at_level(logging.ERROR):
        assert source.current().version == good
    assert f"invalid; keeping version {good}" in caplog.text and reason in caplog.text
    assert "unexpected error" not in caplog.text and not any(r.exc_info for r in caplog.records)
    rejected = source.last_rejected
    assert rejected is not None and reason in rejected.reason and rejected.kept_version == good
    assert rejected.at.tzinfo is not None and rejected.stamp
    clock.now += 10
    assert source.current().version == good  # unchanged content: not loaded (nor logged) again
    stage.write(V2.encode())
    clock.now += 10
    assert threshold(source) == 7 and source.rejected is None
    assert source.last_rejected == rejected  # the record of the rejected edit stays for an API to show


class VanishingS3:
    """S3 whose object changes ETag and then cannot be read (deleted, throttled, denied)."""

    def __init__(self, s3: Any) -> None:
        self.s3, self.broken = s3, False

    def head_object(self, **kwargs: Any) -> Any:
        return self.s3.head_object(**kwargs)

    def get_object(self, **kwargs: Any) -> Any:
        if self.broken:
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}},
                              "GetObject")
        return self.s3.get_object(**kwargs)


def test_any_exception_while_loading_is_a_rejected_edit(caplog: pytest.LogCaptureFixture) -> None:
    with mock_aws():
        stage, clock = S3Stage(), Clock()
        stage.write(V1.encode())
        s3 = VanishingS3(stage.s3)
        source = S3RulesSource("rules", "rules.yaml", s3, reload_seconds=10, clock=clock)
        good = source.current().version
        stage.write(V2.encode())
        s3.broken = True
        clock.now += 10
        with caplog.at_level(logging.ERROR):
            assert source.current().version == good
        assert "ClientError: An error occurred (SlowDown)" in caplog.text
        assert source.last_rejected is not None and "SlowDown" in source.last_rejected.reason


def test_s3_rules_invalid_at_start_fall_back_to_the_packaged_version_and_are_recorded() -> None:
    packaged = load_rules_text(V2)
    with mock_aws():
        stage, clock = S3Stage(), Clock()
        stage.write(BROKEN.encode())
        source = S3RulesSource("rules", "rules.yaml", stage.s3, reload_seconds=10, clock=clock, fallback=packaged)
        assert source.current().version == packaged.version
        assert source.last_rejected is not None and "invalid duration" in source.last_rejected.reason
        assert source.last_rejected.kept_version == packaged.version
        stage.write(V1.encode())
        clock.now += 10
        assert threshold(source) == 5 and source.rejected is None
