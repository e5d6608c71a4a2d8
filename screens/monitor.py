"""The monitor: one environment's alerts first (at 80x24 they are what on-call opens it for,
so they sit above the charts, never below the fold), then its traffic over a range (5 min,
1 h, 24 h): latency p50, p95 and p99, request rate and error rate, charted in the terminal;
then the drift of its features.

Every REFRESH_SECONDS a thread worker reads ``api.metrics`` and ``api.alerts`` (the metric
store, read-only) and posts :class:`~screens.messages.MonitorLoaded`; the charts are drawn from
it and the next poll is armed (screens/live.py). The collector writes one point a minute, so
the charts move once a minute; the alerts may change at any poll. The drift per feature
(``api.drift``: the training data against the window's records, a heavier read) is read by
a worker of its own at most every DRIFT_SECONDS, and at once for a new environment or ``r``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from rich.console import RenderableType
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Footer, Header, Sparkline, Static

from core import api
from core.errors import ReleaseError
from screens.charts import Format, bars, ms, percent, rate, stats
from screens.common import StatusStatic, age, clock, grid, label, status_text
from screens.drift import drift_section
from screens.live import NO_DATA, PolledScreen
from screens.live_data import MonitorView, read_monitor
from screens.messages import DriftLoaded, EngineFailed, MonitorLoaded, PollDone

# The ranges, their keys and how the title says them.
RANGES = {"5m": "5 min", "1h": "1 h", "24h": "24 h"}
# (id, title, the point's field, its format), top to bottom.
CHARTS: tuple[tuple[str, str, str, Format], ...] = (
    ("p50", "p50", "p50_ms", ms),
    ("p95", "p95", "p95_ms", ms),
    ("p99", "p99", "p99_ms", ms),
    ("rps", "req/s", "rps", rate),
    ("errors", "errors", "error_rate", percent),
)
# From this height on, the charts get three rows each instead of two.
TALL = 36
# The drift is measured over a window of minutes (15 by default): reading it at every poll
# would repeat the same sums.
DRIFT_SECONDS = 30.0
# The open (firing, pending) alerts listed above the charts; more are counted, and the past
# ones too (the alerts screen, !, lists them all).
TOP_ALERTS = 3
OPEN = ("firing", "pending")


class Bars(Sparkline):
    """Textual's Sparkline, but a minute without a value is a gap rather than closed up,
    so the charts of one environment share their time axis (a latency spike sits above the
    request rate of the same minutes)."""

    def render(self) -> Text:
        values: Sequence[float | None] = self.data or []
        rows = bars(values, self.size.width, self.size.height)
        return Text("\n".join(rows), style=self.get_component_rich_style("sparkline--max-color"))


class Chart(Horizontal):
    """A titled bar chart of one series, with its last, lowest and highest values."""

    def __init__(self, title: str, fmt: Format, *, id: str) -> None:
        super().__init__(id=id, classes="chart")
        self.title = title
        self.fmt = fmt
        self.values: list[float | None] | None = None

    def compose(self) -> ComposeResult:
        yield Static(self.title, classes="chart-title", markup=False)
        yield Bars([], classes="chart-line")
        yield Static("", classes="chart-stats", markup=False)

    def show(self, values: Sequence[float | None]) -> None:
        """Draw ``values``, one a minute, oldest first (None: a minute without one)."""
        if list(values) == self.values:
            return
        self.values = list(values)
        self.query_one(Bars).data = self.values  # type: ignore[assignment]
        self.query_one(".chart-stats", Static).update(stats(self.values, self.fmt))


def minutes_in(range_: str) -> int:
    return {"5m": 5, "1h": 60, "24h": 1440}[range_]


def heading(view: MonitorView) -> str:
    """``iris in dev · v1.0.0 (e25c625) for 3h · last 1 h: 42 of 60 min with data``."""
    line = f"{view.service} in {view.env}"
    env = view.environment
    if env is not None and env.release:
        line += f" · {label(env.release, env.version)} for {age(env.since)}"
    elif env is not None:
        line += f" · {env.state}"
    minutes = minutes_in(view.range_)
    return f"{line} · last {RANGES[view.range_]}: {len(view.points)} of {minutes} min with data"


def note(view: MonitorView) -> tuple[str, str]:
    """The line above the charts when something needs saying, and its status."""
    env = view.environment
    if env is not None and not env.release and not view.points:
        return f"nothing is deployed in {view.env}: no traffic to chart", "skipped"
    if not view.points and view.collector is None:
        return NO_DATA, "stale"
    if not view.points and view.source_problem:
        return f"no data: the collector's source: {view.source_problem}", "stale"
    if not view.points:
        return (
            f"no traffic in the last {RANGES[view.range_]}: the collector (pid "
            f"{view.collector}) writes a point for each minute with requests",
            "skipped",
        )
    if view.collector is None:
        last = clock(view.points[-1]["t"])
        return f"the collector is not running: these figures stop at {last}; {NO_DATA}", "stale"
    if view.source_problem:
        return f"the collector's source: {view.source_problem}", "stale"
    return "", "skipped"


class MonitorScreen(PolledScreen):
    """Charts, drift and alerts of one environment; 1 2 3 choose the range."""

    CSS_PATH = "monitor.tcss"
    BINDING_GROUP_TITLE = "Monitor"
    BINDINGS = [
        Binding("escape", "back", "Back", tooltip="Back to the screen before"),
        Binding("1", "range('5m')", "5 min", tooltip="Chart the last five minutes"),
        Binding("2", "range('1h')", "1 h", tooltip="Chart the last hour"),
        Binding("3", "range('24h')", "24 h", tooltip="Chart the last day"),
        Binding("n", "next_env", "Next env", tooltip="The service's next environment"),
        Binding("r", "refresh", "Refresh", tooltip="Read the metric store now", show=False),
    ]

    def __init__(self, service: str, env: str, envs: list[str], range_: str = "1h") -> None:
        super().__init__()
        self.service = service
        self.env = env
        self.envs = envs or [env]
        self.range_ = range_
        self.view: MonitorView | None = None
        # api.drift of (service, env), when it was read (time.monotonic), whether a read runs.
        self.drift: tuple[str, str, dict[str, Any] | None] | None = None
        self.drift_read_at = -float("inf")
        self.drift_loading = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(self.reading(), id="monitor-title", markup=False)
        yield StatusStatic("reading the alerts…", id="monitor-alerts")
        yield StatusStatic("", id="monitor-note")
        with VerticalScroll(id="monitor-body"):
            for key, title, _field, fmt in CHARTS:
                yield Chart(title, fmt, id=f"chart-{key}")
            yield Static("Drift", classes="heading")
            yield StatusStatic("", id="monitor-drift", classes="section")
        yield Footer(compact=True)

    def reading(self) -> str:
        return f"{self.service} in {self.env} · last {RANGES[self.range_]} · reading…"

    def on_mount(self) -> None:
        self.query_one("#monitor-note").display = False
        self.poll_now()

    def on_resize(self) -> None:
        self.set_class(self.size.height >= TALL, "-tall")

    # ------------------------------------------------------------------ keys

    def action_back(self) -> None:
        self.dismiss()

    def action_refresh(self) -> None:
        self.drift_read_at = -float("inf")  # the drift too
        self.poll_now()

    def action_range(self, range_: str) -> None:
        if range_ in RANGES and range_ != self.range_:
            self.range_ = range_
            self.query_one("#monitor-title", Static).update(self.reading())
            self.poll_now()

    def action_next_env(self) -> None:
        index = self.envs.index(self.env) if self.env in self.envs else -1
        self.env = self.envs[(index + 1) % len(self.envs)]
        self.query_one("#monitor-title", Static).update(self.reading())
        self.poll_now()

    # ------------------------------------------------------------------ reading

    def fetch(self) -> None:
        self.load(self.service, self.env, self.range_)
        if self.drift_due():
            self.drift_loading = True
            self.drift_read_at = time.monotonic()
            self.load_drift(self.service, self.env)

    def drift_due(self) -> bool:
        if self.drift_loading:
            return False
        stale = self.drift is None or self.drift[:2] != (self.service, self.env)
        return stale or time.monotonic() - self.drift_read_at >= DRIFT_SECONDS

    @work(thread=True, exit_on_error=False, group="drift")
    def load_drift(self, service: str, env: str) -> None:
        try:
            project = getattr(self.app, "project", None) or api.load_project(None)
            self.post_message(DriftLoaded(service, env, api.drift(project, service, env)))
        except ReleaseError as error:
            self.post_message(DriftLoaded(service, env, None, error.message))
        except Exception as error:  # a bug or an I/O failure: say it, never crash the UI
            self.post_message(DriftLoaded(service, env, None, f"{type(error).__name__}: {error}"))

    def on_drift_loaded(self, message: DriftLoaded) -> None:
        message.stop()
        self.drift_loading = False
        if message.error:
            self.notify(message.error, title="Cannot measure the drift", severity="error")
        if (message.service, message.env) != (self.service, self.env):
            self.drift_read_at = -float("inf")  # read for an environment left since
            if self.showing:
                self.poll_now()
            return
        self.drift = (message.service, message.env, message.document)
        if message.error:
            self.drift = (message.service, message.env, {"measured": False, "note": message.error})
        self.show_drift()

    def show_drift(self) -> None:
        """The drift read for this environment (``reading…`` until there is one), with the
        states of its open drift alerts."""
        section = self.query_one("#monitor-drift", StatusStatic)
        alerts = self.view.alerts if self.view is not None else []
        drift = self.drift
        document = drift[2] if drift is not None and drift[:2] == (self.service, self.env) else None
        section.update(drift_section(section, document, alerts))

    @work(thread=True, exclusive=True, exit_on_error=False, group="monitor")
    def load(self, service: str, env: str, range_: str) -> None:
        try:
            project = getattr(self.app, "project", None) or api.load_project(None)
            self.post_message(MonitorLoaded(read_monitor(project, service, env, range_)))
        except ReleaseError as error:
            self.post_message(EngineFailed("Cannot read the metric store", error.message))
        except Exception as error:  # a bug or an I/O failure: say it, never crash the UI
            line = f"{type(error).__name__}: {error}"
            self.post_message(EngineFailed("Cannot read the metric store", line))
        finally:
            self.post_message(PollDone())

    def on_engine_failed(self, message: EngineFailed) -> None:
        message.stop()
        self.notify(message.error, title=message.title, severity="error", timeout=10)

    # ------------------------------------------------------------------ showing

    def on_monitor_loaded(self, message: MonitorLoaded) -> None:
        message.stop()
        view = message.view
        if (view.service, view.env, view.range_) != (self.service, self.env, self.range_):
            return  # read for a range or an environment left since
        self.view = view
        with self.app.batch_update():
            self.query_one("#monitor-title", Static).update(heading(view))
            line, status = note(view)
            shown = self.query_one("#monitor-note", StatusStatic)
            shown.update(status_text(shown, status, line))
            shown.display = bool(line)
            for key, _title, field, _fmt in CHARTS:
                chart = self.query_one(f"#chart-{key}", Chart)
                chart.show(view.series(field, minutes_in(view.range_)))
            self.show_drift()
            alerts = self.query_one("#monitor-alerts", StatusStatic)
            alerts.update(self.render_alerts(alerts, view))

    def render_alerts(self, section: StatusStatic, view: MonitorView) -> RenderableType:
        """The open alerts of this environment, firing first (TOP_ALERTS of them: state, rule
        and its line), then one line counting the rest; one line when none is open."""
        return alerts_section(section, view.env, view.alerts)


def alerts_section(
    section: StatusStatic, env: str, alerts: Sequence[dict[str, Any]]
) -> RenderableType:
    """What the top of the monitor says of ``env``'s alerts (see MonitorScreen.render_alerts)."""
    open_ = [alert for alert in alerts if alert.get("state") in OPEN]
    past = len(alerts) - len(open_)
    more = [f"{len(open_) - TOP_ALERTS} more open"] if len(open_) > TOP_ALERTS else []
    more += [f"{past} resolved"] if past else []
    rest = Text(f"{' · '.join(more)} (! lists them)", style="dim") if more else None
    if not open_:
        line = Text.assemble(status_text(section, "ok", f"no alert open in {env}"))
        if rest is not None:
            line.append(" · ")
            line.append_text(rest)
        return line
    table = grid(8, 18, None)
    for alert in open_[:TOP_ALERTS]:
        since = f" · {age(alert['since'])} ago" if alert.get("since") else ""
        table.add_row(
            state_text(section, alert), Text(alert["name"]), Text(alert["detail"] + since)
        )
    if rest is not None:
        table.add_row(Text(""), rest, Text(""))
    return table


def state_text(section: StatusStatic, alert: dict[str, Any]) -> Text:
    return status_text(section, str(alert.get("state") or "unknown"))
