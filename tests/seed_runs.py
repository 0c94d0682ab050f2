"""Several runs of the AWS reference producer into one stream, built from the one-run sample.

The producer draws each ordinary account's e-mail (`email-<1..99>@example-anycompany.com`) and
phone (`123456<1..99>`) at random per run; its ring (accounts 20-30) always uses
`shared@example-anycompany.com` and `10001000`. Run k (k = 0, 1, ...) is the sample with times
and sequence numbers shifted by a run offset, the same accounts, amounts and merchants, and -
from the second run on - fresh draws of the ordinary accounts' e-mails and phones (seeded, so
the fixture is the same every time). After three runs an ordinary account has used about three
e-mails and three phones, and most e-mails are shared by several accounts: chance collisions.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from pathlib import Path

RING = frozenset(f"1234-5678-{i}" for i in range(20, 31))
RING_EMAIL, RING_PHONE = "shared@example-anycompany.com", "10001000"
RUN_OFFSET = timedelta(hours=1)
SEQUENCE_OFFSET = 100_000
TIME_FORMAT = "%b %d, %Y, %H:%M:%S.%f"


def producer_runs(sample: Path, runs: int, *, seed: int = 21) -> list[str]:
    """`runs` runs of the producer as Kinesis-envelope JSON lines (run 0 is the sample itself)."""
    lines = sample.read_text(encoding="utf-8").splitlines()
    rng = random.Random(seed)
    out: list[str] = []
    for run in range(runs):
        draws: dict[str, tuple[str, str]] = {}
        for line in lines:
            envelope = json.loads(line)
            record = json.loads(envelope["data"])
            if run:
                account = record["account"]
                if account not in RING:
                    if account not in draws:
                        draws[account] = (f"email-{rng.randint(1, 99)}@example-anycompany.com",
                                          f"123456{rng.randint(1, 99)}")
                    record["accountemail"], record["phone"] = draws[account]
                ts = datetime.strptime(record["time"], TIME_FORMAT) + RUN_OFFSET * run
                record["time"] = ts.strftime("%b %d, %Y, %H:%M:%S.") + f"{ts.microsecond // 1000:03d}"
                envelope["sequenceNumber"] = str(SEQUENCE_OFFSET * run + int(envelope["sequenceNumber"]))
                envelope["approximateArrivalTimestamp"] = round(
                    envelope["approximateArrivalTimestamp"] + RUN_OFFSET.total_seconds() * run, 3)
                envelope["data"] = json.dumps(record)
            out.append(json.dumps(envelope))
    return out
