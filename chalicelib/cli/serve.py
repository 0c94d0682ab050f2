"""`serve [--data-dir DIR] [--port N] [--rules FILE]`: the investigator's view on this machine.

Serves the same Chalice app (the REST API under /api and the page at /) with Chalice's local
server, on 127.0.0.1 only, over the embedded stores a `demo`, `replay` or `kinesis poll` run
keeps in DIR (default .data/demo); `--user NAME` is the actor of alert transitions (in AWS, the
IAM caller). There is no authorization locally - the loopback address is
the boundary - while in AWS every route requires IAM (SigV4). The page polls, so a replay or
poll writing to DIR at the same time shows up as it happens.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import threading
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

from chalicelib.settings import PROJECT_DIR, Settings

HOST = "127.0.0.1"


def _one_at_a_time_handler() -> type:
    from chalice.local import ChaliceRequestHandler

    lock = threading.Lock()

    class Handler(ChaliceRequestHandler):
        """Connections on threads (browsers keep several open), requests through the app one at a
        time: Chalice keeps the request being handled in `app.current_request`, one attribute for
        the whole app, so concurrent requests would read each other's parameters."""

        def _one_at_a_time(self) -> None:
            with lock:
                self._generic_handle()

        # the base class binds every do_* to _generic_handle itself, so each is rebound here
        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _one_at_a_time

    return Handler


def settings_for(data_dir: Path, rules: Path | None) -> Settings:
    """Embedded stores in `data_dir`: the graph a run left there (SQLite tables, else gremlite)."""
    gremlite_only = (data_dir / "graph.sqlite").exists() and not (data_dir / "entity-graph.sqlite").exists()
    settings = Settings(data_dir=data_dir, graph_backend="gremlite" if gremlite_only else "sqlite",
                        rules_reload_seconds=2.0)
    return settings if rules is None else replace(settings, rules_file=rules)


def load_app() -> Any:
    """The project's app.py module (beside chalicelib/)."""
    if str(PROJECT_DIR) not in sys.path:
        sys.path.insert(0, str(PROJECT_DIR))
    return importlib.import_module("app")


def cmd_serve(args: argparse.Namespace) -> int:
    from chalice.config import Config
    from chalice.local import LocalDevServer

    from chalicelib.api import build_investigator

    if not args.data_dir.is_dir():
        print(f"error: {args.data_dir} is not a directory: run `make demo` (it writes .data/demo) or "
              "`python -m chalicelib replay --data-dir DIR ...` first, or pass --data-dir", file=sys.stderr)
        return 1
    if args.user is not None:
        from chalicelib.alerts import AlertValueError, check_actor

        try:
            check_actor(args.user, "--user")
        except AlertValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    app_module = load_app()
    investigator = build_investigator(settings_for(args.data_dir, args.rules))
    app_module.use_investigator(investigator)
    app_module.use_local_user(args.user)
    # Chalice's local server cannot check IAM signatures; it allows every request and warns per route.
    warnings.filterwarnings("ignore", message="IAMAuthorizer is not a supported in local mode")
    try:
        server = LocalDevServer(app_module.app, Config.create(chalice_stage="local", app_name="fraud-rules"),
                                HOST, args.port, handler_cls=_one_at_a_time_handler())
    except OSError as exc:
        investigator.close()
        print(f"error: cannot listen on {HOST}:{args.port} ({exc.strerror}); pass another --port", file=sys.stderr)
        return 1
    host, port = server.server.server_address[:2]
    print(f"investigator's view on http://{host}:{port}/ over {args.data_dir} (no authorization: loopback only; "
          "Ctrl-C stops)", flush=True)
    try:
        server.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server.server_close()
        app_module.use_investigator(None)
        app_module.use_local_user(None)
        investigator.close()
    return 0


def add_parser(commands: Any) -> None:
    serve = commands.add_parser(
        "serve", help="the investigator's web page and REST API on 127.0.0.1",
        description="Serve the investigator's view (page at /, REST API under /api, OpenAPI at "
                    "/api/openapi.json) over the embedded stores in DIR, on 127.0.0.1 without authorization.")
    serve.add_argument("--data-dir", type=Path, default=Path(".data/demo"),
                       help="the stores a demo/replay/poll run keeps (default .data/demo)")
    serve.add_argument("--port", type=int, default=8000, help="TCP port on 127.0.0.1 (default 8000; 0: any free)")
    serve.add_argument("--rules", type=Path, default=None, help="rules file shown as in force (default rules.yaml)")
    serve.add_argument("--user", default=None, metavar="NAME",
                       help="who assigns and decides alerts through this server (recorded in their audit trail); "
                            "without it the alert transitions answer 403")
    serve.set_defaults(func=cmd_serve)
