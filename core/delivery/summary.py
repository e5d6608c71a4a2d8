"""The Markdown summary of a ``relman release`` run, for a pull request or a CI job page.

It reads the run document of docs/json.md (``ok``, ``steps`` of ``{"name", "status", "seconds",
"detail"}`` and the ``cases`` of the steps that ran a suite, plus ``service``, ``version``,
``release``, ``lineage``, ``environments``, ``seconds``) and nothing else, so what the summary
says is what ``--json`` said: the same one-line ``detail`` per step, and each failing test by
its nodeid with its assertion line. Missing fields are left out, never guessed.

GitHub renders ``$GITHUB_STEP_SUMMARY`` (GitHub-flavoured Markdown) on the job's page; every
step of a job appends to that one file, so relman appends too.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.errors import UsageError
from core.lineage.dvcinfo import flat_view
from core.lineage.metrics_file import flatten_metrics
from core.testing.failures import failures

__all__ = ["human_duration", "human_size", "markdown_summary", "write_summary"]

_ICON = {"passed": "✅", "failed": "❌", "skipped": "⏭️"}
_MAX_VALUES = 20  # params or metrics shown on one line; the rest are counted
_MAX_FAILURES = 20  # failing tests listed; the rest are counted


def markdown_summary(document: Mapping[str, Any]) -> str:
    """The run as GitHub-flavoured Markdown: title, first failure, failing tests, steps,
    lineage, total."""
    ok = bool(document.get("ok"))
    lines = [f"## {'✅' if ok else '❌'} {_title(document, ok)}", ""]
    release = document.get("release")
    if release:
        lines += [f"Release {_code(str(release))}", ""]

    steps = [step for step in document.get("steps") or [] if isinstance(step, Mapping)]
    failed = next((step for step in steps if step.get("status") == "failed"), None)
    if failed is not None:
        lines += [f"> **{_text(failed.get('name'))}**: {_text(failed.get('detail'))}", ""]
    elif not ok and document.get("error"):
        lines += [f"> {_text(document.get('error'))}", ""]
    lines += _failing_tests(document)

    if steps:
        lines += ["| | Step | Time | Detail |", "| :-: | --- | ---: | --- |"]
        for step in steps:
            status = str(step.get("status", ""))
            seconds = step.get("seconds")
            time = human_duration(seconds) if status != "skipped" and seconds is not None else ""
            lines.append(
                f"| {_ICON.get(status, '❔')} | {_cell(step.get('name'))} | {time} "
                f"| {_cell(step.get('detail'))} |"
            )
        lines.append("")

    lineage = document.get("lineage")
    if isinstance(lineage, Mapping):
        lines += _lineage(lineage)

    total = document.get("seconds")
    if isinstance(total, int | float):
        lines += [f"Total: {human_duration(total)}", ""]
    return "\n".join(lines)


def write_summary(
    document: Mapping[str, Any],
    path: Path | None,
    *,
    github_env: Mapping[str, str] = os.environ,
) -> list[Path]:
    """Write the summary to ``path`` (replaced) and append it to ``$GITHUB_STEP_SUMMARY``.

    Returns the files written. A file that cannot be written is a UsageError naming it: the
    path came from the command line or the CI configuration.
    """
    text = markdown_summary(document)
    written: list[Path] = []
    step_summary = github_env.get("GITHUB_STEP_SUMMARY", "").strip()
    github = Path(step_summary) if step_summary else None
    if path is not None and not (github is not None and _same_file(path, github)):
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(
                f"cannot write the summary to {path}: {exc.strerror or exc}; "
                "pass a writable path to --summary"
            ) from exc
        written.append(path)
    if github is not None:
        try:
            with github.open("a", encoding="utf-8") as handle:
                # Keep the Markdown of earlier steps and ours apart.
                handle.write(("\n" if handle.tell() else "") + text)
        except OSError as exc:
            raise UsageError(
                f"cannot append the summary to $GITHUB_STEP_SUMMARY ({github}): "
                f"{exc.strerror or exc}; check the CI job's environment"
            ) from exc
        written.append(github)
    return written


def human_size(size: Any) -> str:
    """``1536`` -> ``1.5 KiB``; empty when unknown."""
    if not isinstance(size, int | float) or isinstance(size, bool) or size < 0:
        return ""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def human_duration(seconds: Any) -> str:
    """``0.42`` -> ``0.4 s``, ``83`` -> ``1 min 23 s``, ``3700`` -> ``1 h 1 min``."""
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {secs} s"


def _title(document: Mapping[str, Any], ok: bool) -> str:
    service = str(document.get("service") or "release")
    version = document.get("version")
    what = _text(f"{service} {version}" if version else service)
    envs = _env_names(document.get("environments"))
    if ok:
        return f"{what} released" + (f" to {', '.join(envs)}" if envs else "")
    return f"{what}: release failed"


def _env_names(environments: Any) -> list[str]:
    names: list[str] = []
    for env in environments if isinstance(environments, list) else []:
        if isinstance(env, Mapping):
            env = env.get("name") or env.get("env")
        if env:
            names.append(_text(env))
    return names


def _failing_tests(document: Mapping[str, Any]) -> list[str]:
    """``- ❌ `nodeid` (test model): AssertionError: ...``, one line per failing test."""
    failed = failures(document)
    if not failed:
        return []
    lines = ["### Failing tests", ""]
    for failure in failed[:_MAX_FAILURES]:
        lines.append(
            f"- ❌ {_code(failure.nodeid)} ({_text(failure.step)}): {_text(failure.headline)}"
        )
    more = len(failed) - _MAX_FAILURES
    if more > 0:
        lines.append(f"- and {more} more failing tests")
    return [*lines, ""]


def _lineage(lineage: Mapping[str, Any]) -> list[str]:
    lines = ["### Lineage", ""]
    git = lineage.get("git")
    if isinstance(git, Mapping) and git.get("commit"):
        commit = _code(str(git["commit"])[:12])
        branch = f" on {_code(str(git['branch']))}" if git.get("branch") else ""
        dirty = " (uncommitted changes)" if git.get("dirty") else ""
        lines.append(f"- **Commit**: {commit}{branch}{dirty}")
    for key, label in (("model", "Model"), ("data", "Data")):
        entries = [e for e in lineage.get(key) or [] if isinstance(e, Mapping)]
        if len(entries) == 1:
            lines.append(f"- **{label}**: {_artifact(entries[0])}")
        elif entries:
            lines.append(f"- **{label}**:")
            lines += [f"  - {_artifact(entry)}" for entry in entries]
    for key, label in (("params", "Params"), ("metrics", "Metrics")):
        values = lineage.get(key)
        if isinstance(values, Mapping) and values:
            lines.append(f"- **{label}**: {_values(values)}")
    lines.append("")
    return lines if len(lines) > 3 else []


def _artifact(entry: Mapping[str, Any]) -> str:
    path = _code(str(entry.get("path") or "?"))
    name = entry.get("name")
    parts = [f"{_text(name)} ({path})" if name and name != entry.get("path") else path]
    md5 = str(entry.get("md5") or "").removesuffix(".dir")
    parts.append(f"md5 {_code(md5[:8])}" if md5 else "md5 unknown")
    size = human_size(entry.get("size"))
    if size:
        parts.append(size)
    nfiles = entry.get("nfiles")
    if isinstance(nfiles, int) and nfiles > 1:
        parts.append(f"{nfiles} files")
    return " · ".join(parts)


def _values(values: Mapping[str, Any]) -> str:
    """``lr=0.1`` pairs: per-file dicts (``{"params.yaml": {...}}``) as DVC shows them."""
    if all(isinstance(v, Mapping) for v in values.values()):
        flat = flat_view({str(k): dict(v) for k, v in values.items()})
    else:
        flat = flatten_metrics(values)
    pairs = [f"{key}={_number(value)}" for key, value in flat.items()]
    shown = ", ".join(_code(pair) for pair in pairs[:_MAX_VALUES])
    more = len(pairs) - _MAX_VALUES
    return shown + (f" and {more} more" if more > 0 else "")


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _text(value: Any) -> str:
    """One line of plain text, safe in Markdown: no HTML, no line breaks."""
    text = " ".join(str(value if value is not None else "").split())
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cell(value: Any) -> str:
    """A table cell: as ``_text``, and a ``|`` no longer ends the cell."""
    return _text(value).replace("\\", "\\\\").replace("|", "\\|")


def _code(text: str) -> str:
    """An inline code span, whatever backticks ``text`` holds."""
    text = " ".join(text.split())
    fence = "`"
    while fence in text:
        fence += "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _same_file(a: Path, b: Path) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False
