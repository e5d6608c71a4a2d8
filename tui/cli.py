"""The `relman` command line: parses arguments, calls core/api.py, renders the answer.

Every ReleaseError becomes one line on stderr (and, with --json, a JSON document on stdout)
and its exit code; a traceback only with --debug. No verb opens the TUI.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from core import __version__
from core.errors import EXIT_INFRA, EXIT_USAGE, ReleaseError, UsageError
from tui.hangup import Hangup, Terminated
from tui.output import emit, keep_stdout, out

Handler = Callable[[argparse.Namespace], int]
# 128 + SIGPIPE: what a shell tool whose reader went away exits with (docs/exit-codes.md).
EXIT_BROKEN_PIPE = 141


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting, so --json still holds."""

    def error(self, message: str) -> Any:
        raise UsageError(f"{message}; see '{self.prog} --help'")


def build_parser(*, with_verbs: bool = True) -> argparse.ArgumentParser:
    """relman's parser; ``with_verbs=False``: the global options alone (see names_a_verb)."""
    parser = _Parser(
        prog="relman",
        description=(
            "Release manager for ML services: track DVC-versioned data and models, test, "
            "deliver BentoML services through dev -> staging -> prod, watch them live. "
            "Without a command, opens the terminal interface on the project."
        ),
        epilog="Exit codes: 0 done, 1 blocked, 2 usage or configuration error, "
        "3 infrastructure failure (previous state restored).",
    )
    parser.add_argument(
        "--project",
        metavar="DIR",
        type=Path,
        help="the project folder (default: the nearest folder upward holding relman.toml)",
    )
    parser.add_argument("--batch", action="store_true", help="never prompt (for CI)")
    parser.add_argument(
        "--json", action="store_true", help="one JSON document on stdout, logs on stderr"
    )
    parser.add_argument("--read-only", action="store_true", help="refuse every mutating operation")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    parser.add_argument("--version", action="version", version=f"relman {__version__}")
    if not with_verbs:
        return parser
    verbs = parser.add_subparsers(dest="verb", metavar="COMMAND", parser_class=_Parser)

    demo = verbs.add_parser(
        "demo",
        help="create a self-contained example project",
        description="Create a self-contained example ML project (git + DVC pipeline + "
        "scikit-learn model + pytest suites + BentoML service + relman.toml) in DIR.",
    )
    demo.add_argument("dir", metavar="DIR", type=Path, help="folder to create it in")
    demo.add_argument("--force", action="store_true", help="replace an earlier demo in DIR")
    demo.set_defaults(handler=cmd_demo, mutates=True)

    init = verbs.add_parser(
        "init",
        help="write relman.toml for an existing DVC repository",
        description="Write relman.toml for the repository in the current folder (or "
        "--project DIR) from what it finds: the models and data of its dvc.yaml files, the "
        "stages of its GTO tags, the BentoML build config if there is one, the test folders.",
    )
    init.add_argument("--force", action="store_true", help="overwrite an existing relman.toml")
    init.add_argument(
        "--scaffold-service",
        action="store_true",
        help="without a BentoML service, write a minimal one for the model (scikit-learn "
        "pickle or joblib), its sample request and its tests",
    )
    init.add_argument(
        "--service",
        metavar="NAME",
        help="of several models, the one the BentoML service (found or scaffolded) serves",
    )
    init.set_defaults(handler=cmd_init, mutates=True)

    from tui.commands import (
        build,
        ci,
        delivery,
        lineage,
        monitoring,
        pipeline,
        policy,
        rollout,
        testing,
        traffic,
    )

    for module in (
        lineage,
        testing,
        build,
        delivery,
        rollout,
        pipeline,
        ci,
        monitoring,
        policy,
        traffic,
    ):
        module.add_parsers(verbs)
    return parser


# ------------------------------------------------------------------------------ commands


def _log(message: str) -> None:
    print(f"relman: {message}", file=sys.stderr, flush=True)


def cmd_demo(args: argparse.Namespace) -> int:
    from core import api

    root = api.create_demo(args.dir, force=args.force, log=_log)
    if args.json:
        emit({"ok": True, "project": str(root)})
    else:
        out(f"demo project ready in {root}")
        out(f"next: relman --project {api.shown_path(root)}")
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from core import api

    root = args.project or Path.cwd()
    document = api.init_project(
        root, force=args.force, scaffold=args.scaffold_service, service=args.service
    )
    if args.json:
        emit(document)
    else:
        for path in document["scaffolded"]:
            out(f"wrote {path}")
        for note in document["notes"]:
            out(f"  note: {note}")
        out(f"wrote {document['config']}; {document['next']}")
    return 0


def names_a_verb(argv: Sequence[str]) -> bool:
    """Whether ``argv`` holds more than the global options: a verb, or --help (which lists
    the verbs). Without, the TUI opens, and the verbs' parsers (their modules) need not be
    built before its first paint."""
    args = iter(argv)
    for arg in args:
        if arg == "--project":
            next(args, None)
        elif arg in ("-h", "--help") or not arg.startswith("-"):
            return True
    return False


