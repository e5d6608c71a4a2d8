"""The relman Textual app: the header, the keys every screen shares, the command palette, and
the engine calls the screens start.

The app holds the loaded project and the run in progress. Screens read the engine through
core.api in workers and post what they found (screens/messages.py). A release action runs
in a thread worker that belongs to the app, not to a screen, so leaving the run screen never
stops it; its log lines come back as messages, feed the run's state here, and every screen
that cares hears of it through the ``run_changed`` signal. Only a cancel stops it
(:meth:`RelmanApp.cancel_run`): the run's event is passed to the engine, which ends the
processes, records the run cancelled and raises Cancelled.

Quitting never leaves a run behind silently (:meth:`RelmanApp.action_quit`): a run that can
be cancelled is, once the user says yes, and relman quits when its processes have stopped
(or after QUIT_GRACE, saying what may still run); one that cannot be stopped halfway is
waited for.
"""

from __future__ import annotations

import contextlib
import gc
import signal
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.signal import Signal

from core.errors import EXIT_INFRA, ReadOnlyError, ReleaseError
from screens.messages import ProjectLoaded, RunFinished, RunLine, RunProgress, SignalsChanged
from screens.overview import OverviewScreen
from screens.palette import ScreenActions

if TYPE_CHECKING:
    from textual.driver import Driver

    from core.api import Project, ServiceView
    from screens.actions import ActionPlan
    from screens.runs import RunState

READ_ONLY = "READ-ONLY"
SEVERITY = {"ok": "information", "blocked": "warning", "failed": "error", "cancelled": "warning"}
# Seconds a run cancelled by quitting gets to stop its processes before relman quits anyway.
QUIT_GRACE = 10.0
# How long a thread may hold the interpreter while another waits for it (Python's default is
# 5 ms). The event loop and Textual's output thread share it with the workers (git, DVC and
# SQLite are read in Python): at 5 ms, each hand-over to the output thread can wait that long
# behind a worker, and a frame reaches the terminal tens of ms late (the first one too: the
# first poll starts right after it).
SWITCH_INTERVAL = 0.001


