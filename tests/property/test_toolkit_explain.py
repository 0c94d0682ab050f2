"""`explain` agrees with the pipeline on any stream: its window, judged by the kind, fires exactly
when the pipeline wrote a hit, and then shows the hit's own value, threshold and evidence."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.events import Transaction
from chalicelib.explanation import explain_event
from fraudtools.testing import batch_cuts, run_stream, streams
from tests.property.test_toolkit_kinds import RULES


@given(st.data())
def test_explain_matches_the_pipeline_on_every_event(data: st.DataObject) -> None:
    stream = data.draw(streams(reading=RULES, bursts=0.05))
    run = run_stream(RULES, stream, cuts=data.draw(batch_cuts(len(stream))))
    hits = list(run.hits.values())
    run.close()
    earlier: list[Transaction] = []
    for event in stream:
        if any(x.event_id == event.event_id for x in earlier):
            continue  # a redelivery is not judged again
        mine = {h.rule_id: h for h in hits if h.event_id == event.event_id}
        for x in explain_event(RULES, event, earlier, mine):
            assert "MISMATCH" not in x.reason, (event.event_id, x)
            assert (x.verdict == "fires") == (x.rule_id in mine)
            if x.rule_id in mine:
                hit = mine[x.rule_id]
                assert (x.aggregate, x.threshold, x.evidence) == (hit.value, hit.threshold, hit.evidence)
        earlier.append(event)
