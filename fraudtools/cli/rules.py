"""`rules check` and `rules push`: validate a rules file; publish it to S3."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fraudtools.cli.runner import load_rules_or_exit


def cmd_rules_check(args: argparse.Namespace) -> int:
    ruleset = load_rules_or_exit(args.file)
    print(f"{args.file}: ok, version {ruleset.version}, {len(ruleset.rules)} enabled rules "
          f"of {len(ruleset.configs)}")
    for config in ruleset.configs:
        state = "" if config.enabled else " (disabled)"
        print(f"  {config.id:<24} {getattr(config, 'kind', '?'):<14} {config.mode:<8} {config.severity}{state}")
    return 0


def cmd_rules_push(args: argparse.Namespace) -> int:
    import boto3

    ruleset = load_rules_or_exit(args.file)  # validated before anything is uploaded
    if any(spec for spec in _list_files(args.file)):
        print(f"error: {args.file} reads lists from files; an S3 rules object has no directory to read them "
              "from: inline them as `values:`", file=sys.stderr)
        return 1
    s3 = boto3.client("s3", endpoint_url=args.endpoint_url, region_name=args.region)
    body = args.file.read_bytes()
    response = s3.put_object(Bucket=args.bucket, Key=args.key, Body=body, ContentType="application/yaml",
                             Metadata={"ruleset-version": ruleset.version})
    print(f"uploaded {args.file} (version {ruleset.version}, {len(ruleset.rules)} enabled rules) to "
          f"s3://{args.bucket}/{args.key}, ETag {response['ETag']}; running functions pick it up within "
          "RULES_RELOAD_SECONDS")
    return 0


def _list_files(path: Path) -> list[str]:
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return [spec["file"] for spec in (data.get("lists") or {}).values() if isinstance(spec, dict) and "file" in spec]