def open_tui(args: argparse.Namespace) -> int:
    if args.batch or args.json:
        raise UsageError("--batch and --json need a command; see 'relman --help'")
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError(
            "the interface needs a terminal; run it in one, or give a command (see 'relman --help')"
        )
    import gc

    # Start-up makes objects by the hundred thousand that live as long as the process
    # (modules, classes, styles): the collector would only scan them again and again. It is
    # paused until the first paint, when RelmanApp freezes them and resumes it.
    gc.disable()
    try:
        from core import api

        # Fail fast on a missing or broken relman.toml, before the screen is taken over;
        # the app is handed the project and its rows as recorded, and paints them at once.
        project, recorded = api.first_screen(args.project)
        from tui.app import RelmanApp

        # Without a relman.toml the interface reads what the repository declares, read-only.
        read_only = args.read_only or project.inferred
        app = RelmanApp(
            project_dir=args.project, read_only=read_only, project=project, recorded=recorded
        )
        app.run()
    finally:
        gc.enable()
    # Quit on SIGHUP or SIGTERM (tui/app.py hang_up): as a shell says it.
    return 128 + app.hung_up if app.hung_up else 0


# ------------------------------------------------------------------------------- plumbing


def run(argv: Sequence[str] | None = None) -> int:
    """Run one relman command; return its exit code."""
    try:
        return _run(argv)
    except BrokenPipeError:
        # The reader of the answer went away (`relman --json status | head -1`): stop
        # quietly, as a shell tool killed by SIGPIPE does; nothing more can be written there.
        _silence_stdout()
        return EXIT_BROKEN_PIPE


def _run(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    wants_json = "--json" in argv
    # The answer goes to the stdout of now: while the verb runs, sys.stdout is stderr.
    keep_stdout(sys.stdout)
    hangup: Hangup | None = None
    try:
        args = build_parser(with_verbs=names_a_verb(argv)).parse_args(argv)
        handler: Handler = getattr(args, "handler", open_tui)
        if args.read_only:
            # The engine's own guard too: nothing below may write, not even a migration.
            from core import api

            api.forbid_writes()
        if args.read_only and getattr(args, "mutates", False):
            from core.errors import ReadOnlyError

            raise ReadOnlyError(
                f"relman {args.verb}: refused in read-only mode; run it from a session "
                "without --read-only"
            )
        if handler is open_tui:
            return handler(args)  # the TUI handles SIGHUP and SIGTERM itself (tui/app.py)
        # SIGHUP and SIGTERM cancel tests and builds (through args.cancel), let a promotion
        # finish, stop anything else (tui/hangup.py).
        hangup = Hangup(getattr(args, "verb", None))
        args.cancel = hangup.cancel
        with hangup.installed(), contextlib.redirect_stdout(sys.stderr):
            return handler(args)
    except ReleaseError as exc:
        if debug:
            traceback.print_exc()
        message, code = exc.message, exc.exit_code
        if hangup is not None and hangup.received and _cancelled(exc):
            # What the signal cancelled exits as a shell says it: 128 + the signal's number.
            message, code = f"{hangup.received}: {message}", hangup.exit_code()
        print(f"relman: {message}", file=sys.stderr)
        if wants_json:
            emit({"ok": False, "error": message, "exit_code": code})
        return code
    except Terminated as exc:
        print(f"relman: {exc}: stopped", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print("relman: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        raise  # the answer's reader went away: run() ends quietly
    except Exception as exc:  # a bug or an unexpected tool failure: still one line
        if debug:
            traceback.print_exc()
        line = " ".join(f"{type(exc).__name__}: {exc}".split())
        print(f"relman: unexpected error: {line} (rerun with --debug for details)", file=sys.stderr)
        if wants_json:
            emit({"ok": False, "error": line, "exit_code": EXIT_INFRA})
        return EXIT_INFRA


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush finds nowhere to fail."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.__stdout__.fileno() if sys.__stdout__ else 1)
        os.close(devnull)


def _cancelled(exc: ReleaseError) -> bool:
    from core import api

    return isinstance(exc, api.Cancelled)


def main() -> None:
    code = run()
    leave(code if code is not None else EXIT_USAGE)


def leave(code: int) -> None:
    """Exit with ``code`` without tearing the interpreter down. What must happen at exit
    still does (atexit handlers, which include weakref finalizers such as temporary
    folders; flushed stdout and stderr); what is skipped is freeing every object and module
    one by one, about 0.1 s after a command that loaded DVC and BentoML, and nothing anyone
    sees. With another non-daemon thread alive, or a profiler or tracer, the usual exit."""
    others = [t for t in threading.enumerate() if t is not threading.main_thread()]
    if any(t.is_alive() and not t.daemon for t in others):
        sys.exit(code)
    if sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)  # a profiler or tracer (cProfile, coverage) writes its data after us
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed pipe or stream: nothing more can be said
        pass
    os._exit(code)
