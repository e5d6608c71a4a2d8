"""core.alerts.backtest: replaying recorded series through the effective rules; the series
CSV."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from core.alerts.backtest import backtest, per_minute, read_series_csv, rules_reading
from core.errors import UsageError

T0 = 1_700_000_040  # a minute start


def _write(tmp_path: Path, text: str, name: str = "series.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_read_series_csv_header_iso_and_gaps(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "timestamp,value\n"
        f"{T0},120.5\n"
        "\n"
        "2023-11-14T22:15:00Z,121\n"
        "2023-11-14T23:16:30+01:00, 122 \n"
        "2023-11-14T22:17:00,\n"
        f"{T0 + 240}.0,nan\n",
    )
    assert read_series_csv(path) == [(T0, 120.5), (T0 + 60, 121.0), (T0 + 150, 122.0)]


def test_read_series_csv_without_header(tmp_path: Path) -> None:
    assert read_series_csv(_write(tmp_path, f"{T0},1\n{T0 + 60},2\n")) == [
        (T0, 1.0),
        (T0 + 60, 2.0),
    ]


def test_bad_rows_name_file_and_lines(tmp_path: Path) -> None:
    path = _write(tmp_path, f"timestamp,value\n{T0},1\n{T0},abc\nyesterday,3\n{T0},1,2\n")
    with pytest.raises(UsageError) as err:
        read_series_csv(path)
    message = str(err.value)
    assert f"{path}:3: 'abc' is not a number" in message
    assert f"{path}:4: 'yesterday' is not a timestamp" in message
    assert f"{path}:5: expected 2 columns" in message
    assert "\n" not in message and err.value.exit_code == 2


def test_bad_rows_stop_after_three(tmp_path: Path) -> None:
    rows = "".join(f"{T0},x{i}\n" for i in range(10))
    with pytest.raises(UsageError) as err:
        read_series_csv(_write(tmp_path, "timestamp,value\n" + rows))
    message = str(err.value)
    assert "series.csv:4: 'x2' is not a number" in message
    assert "'x3'" not in message and "stopped there" in message


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"nope\.csv: cannot read the series"):
        read_series_csv(tmp_path / "nope.csv")
    with pytest.raises(UsageError, match="no timestamp,value rows"):
        read_series_csv(_write(tmp_path, "timestamp,value\n"))


def test_per_minute_means() -> None:
    samples = [(T0 + s, float(s)) for s in range(0, 120, 10)]  # 10 s cadence, 2 minutes
    assert per_minute([*samples, (T0 + 5, float("nan"))]) == [(T0, 25.0), (T0 + 60, 85.0)]


def test_rules_reading() -> None:
    assert rules_reading("p99_ms", {}) == ["latency_p99"]
    assert rules_reading("p95_ms", {}) == [
        "latency_regression",
        "latency_drop",
        "latency_trend",
        "latency_leak",
    ]
    assert rules_reading("p99_ms", {"leak_metric": "p99_ms"}) == [
        "latency_p99",
        "latency_regression",
        "latency_drop",
        "latency_trend",
        "latency_leak",
    ]
    assert rules_reading("error_rate", {}) == ["error_rate", "error_leak"]
    assert rules_reading("rps", {}) == []


def test_backtest_p99_spike(tmp_path: Path) -> None:
    lines = ["timestamp,value"]
    for minute in range(20):
        value = 900 if 5 <= minute < 8 else 200
        for second in (0, 20, 40):  # any cadence: three samples a minute
            lines.append(f"{T0 + minute * 60 + second},{value}")
    series = read_series_csv(_write(tmp_path, "\n".join(lines) + "\n"))
    alerts = backtest(series, "p99_ms", {}, service="iris", env="prod")
    assert [(a.rule, a.state, (a.t - T0) // 60) for a in alerts] == [
        ("latency_p99", "pending", 5),
        ("latency_p99", "firing", 6),
        ("latency_p99", "resolved", 9),
    ]
    assert alerts[1].at == "2023-11-14T22:20:00+00:00"
    assert alerts[1].detail == "p99 900 ms > 500 ms for 2 min"
    assert alerts[1].to_dict()["at"] == alerts[1].at


def test_backtest_leak_on_p95() -> None:
    rng = random.Random(2)
    series = [(T0 + m * 60, 120 + rng.gauss(0, 6)) for m in range(30)]
    series += [(T0 + (30 + m) * 60, 120 * (1 + 0.01 * m) + rng.gauss(0, 6)) for m in range(60)]
    alerts = backtest(series, "p95_ms", {"leak_h": 8}, service="iris", env="prod")
    assert alerts and alerts[0].rule == "latency_leak" and alerts[0].state == "firing"
    assert 30 < (alerts[0].t - T0) // 60 < 60


def test_backtest_rejects_unread_and_unknown_metrics() -> None:
    series = [(T0, 1.0)]
    with pytest.raises(UsageError, match="no alert rule reads rps"):
        backtest(series, "rps", {}, service="iris", env="prod")
    with pytest.raises(UsageError, match="unknown metric 'latency'"):
        backtest(series, "latency", {}, service="iris", env="prod")
