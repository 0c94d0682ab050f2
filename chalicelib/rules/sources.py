"""Where the current ruleset comes from, re-checked at most every `reload_seconds`.

A source keeps the last good ruleset: an edit that fails to load for any reason (invalid, too
large, unreadable, a plugin that raises) is a rejected edit - logged with every issue found,
remembered in `last_rejected`, and ignored until the source changes again.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from chalicelib.rules import limits
from chalicelib.rules.exceptions import RuleIssue, RulesError, RulesFileError
from chalicelib.rules.loader import RuleSet, load_rules_file, load_rules_text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RejectedEdit:
    """An edit of the rules that was not applied, and why."""

    stamp: str  # what identified the edit: file mtime and size, or the S3 ETag
    reason: str  # every issue found, one per line
    at: datetime  # when it was rejected (UTC)
    kept_version: str  # the ruleset version that stayed in force


class RulesSource(ABC):
    #: the latest edit that was not applied, and why (None: none so far, or a static source)
    last_rejected: RejectedEdit | None = None

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
                 fallback: RuleSet | None = None, plugins_allowed: Collection[str] = ()) -> None:
        self._reload_seconds = reload_seconds
        self._plugins_allowed = tuple(plugins_allowed)  # the wiring passes the RULES_PLUGINS_ALLOWED setting
        self._clock = clock
        self.rejected: Exception | None = None  # why the current content is not in force, if it is not
        self.last_rejected: RejectedEdit | None = None  # the latest rejected edit, kept after a fix
        stamp: object = None
        try:
            stamp = self._read_stamp()
            self._ruleset = self._load()
        except Exception as exc:
            if fallback is None:
                raise
            # Start from the packaged rules rather than not at all; the source is retried when
            # it can be read, or when content that did not load changes.
            log.error("rules %s unavailable at start (%s); using packaged version %s until it is",
                      self.describe(), exc, fallback.version)
            self._ruleset = fallback
            if stamp is not None:
                self._reject(stamp, exc)
        self._stamp = stamp
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
        except Exception as exc:  # whatever went wrong, the edit is rejected, not the engine stopped
            self._reject(stamp, exc)
            return self._ruleset
        self.rejected = None
        if ruleset.version != self._ruleset.version:
            log.info("rules %s reloaded: version %s -> %s, %d rules", self.describe(),
                     self._ruleset.version, ruleset.version, len(ruleset.rules))
            self._ruleset = ruleset  # the same version keeps its object (and its quarantined rules)
        return self._ruleset

    def _reject(self, stamp: object, exc: Exception) -> None:
        reason = str(exc) if isinstance(exc, RulesError) else f"{type(exc).__name__}: {exc}"
        self.rejected = exc
        self.last_rejected = RejectedEdit(str(stamp), reason, datetime.now(UTC), self._ruleset.version)
        log.error("rules %s changed but are invalid; keeping version %s. Fix:\n%s",
                  self.describe(), self._ruleset.version, reason)


class FileRulesSource(PollingRulesSource):
    """rules.yaml on local disk; a change is seen through mtime and size."""

    def __init__(self, path: str | Path, reload_seconds: float = 30.0,
                 clock: Callable[[], float] = time.monotonic, *,
                 plugins_allowed: Collection[str] = ()) -> None:
        self.path = Path(path)
        super().__init__(reload_seconds, clock, plugins_allowed=plugins_allowed)

    def _read_stamp(self) -> object:
        st = self.path.stat()
        return (st.st_mtime_ns, st.st_size)

    def _load(self) -> RuleSet:
        return load_rules_file(self.path, plugins_allowed=self._plugins_allowed)

    def describe(self) -> str:
        return f"file {self.path}"


class S3RulesSource(PollingRulesSource):
    """rules.yaml as an S3 object; a change is seen through its ETag. Lists must be inline
    (`values:`) in an S3 rules file: there is no directory to resolve `file:` against."""

    def __init__(self, bucket: str, key: str, s3_client: object, reload_seconds: float = 30.0,
                 clock: Callable[[], float] = time.monotonic, fallback: RuleSet | None = None, *,
                 plugins_allowed: Collection[str] = ()) -> None:
        self.bucket, self.key, self.s3 = bucket, key, s3_client
        super().__init__(reload_seconds, clock, fallback, plugins_allowed)

    def _read_stamp(self) -> object:
        return self.s3.head_object(Bucket=self.bucket, Key=self.key)["ETag"]  # type: ignore[attr-defined]

    def _load(self) -> RuleSet:
        stream = self.s3.get_object(Bucket=self.bucket, Key=self.key)["Body"]  # type: ignore[attr-defined]
        body = stream.read(limits.MAX_FILE_BYTES + 1)
        stream.close()
        if len(body) > limits.MAX_FILE_BYTES:
            raise RulesFileError([RuleIssue(self.describe(), None, None, None,
                                            f"file is larger than {limits.MAX_FILE_BYTES} bytes")])
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RulesFileError([RuleIssue(self.describe(), None, None, None, f"not UTF-8 text: {exc}")]) from None
        return load_rules_text(text, name=self.describe(), plugins_allowed=self._plugins_allowed)

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.key}"
