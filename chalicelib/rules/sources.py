"""Where the current ruleset comes from, re-checked at most every `reload_seconds`.

A source keeps the last good ruleset: a broken edit is logged (with every issue found) and
ignored until the file changes again. S3 joins these in the AWS issue (ETag instead of mtime).
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

from chalicelib.rules.exceptions import RulesError
from chalicelib.rules.loader import RuleSet, load_rules_file, load_rules_text

log = logging.getLogger(__name__)


class RulesSource(ABC):
    @abstractmethod
    def current(self) -> RuleSet:
        """The ruleset in force now (may reload first)."""


class StaticRulesSource(RulesSource):
    def __init__(self, ruleset: RuleSet) -> None:
        self._ruleset = ruleset

    def current(self) -> RuleSet:
        return self._ruleset


class PollingRulesSource(RulesSource):
    """Template for sources that poll a changing object: subclasses say what its stamp is and
    how to load it. The first load must succeed (there is no last good ruleset to fall back on)."""

    def __init__(self, reload_seconds: float, clock: Callable[[], float] = time.monotonic,
                 fallback: RuleSet | None = None) -> None:
        self._reload_seconds = reload_seconds
        self._clock = clock
        self.rejected: RulesError | None = None  # the last broken version, while it is current
        try:
            self._stamp = self._read_stamp()
            self._ruleset = self._load()
        except Exception as exc:
            if fallback is None:
                raise
            # Start from the packaged rules rather than not at all; the source is retried later.
            log.error("rules %s unavailable at start (%s); using packaged version %s until it is",
                      self.describe(), exc, fallback.version)
            self._stamp, self._ruleset = None, fallback
        self._checked_at = clock()
        log.info("rules %s loaded, version %s, %d rules", self.describe(), self._ruleset.version,
                 len(self._ruleset.rules))

    @abstractmethod
    def _read_stamp(self) -> object:
        """A cheap value that changes whenever the content does (mtime+size, ETag)."""

    @abstractmethod
    def _load(self) -> RuleSet:
        """Read and validate the content; raise RulesError when it is invalid."""

    @abstractmethod
    def describe(self) -> str: ...

    def current(self) -> RuleSet:
        now = self._clock()
        if now - self._checked_at < self._reload_seconds:
            return self._ruleset
        self._checked_at = now
        try:
            stamp = self._read_stamp()
        except Exception as exc:  # keep serving the last good rules while the source is away
            log.error("rules %s could not be checked, keeping version %s: %s",
                      self.describe(), self._ruleset.version, exc)
            return self._ruleset
        if stamp == self._stamp:
            return self._ruleset
        self._stamp = stamp
        try:
            ruleset = self._load()
        except RulesError as exc:
            self.rejected = exc
            log.error("rules %s changed but are invalid; keeping version %s. Fix:\n%s",
                      self.describe(), self._ruleset.version, exc)
            return self._ruleset
        self.rejected = None
        if ruleset.version != self._ruleset.version:
            log.info("rules %s reloaded: version %s -> %s, %d rules", self.describe(),
                     self._ruleset.version, ruleset.version, len(ruleset.rules))
        self._ruleset = ruleset
        return ruleset


class FileRulesSource(PollingRulesSource):
    """rules.yaml on local disk; a change is seen through mtime and size."""

    def __init__(self, path: str | Path, reload_seconds: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(path)
        super().__init__(reload_seconds, clock)

    def _read_stamp(self) -> object:
        st = self.path.stat()
        return (st.st_mtime_ns, st.st_size)

    def _load(self) -> RuleSet:
        return load_rules_file(self.path)

    def describe(self) -> str:
        return f"file {self.path}"


class S3RulesSource(PollingRulesSource):
    """rules.yaml as an S3 object; a change is seen through its ETag. Lists must be inline
    (`values:`) in an S3 rules file: there is no directory to resolve `file:` against."""

    def __init__(self, bucket: str, key: str, s3_client: object, reload_seconds: float = 30.0,
                 clock: Callable[[], float] = time.monotonic, fallback: RuleSet | None = None) -> None:
        self.bucket, self.key, self.s3 = bucket, key, s3_client
        super().__init__(reload_seconds, clock, fallback)

    def _read_stamp(self) -> object:
        return self.s3.head_object(Bucket=self.bucket, Key=self.key)["ETag"]  # type: ignore[attr-defined]

    def _load(self) -> RuleSet:
        body = self.s3.get_object(Bucket=self.bucket, Key=self.key)["Body"].read()  # type: ignore[attr-defined]
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            from chalicelib.rules.exceptions import RuleIssue, RulesFileError

            raise RulesFileError([RuleIssue(self.describe(), None, None, None, f"not UTF-8: {exc}")]) from None
        return load_rules_text(text, name=self.describe())

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.key}"
