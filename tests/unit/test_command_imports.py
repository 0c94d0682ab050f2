"""A command imports what it needs: the parser does not load the command modules, and `replay`
on the embedded stores loads neither the investigator's API, the decision service, the Gremlin
client, the simulator nor the AWS SDK (issue 20: each is start-up time of every run). The
modules are imported in a fresh interpreter; this test process has imported everything already."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import PROJECT

#: what no `replay` on the embedded stores needs
NOT_FOR_REPLAY = ("chalicelib.api", "chalicelib.decisions", "chalicelib.stores.decisions",
                  "chalicelib.stores.gremlin_connection", "chalicelib.stores.gremlin_graph", "gremlin_python",
                  "fraudtools.simulate", "fraudtools.scoring", "fraudtools.cli.serve", "boto3", "botocore")


def loaded_after(code: str) -> set[str]:
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", script], cwd=PROJECT, check=True, capture_output=True, text=True)
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def under(modules: set[str], tops: tuple[str, ...]) -> set[str]:
    return {m for m in modules if any(m == top or m.startswith(top + ".") for top in tops)}


def test_the_parser_imports_no_command_module() -> None:
    loaded = loaded_after("from fraudtools.cli import build_parser\nbuild_parser()")
    commands = {m for m in under(loaded, ("fraudtools.cli",)) if m not in ("fraudtools.cli", "fraudtools.cli.parser")}
    assert commands == set()
    assert under(loaded, (*NOT_FOR_REPLAY, "chalicelib.wiring", "chalicelib.pipeline")) == set()


def test_replay_on_the_embedded_stores_imports_only_what_it_needs() -> None:
    loaded = loaded_after(
        "from pathlib import Path\n"
        "import tempfile\n"
        "from fraudtools.cli import build_parser\n"
        "from fraudtools.cli.replay import cmd_replay\n"
        "from chalicelib.settings import Settings\n"
        "from chalicelib.wiring import embedded_pipeline\n"
        "from chalicelib.rules import load_rules_file\n"
        "build_parser()\n"
        "with tempfile.TemporaryDirectory() as tmp:\n"
        "    ruleset = load_rules_file(Path('rules.yaml'))\n"
        "    embedded_pipeline(Settings(), ruleset, Path(tmp), Path(tmp) / 'hits').close()\n")
    assert "fraudtools.cli.replay" in loaded and "chalicelib.inbox" in loaded  # the check sees what is there
    assert under(loaded, NOT_FOR_REPLAY) == set()
