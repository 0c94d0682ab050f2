"""Bounds on everything a rules file can make the engine do, in one place.

A rules file is input, like a record: whatever it says, loading it must take bounded time and
memory, and the ruleset it yields must not be able to make a batch fail. Each limit is checked
where the value is validated, with a located error naming it.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

#: rules.yaml as read from disk or S3.
MAX_FILE_BYTES = 1024 * 1024
#: YAML nodes of the document with every alias expanded (a "billion laughs" stops here).
MAX_YAML_NODES = 200_000
#: Characters of scalars with every alias expanded.
MAX_YAML_SCALAR_CHARS = 4 * MAX_FILE_BYTES
#: Nesting depth of YAML collections.
MAX_YAML_DEPTH = 32

MAX_RULES = 1000
MAX_PLUGINS = 32
MAX_LISTS = 100
#: Inline `values:` of one list, and lines of one list `file:`.
MAX_LIST_ENTRIES = 1_000_000
#: A file a rules file names (a list `file:`, an examples `file:`) is read under the rules file's own cap.
MAX_LIST_FILE_BYTES = MAX_FILE_BYTES
MAX_EXAMPLES_FILE_BYTES = MAX_FILE_BYTES
#: ...and is a plain file name in the rules file's directory: no directories, no leading dot.
FILE_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$"
#: Conditions in one rule's `where`, values in one `in`/`not_in` list, characters of one value.
MAX_CONDITIONS = 32
MAX_IN_VALUES = 1000
MAX_VALUE_CHARS = 1000
#: Integers in `where` values and count thresholds stay exact in JSON and in every store.
MAX_ABS_INT = 10**15

#: Every duration (windows, lookbacks): at most this long. 400 days keeps `ts - window`
#: representable for every valid event time and a yearly lookback possible.
MAX_DURATION = timedelta(days=400)

#: Count thresholds (events, distinct values, accounts).
MAX_COUNT = 10_000_000
#: Decimal thresholds on amounts: the largest amount an event may carry, times a million events.
MAX_DECIMAL = Decimal("1e18")
#: `amount_spike` factor and z-score.
MAX_FACTOR = Decimal(10_000)
#: `geo_velocity` threshold (km/h) and `min_distance_km` (half the Earth's circumference).
MAX_SPEED_KMH = 100_000.0
MAX_DISTANCE_KM = 20_040.0
#: `composite` weights and threshold.
MAX_WEIGHT = 1_000_000.0
#: `min_history` of the kinds that need a baseline.
MAX_MIN_HISTORY = 100_000
