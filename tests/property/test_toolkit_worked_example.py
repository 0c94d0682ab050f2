"""The worked example of docs/TESTING_RULES.md (examples/test_my_rule.py) runs with the suite."""

from __future__ import annotations

import ast
import importlib
import sys

from tests.conftest import PROJECT

sys.path.insert(0, str(PROJECT / "examples"))  # `plugins: [average_over_kind]` and the example itself
worked = importlib.import_module("test_my_rule")

test_worked_example_agrees_with_reference = worked.test_agrees_with_reference
test_worked_example_batching_and_redelivery = worked.test_batching_and_redelivery
test_worked_example_average_is_monotone = worked.test_average_is_monotone
test_worked_example_big_spender_is_monotone = worked.test_big_spender_is_monotone


def test_the_worked_example_is_under_40_lines_of_test_code() -> None:
    source = (PROJECT / "examples" / "test_my_rule.py").read_text()
    after_docstring = source.splitlines()[ast.parse(source).body[0].end_lineno or 0:]
    code = [ln for ln in after_docstring if ln.strip() and not ln.lstrip().startswith("#")]
    assert len(code) < 40
