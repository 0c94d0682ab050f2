"""The Kinesis path end to end on this machine: a moto server on loopback, the simulated stream
published with PutRecords, polled shard by shard into the Lambda handler, then evaluated.

    .venv/bin/python scripts/kinesis_demo.py [--accounts 300] [--days 1]

The moto server is started here on 127.0.0.1 and stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.moto_server import running_moto  # noqa: E402


def run(*args: str) -> None:
    print("$ python -m chalicelib " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "chalicelib", *args], cwd=ROOT, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", default="300")
    parser.add_argument("--days", default="1")
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".data" / "kinesis-demo")
    args = parser.parse_args()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    # dummy credentials: the only endpoint used is the local moto server
    os.environ.update(AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    with running_moto() as url:
        for stale in args.data_dir.glob("*"):
            stale.unlink()
        run("simulate", "--out-dir", str(args.data_dir), "--accounts", args.accounts, "--days", args.days)
        run("kinesis", "produce", "--stream", "transactions", "--endpoint-url", url, "--create-stream", "--shards",
            "3", "--events", str(args.data_dir / "events.jsonl"))
        run("kinesis", "poll", "--stream", "transactions", "--endpoint-url", url, "--data-dir", str(args.data_dir))
        run("evaluate", "--labels", str(args.data_dir / "labels.json"), "--hits", str(args.data_dir / "hits.jsonl"))


if __name__ == "__main__":
    main()
