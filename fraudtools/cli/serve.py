"""`serve [--data-dir DIR] [--port N] [--rules FILE]`: the investigator's view on this machine.

Serves the same Chalice app (the REST API under /api and the page at /) with Chalice's local
server, on 127.0.0.1 only, over the embedded stores a `demo`, `replay` or `kinesis poll` run
keeps in DIR (default .data/demo). It also answers `POST /api/decisions` with the rules of FILE,
writing to those stores as the stream would; on a new or empty DIR it creates them, so the
decision API can be tried before any replay. `--user NAME` is the actor of alert transitions (in
AWS, the IAM caller). There is no authorization locally - the loopback
address is the boundary - while in AWS every route requires IAM (SigV4). The page polls, so a replay or
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


#: every read from and write to a client's socket gives up after this long: a client that sends
#: less body than its Content-Length says, or stops reading its answers, loses its connection
SOCKET_TIMEOUT_SECONDS = 10.0
#: bodies over this are refused before the app sees them; the app itself refuses a decision body
#: over the record limit (413)
MAX_BODY_BYTES = 64 * 1024


def request_handler(socket_timeout: float = SOCKET_TIMEOUT_SECONDS) -> type:
    """Connections on threads (browsers keep several open); only the app call is serialised:
    Chalice keeps the request being handled in `app.current_request`, one attribute for the whole
    app, so two requests in the app at once would read each other's parameters. Reading the
    request and writing the answer happen outside the lock, under socket timeouts, so a slow or
    stalled client holds only its own thread."""
    from chalice.local import ChaliceRequestHandler, LocalGatewayException

    app_lock = threading.Lock()

    class Handler(ChaliceRequestHandler):
        timeout = socket_timeout  # StreamRequestHandler sets it on the socket: every read and write

        def _through_the_app(self) -> None:
            body = self._request_body()
            if body is None:
                return
            try:
                with app_lock:
                    response = self.local_gateway.handle_request(method=self.command, path=self.path,
                                                                 headers=dict(self.headers), body=body or None)
            except LocalGatewayException as exc:
                self._send_error_response(exc)
                return
            headers = {**response["headers"], **response["multiValueHeaders"]}
            self._send_http_response(response["statusCode"], headers, self._handle_binary(response)["body"])

        def _request_body(self) -> bytes | None:
            """The body as Content-Length gives it; None when the request was refused or cut short."""
            declared = self.headers.get("Content-Length", "0").strip()
            if not declared.isdigit() or int(declared) > MAX_BODY_BYTES:
                self.close_connection = True  # the body is not read, so the connection is out of step
                if declared.isdigit():
                    self.send_error(413, f"request body over {MAX_BODY_BYTES} bytes")
                else:
                    self.send_error(400, "Content-Length is not a whole number")
                return None
            body: bytes = self.rfile.read(int(declared))  # TimeoutError past socket_timeout: connection closed
            if len(body) < int(declared):  # the client closed before sending it all
                self.close_connection = True
                return None
            return body

        # the base class binds every do_* to _generic_handle itself, so each is rebound here
        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _through_the_app

    return Handler


def make_server(app: Any, port: int, socket_timeout: float = SOCKET_TIMEOUT_SECONDS) -> Any:
    """Chalice's local server for `app` on 127.0.0.1:`port` (0: any free port). OSError when it
    cannot listen there."""
    from chalice.config import Config
    from chalice.local import LocalDevServer

    return LocalDevServer(app, Config.create(chalice_stage="local", app_name="fraud-rules"), HOST, port,
                          handler_cls=request_handler(socket_timeout))


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
    from chalicelib.rules import RulesError, load_rules_file
    from chalicelib.stores import StoreError
    from chalicelib.wiring import build_decision_service, build_investigator, build_pipeline

    if not 0 <= args.port <= 65535:
        print(f"error: --port {args.port} is not a TCP port: give 1 to 65535, or 0 for any free port",
              file=sys.stderr)
        return 1
    if args.data_dir.exists() and not args.data_dir.is_dir():
        print(f"error: {args.data_dir} is not a directory: pass the directory of a demo/replay run, or a new "
              "one for decisions only, with --data-dir", file=sys.stderr)
        return 1
    if args.user is not None:
        from chalicelib.alerts import AlertValueError, check_actor

        try:
            check_actor(args.user, "--user")
        except AlertValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    settings = settings_for(args.data_dir, args.rules)
    try:  # checked here so that a missing or invalid file is one line, not a traceback from the source
        load_rules_file(settings.rules_file, plugins_allowed=settings.rules_plugins_allowed)
    except RulesError as exc:
        print(f"error: {settings.rules_file} is not a valid rules file: " + "; ".join(str(exc).splitlines())
              + " (pass --rules FILE; `rules check FILE` shows every problem)", file=sys.stderr)
        return 1
    app_module = load_app()
    try:
        args.data_dir.mkdir(parents=True, exist_ok=True)
        investigator = build_investigator(settings)
        decisions = build_decision_service(settings, build_pipeline(settings))
    except (OSError, StoreError) as exc:
        print(f"error: cannot open the stores in {args.data_dir}: {exc}", file=sys.stderr)
        return 1
    app_module.use_investigator(investigator)
    app_module.use_decisions(decisions)
    app_module.use_local_user(args.user)
    # Chalice's local server cannot check IAM signatures; it allows every request and warns per route.
    warnings.filterwarnings("ignore", message="IAMAuthorizer is not a supported in local mode")
    try:
        server = make_server(app_module.app, args.port)
    except OSError as exc:
        investigator.close()
        decisions.close()
        print(f"error: cannot listen on {HOST}:{args.port} ({exc.strerror}); pass another --port", file=sys.stderr)
        return 1
    host, port = server.server.server_address[:2]
    print(f"investigator's view on http://{host}:{port}/ over {args.data_dir} (no authorization: loopback only; "
          f"decisions: POST http://{host}:{port}/api/decisions; Ctrl-C stops)", flush=True)
    try:
        server.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server.server_close()
        app_module.use_investigator(None)
        app_module.use_decisions(None)
        app_module.use_local_user(None)
        investigator.close()
        decisions.close()
    return 0
