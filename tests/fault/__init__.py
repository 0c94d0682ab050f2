"""Process-level fault tests: kills, concurrent writers, busy stores (marker `fault`)."""

import pytest

pytest.register_assert_rewrite("tests.fault.harness")  # plain asserts in the shared checks explain themselves
