"""The toolkit's ready-made properties catch a deliberately broken kind: a velocity whose window
start is inclusive (`e.ts - W <= x.ts` instead of `<`), i.e. one millisecond too long."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, Phase, settings

from chalicelib.rules import Duration, Finding, register_rule_kind
from chalicelib.rules.velocity import VelocityConfig, VelocityRule
from fraudtools.testing import (
    Monotonicity,
    agrees_with_reference_property,
    batching_and_redelivery_property,
    monotonicity_property,
    reference_of,
    register_reference,
)


class InclusiveVelocityConfig(VelocityConfig):
    kind: Literal["inclusive_velocity"] = "inclusive_velocity"  # type: ignore[assignment]


@register_rule_kind
class InclusiveVelocityRule(VelocityRule):
    """Broken on purpose: asks the engine for a window 1 ms longer, so an event exactly W before
    the judged one is counted."""

    config_model = InclusiveVelocityConfig

    @property
    def window(self) -> Duration | None:
        return Duration.parse(self.config.window + timedelta(milliseconds=1))


# The kind claims velocity's semantics, so its reference is velocity's.
register_reference("inclusive_velocity")(reference_of("velocity")[0])

BROKEN = """
version: 1
rules:
  - {id: broken, kind: inclusive_velocity, key: account_id, window: 1m, threshold: 1}
"""
CORRECT = BROKEN.replace("inclusive_velocity", "velocity")
# Finding the bug is the point here, not shrinking it to a minimal stream.
HUNT = settings(max_examples=300, database=None, report_multiple_bugs=False, phases=[Phase.generate],
                suppress_health_check=[HealthCheck.too_slow], deadline=None)


def test_agreement_property_catches_an_inclusive_window_start() -> None:
    with pytest.raises(AssertionError, match="disagrees with the reference"):
        agrees_with_reference_property(BROKEN, hypothesis_settings=HUNT)()


def test_the_same_property_passes_on_the_correct_kind() -> None:
    agrees_with_reference_property(CORRECT, hypothesis_settings=HUNT)()


def test_batching_alone_does_not_see_this_bug() -> None:
    # The broken kind is consistently wrong: only a comparison with the reference finds it.
    batching_and_redelivery_property(BROKEN)()


class QuietConfig(VelocityConfig):
    kind: Literal["quiet_account"] = "quiet_account"  # type: ignore[assignment]


@register_rule_kind
class QuietRule(VelocityRule):
    """Fires when an account has *at most* `threshold` events in the window: raising the
    threshold adds hits, so a claim that the threshold is monotone is false."""

    config_model = QuietConfig

    def judge(self, event: Any, window: Sequence[Any]) -> Finding | None:
        return Finding(len(window), self.config.threshold) if len(window) <= self.config.threshold else None


@register_reference("quiet_account", monotonicity=Monotonicity(thresholds=("threshold",)))
def quiet_account(config: Any, event: Any, window: Sequence[Any], context: Any) -> Any:
    return len(window) if len(window) <= config.threshold else None


QUIET = """
version: 1
rules:
  - {id: quiet, kind: quiet_account, key: account_id, window: 1m, threshold: 1}
"""


def test_a_false_monotonicity_claim_is_caught() -> None:
    agrees_with_reference_property(QUIET, hypothesis_settings=HUNT)()  # the kind matches its reference...
    with pytest.raises(AssertionError, match=r"raising quiet\.threshold to \d+ added hits"):
        monotonicity_property(QUIET, "quiet", hypothesis_settings=HUNT)()  # ...but is not monotone
