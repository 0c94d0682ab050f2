"""A property-testing toolkit for rule authors (needs Hypothesis: a test dependency).

    from fraudtools.testing import agrees_with_reference_property, register_reference

* strategies: `transactions`, `streams` (rates, late events, redeliveries, fraud bursts, the
  fields a ruleset reads), `batch_cuts`, `conditions`;
* a brute-force reference evaluator of the rule semantics, `reference_hits`, with one reference
  judge per kind; plugin kinds add theirs with `@register_reference("kind")`;
* ready-made properties run on the real pipeline (`fraudtools.testing.properties`);
* `run_stream`: deliver a stream to a real `Pipeline` over a throw-away in-memory store.
"""

from __future__ import annotations

from fraudtools.testing.harness import (
    MemoryDeadLetterSink,
    MemoryHitSink,
    PipelineRun,
    memory_pipeline,
    records_for,
    run_stream,
    split_at,
)
from fraudtools.testing.properties import (
    agrees_with_reference_property,
    batching_and_redelivery_property,
    check_agrees_with_reference,
    check_batching_independent,
    check_redelivery_harmless,
    check_threshold_monotone,
    check_where_monotone,
    check_window_monotone,
    monotonicity_property,
    only,
    rule_properties,
    ruleset_of,
)
from fraudtools.testing.reference import (
    FIRES,
    Monotonicity,
    ReferenceContext,
    assert_hits_agree,
    condition_holds,
    number,
    reference_hits,
    reference_of,
    reference_window,
    register_reference,
)
from fraudtools.testing.strategies import (
    DEFAULT_ACCOUNTS,
    DEFAULT_AMOUNTS,
    DEFAULT_PLACES,
    DEFAULT_POOLS,
    DEFAULT_START,
    batch_cuts,
    conditions,
    pools_for,
    streams,
    transactions,
)

__all__ = [
    "DEFAULT_ACCOUNTS",
    "DEFAULT_AMOUNTS",
    "DEFAULT_PLACES",
    "DEFAULT_POOLS",
    "DEFAULT_START",
    "FIRES",
    "MemoryDeadLetterSink",
    "MemoryHitSink",
    "Monotonicity",
    "PipelineRun",
    "ReferenceContext",
    "agrees_with_reference_property",
    "assert_hits_agree",
    "batch_cuts",
    "batching_and_redelivery_property",
    "check_agrees_with_reference",
    "check_batching_independent",
    "check_redelivery_harmless",
    "check_threshold_monotone",
    "check_where_monotone",
    "check_window_monotone",
    "condition_holds",
    "conditions",
    "memory_pipeline",
    "monotonicity_property",
    "number",
    "only",
    "pools_for",
    "records_for",
    "reference_hits",
    "reference_of",
    "reference_window",
    "register_reference",
    "rule_properties",
    "ruleset_of",
    "run_stream",
    "split_at",
    "streams",
    "transactions",
]