class RelmanApp(App[None]):
    """relman in a terminal: what is live where, and the release actions on it."""

    TITLE = "relman"
    # The screens' styles are listed here rather than in each Screen.CSS_PATH: Textual 8 does
    # not load the CSS_PATH of the default screen (get_default_screen), only of pushed ones.
    CSS_PATH = ["app.tcss", "../screens/overview.tcss"]
    COMMANDS = App.COMMANDS | {ScreenActions}
    BINDING_GROUP_TITLE = "App"
    BINDINGS = [
        Binding("q", "quit", "Quit", tooltip="Leave relman"),
        Binding(
            "question_mark",
            "help",
            "Help",
            key_display="?",
            tooltip="Every key of this screen",
        ),
        # Not in the footer (no room at 80 columns): in the help and the command palette.
        Binding(
            "h", "audit", "History", tooltip="The history and the audit chain check", show=False
        ),
        Binding(
            "l", "last_run", "Last run", tooltip="The run in progress, or the last one", show=False
        ),
        Binding(
            "w",
            "pipelines",
            "Pipelines",
            tooltip="Pipeline runs, their steps, and the watcher",
            show=False,
        ),
        Binding(
            "exclamation_mark",
            "alerts",
            "Alerts",
            key_display="!",
            tooltip="Firing and past alerts, and their rollback commands",
        ),
        # Terminal habits (k9s, less): a view by name, a list narrowed as you type, the logs.
        Binding(
            "colon", "jump", "Jump", key_display=":", tooltip="Go to a view by name", show=False
        ),
        Binding(
            "slash",
            "filter",
            "Filter",
            key_display="/",
            tooltip="Narrow the list as you type",
            show=False,
        ),
        Binding(
            "o",
            "logs",
            "Logs",
            tooltip="Output of the served process and access log of the selected env",
            show=False,
        ),
    ]

    def __init__(
        self,
        project_dir: Path | None = None,
        *,
        read_only: bool = False,
        exit_on_load_error: bool = False,
        project: Project | None = None,
        recorded: list[ServiceView] | None = None,
    ) -> None:
        # What the imports made (Textual, rich, the engine) lives as long as the
        # process: out of the collector's sight, it is never scanned again, and the first
        # paint does not wait for a full collection of it.
        gc.freeze()
        sys.setswitchinterval(SWITCH_INTERVAL)
        super().__init__()
        self.project_dir = project_dir
        self.read_only = read_only
        # When the project cannot be loaded at all (relman.toml missing or broken), leave
        # with its exit code and keep its one line in load_error, for the command line to
        # print once the terminal is restored: the command line then need not validate
        # relman.toml before the first paint.
        self.exit_on_load_error = exit_on_load_error
        self.load_error: str | None = None
        # Set once a screen has loaded the project (ProjectLoaded bubbles up to the app), or
        # from the start when the command line read it already: the overview then paints its
        # rows at once, from relman.toml and the ledger's record.
        self.project: Project | None = project
        # Its rows as the ledger recorded them, when the command line read them with it
        # (api.first_screen); else the overview reads them (screens/overview.py).
        self.recorded = recorded
        # The engine call started last from this app (running or ended).
        self.current_run: RunState | None = None
        self.run_changed: Signal[RunState] = Signal(self, "run-changed")
        # The run relman quits after, once the user said so (cancelled, or waited for).
        self.quitting: RunState | None = None
        # The signal (SIGHUP, SIGTERM) relman quits on, if one came (see hang_up).
        self.hung_up: int | None = None
        # What on-call must see on every screen, as the overview last read it: ``1 firing ·
        # 1 interrupted`` (empty when all is well).
        self.signals = ""
        self.sub_title = self.compose_sub_title(project.config.project.name if project else None)
        self.set_class(read_only, "-read-only")

    def compose_sub_title(self, project_name: str | None) -> str:
        """The header's sub-title: the project's name, READ-ONLY when it is, and the alerts
        firing and the environments left interrupted (``1 firing · 1 interrupted``)."""
        mode = READ_ONLY if self.read_only else None
        return " · ".join(part for part in (project_name, mode, self.signals) if part)

    def get_driver_class(self) -> type[Driver]:
        from tui.hangup import outliving_hangups

        # A closed terminal must not hang relman on its last writes (see catch_hangups).
        return outliving_hangups(super().get_driver_class())

    def on_mount(self) -> None:
        self.call_after_refresh(self.resume_collector)
        self.catch_hangups()

    def resume_collector(self) -> None:
        """After the first paint: the garbage of the start-up is collected (only what was
        made since __init__ froze the rest: a few ms), what remains goes out of the
        collector's sight (frozen), and the collector runs again if the command line paused
        it (tui/cli.py)."""
        gc.collect()
        gc.freeze()
        gc.enable()

    def get_default_screen(self) -> Screen[None]:
        return OverviewScreen(
            self.project_dir, read_only=self.read_only, project=self.project, recorded=self.recorded
        )

    def on_project_loaded(self, message: ProjectLoaded) -> None:
        self.project = message.project
        self.sub_title = self.compose_sub_title(message.project.config.project.name)

    def on_signals_changed(self, message: SignalsChanged) -> None:
        self.signals = message.summary
        self.sub_title = self.compose_sub_title(
            self.project.config.project.name if self.project else None
        )

    # ------------------------------------------------------------------ keys

    def showing(self, module: str, screen: str) -> bool:
        """Whether the screen on top is ``module.screen``. The screens other than the
        overview are imported when first shown, not before the first paint (the run screen
        alone pulls in rich.pretty and attrs); a module not loaded yet shows nothing."""
        loaded = sys.modules.get(module)
        return loaded is not None and isinstance(self.screen, getattr(loaded, screen))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "last_run":
            return self.current_run is not None and not self.showing("screens.run", "RunScreen")
        if action == "audit":
            return not self.showing("screens.audit", "AuditScreen")
        if action == "alerts":
            return not self.showing("screens.alerts", "AlertsScreen")
        if action == "pipelines":
            return not self.showing("screens.pipelines", "PipelinesScreen")
        if action in ("jump", "filter", "logs"):
            # Not over a dialog; the logs, not over themselves.
            return not self.screen.is_modal and not (
                action == "logs" and self.showing("screens.logs", "LogsScreen")
            )
        return True

    def action_help(self) -> None:
        """Show every key of the current screen (and of the app)."""
        from screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def action_audit(self) -> None:
        from screens.audit import AuditScreen

        if not isinstance(self.screen, AuditScreen):
            self.push_screen(AuditScreen())

    def action_alerts(self) -> None:
        from screens.alerts import AlertsScreen

        if not isinstance(self.screen, AlertsScreen):
            self.push_screen(AlertsScreen())

    def action_pipelines(self) -> None:
        from screens.pipelines import PipelinesScreen

        if not isinstance(self.screen, PipelinesScreen):
            self.push_screen(PipelinesScreen())

    def action_jump(self) -> None:
        """``:``: the prompt of a view's name, then that view (screens/views.py)."""
        from screens.jump import JumpScreen
        from screens.views import completions, jump

        below = self.screen

        def chosen(line: str | None) -> None:
            if line:
                jump(self, below, line)

        self.push_screen(JumpScreen(completions(self)), chosen)

    def action_filter(self) -> None:
        """``/``: narrow the list of the screen (screens/filter.py)."""
        from screens.filter import open_filter

        if not open_filter(self.screen):
            self.notify("Nothing to filter on this screen.", timeout=3)

    def action_logs(self) -> None:
        from screens.views import jump

        jump(self, self.screen, "logs")

    def action_last_run(self) -> None:
        from screens.run import RunScreen

        if self.current_run is None:
            self.notify("Nothing has run from this session yet.")
        elif not isinstance(self.screen, RunScreen):
            self.push_screen(RunScreen(self.current_run))

    async def action_quit(self) -> None:
        """Quit (q, ctrl+q, the palette). With a run in progress, ask first: a cancellable
        one is cancelled and its processes stopped before relman quits, one that cannot be
        stopped halfway is waited for. Textual's own quit would leave either running."""
        run = self.current_run
        if run is None or not run.running:
            self.exit()
        elif self.quitting is run:
            self.notify(self.quitting_note(run))
        elif run.cancelling:
            self.quit_after(run)  # cancelled already: quitting loses nothing more
        elif not self.showing("screens.confirm", "QuitScreen"):
            from screens.confirm import QuitScreen

            def answered(yes: bool | None) -> None:
                if yes and run.running:
                    self.quit_after(run)
                elif yes:  # it ended while the dialog was open
                    self.leave(run)

            self.push_screen(QuitScreen(run), answered)

    def catch_hangups(self) -> None:
        """SIGHUP (the terminal closed) and SIGTERM quit as ``q`` does, without asking: a
        test or build run is cancelled (its processes stopped, the run recorded), a
        promotion goes on to its end, and the terminal is restored, never left under a stale
        frame. Only the main thread's loop may take signals (a test's may not)."""
        import asyncio

        from tui.hangup import SIGNALS, remember_terminals

        remember_terminals()
        loop = asyncio.get_running_loop()
        for signum in SIGNALS:
            with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
                loop.add_signal_handler(signum, self.hang_up, signum)

    def on_unmount(self) -> None:
        import asyncio

        from tui.hangup import SIGNALS

        loop = asyncio.get_running_loop()
        for signum in SIGNALS:
            with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
                loop.remove_signal_handler(signum)

    def hang_up(self, signum: int) -> None:
        """SIGHUP or SIGTERM ``signum`` came (see :meth:`catch_hangups`); relman's exit code
        is then 128 + ``signum`` (``hung_up``)."""
        from tui.hangup import detach_hung_up_terminal

        if signum == signal.SIGHUP:
            detach_hung_up_terminal()  # writes to a dead terminal would fail, and hang
        self.hung_up = self.hung_up or signum
        run = self.current_run
        if run is None or not run.running:
            self.exit()
        elif self.quitting is not run:
            self.quit_after(run)

    def quit_after(self, run: RunState) -> None:
        """Quit once ``run`` has ended: cancel it first when it can be (and quit anyway
        after QUIT_GRACE), otherwise let it go on to its end. The event loop never waits."""
        self.quitting = run
        if run.cancellable:
            run.ask_cancel()
            self.set_timer(QUIT_GRACE, lambda: self.quit_anyway(run))
        self.run_changed.publish(run)
        if not (
            self.showing("screens.run", "RunScreen") and getattr(self.screen, "run", None) is run
        ):
            from screens.run import RunScreen

            self.push_screen(RunScreen(run))
        self.notify(self.quitting_note(run), title="Quitting")

    def quitting_note(self, run: RunState) -> str:
        if run.cancellable:
            return (
                f"cancelling… relman quits once {run.title} has stopped (at most {QUIT_GRACE:g} s)"
            )
        return f"relman quits when {run.title} is done"

    def quit_anyway(self, run: RunState) -> None:
        """QUIT_GRACE after the cancel the run still goes: quit, and say (once the terminal
        is restored) what may still be running."""
        if self.quitting is run and run.running:
            self.exit(message=Text(run.left_running(QUIT_GRACE)))

    def leave(self, run: RunState) -> None:
        """Quit after ``run`` ended, saying how (the user may not have seen it end)."""
        self.exit(message=Text(f"relman: {run.summary()}"))

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """Textual's own commands, but Quit and Keys: the screen's provider (ScreenActions)
        offers those with the rest of the keys."""
        for command in super().get_system_commands(screen):
            if command.title not in ("Quit", "Keys"):
                yield command

    # ------------------------------------------------------------------ engine calls

    @property
    def busy(self) -> bool:
        """Whether an engine call started here is still going (one at a time)."""
        return self.current_run is not None and self.current_run.running

    def can_start(self, verb: str) -> bool:
        if self.busy:
            assert self.current_run is not None
            self.notify(
                f"{self.current_run.title} is still running (l shows it); {verb} when it ends.",
                severity="warning",
            )
            return False
        return True

    def start_run(self, plan: ActionPlan, reason: str = "") -> RunState | None:
        """Run ``plan`` in a worker of the app. In read-only mode a mutating plan is sent to
        the engine without a run screen: the engine refuses, and the app says what to run."""
        from screens.runs import RunState

        if not self.can_start(plan.verb):
            return None
        run = RunState(plan, reason=reason)
        refusal = self.read_only and plan.mutating
        if not refusal:
            from screens.run import RunScreen

            self.current_run = run
            self.push_screen(RunScreen(run))
            self.run_changed.publish(run)
        self.execute(run)
        return run

    @work(thread=True, exit_on_error=False, group="engine")
    def execute(self, run: RunState) -> None:
        """The engine call, off the event loop; everything it says comes back as messages."""
        from screens.actions import EngineCall

        def log(line: str) -> None:
            self.post_message(RunLine(run, line))

        from core.api import Cancelled

        call = EngineCall(
            log=log,
            on_event=lambda event: self.post_test_event(run, event),
            read_only=self.read_only,
            reason=run.reason,
            cancel=run.cancel,
        )
        try:
            document = run.plan.call(call)
        except Cancelled as error:
            stopped = {"ok": False, "steps": error.steps} if error.steps else None
            self.post_message(
                RunFinished(
                    run,
                    document=stopped,
                    error=error.message,
                    exit_code=error.exit_code,
                    cancelled=True,
                )
            )
        except ReadOnlyError as error:
            self.post_message(RunFinished(run, error=error.message, exit_code=1, refused=True))
        except ReleaseError as error:
            self.post_message(RunFinished(run, error=error.message, exit_code=error.exit_code))
        except Exception as error:  # a bug or a crash of a tool: one line, never a traceback
            line = " ".join(f"{type(error).__name__}: {error}".split())
            self.post_message(RunFinished(run, error=line, exit_code=EXIT_INFRA))
        else:
            self.post_message(RunFinished(run, document=document))

    def post_test_event(self, run: RunState, event: Any) -> None:
        """A test suite's progress (core.testing.results' TestEvent), from the worker thread."""
        kind, suite = getattr(event, "kind", ""), getattr(event, "suite", "")
        counts = dict(getattr(event, "counts", {}) or {})
        if kind == "collected":
            total = getattr(event, "total", None)
            self.post_message(RunLine(run, f"{suite}: {total} test(s) collected"))
        elif kind == "result":
            case = getattr(event, "case", None)
            if case is not None and getattr(case, "outcome", "") in ("failed", "error"):
                message = " ".join(str(getattr(case, "message", "") or "").split())[:200]
                self.post_message(RunLine(run, f"{case.outcome.upper()} {case.nodeid}: {message}"))
        elif kind == "finished":
            failed = counts.get("failed", 0) + counts.get("error", 0)
            status = getattr(event, "status", "") or ("failed" if failed else "passed")
            detail = getattr(event, "detail", "") or ""
            self.post_message(RunLine(run, f"{status:<7} {suite}  {detail}"))
            return
        done, total = int(getattr(event, "done", 0) or 0), getattr(event, "total", None)
        self.post_message(RunProgress(run, suite, done, total, counts))

    def on_run_line(self, message: RunLine) -> None:
        message.run.add_line(message.line)
        self.run_changed.publish(message.run)

    def on_run_progress(self, message: RunProgress) -> None:
        message.run.progress(message.suite, message.done, message.total, message.counts)
        self.run_changed.publish(message.run)

    def cancel_run(self, run: RunState) -> None:
        """Ask the engine to stop ``run`` (after the user confirmed it). The call ends soon
        after, as cancelled; until then the run screen says it is stopping."""
        if not run.running:
            return
        if not run.cancellable:
            self.notify(
                f"{run.title} cannot be stopped halfway; it goes on to its end.",
                severity="warning",
            )
            return
        run.ask_cancel()
        self.run_changed.publish(run)

    def on_run_finished(self, message: RunFinished) -> None:
        run = message.run
        run.finish(message.document, message.error, message.exit_code, cancelled=message.cancelled)
        if self.quitting is run:
            self.leave(run)
            return
        if message.refused:
            self.notify(
                f"{message.error}. From a session that may act, run:\n"
                f"{run.plan.command(run.reason)}",
                title=READ_ONLY,
                severity="warning",
                timeout=30,
            )
            return
        self.run_changed.publish(run)
        screen = self.screen
        showing = self.showing("screens.run", "RunScreen") and getattr(screen, "run", None) is run
        if not showing:
            severity = SEVERITY.get(run.outcome or "", "information")
            self.notify(run.summary(), title="Run ended", severity=severity, timeout=10)  # type: ignore[arg-type]
