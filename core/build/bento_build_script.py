"""Build one Bento for relman, in the project's own interpreter.

relman runs this file by path (``python -u bento_build_script.py SPEC``) with the project root
as working directory, because the project's environment holds BentoML and the service's
dependencies and may not hold relman. So: the standard library and BentoML only, Python 3.9+,
and nothing happens on import (relman's own tests import every module of ``core``).

``SPEC`` is one JSON object: ``bentofile``, ``root`` (the build context), ``version`` (the
release id), ``labels`` and ``service`` (relman.toml's ``bento``, the import path the
bentofile must name). BentoML's log lines go to stdout as they happen (relman streams them);
the last line is ``RELMAN_BENTO {"kind": ...}``: ``built`` with ``tag`` and ``path``, or a
failure (``missing``, ``config``, ``import``, ``exists``, ``error``) with a one-line ``message``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

MARKER = "RELMAN_BENTO"


def _report(kind: str, **fields: Any) -> None:
    print(f"{MARKER} {json.dumps({'kind': kind, **fields})}", flush=True)


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _first_line(text: object) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else ""


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and those it was raised from or during, outermost first."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _configure_logging() -> None:
    """BentoML's Python API logs through ``logging`` and configures no handler itself."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("bentoml")
    logger.handlers = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False


# ------------------------------------------------------------------ the build config file


def _describe_config_error(exc: BaseException) -> str:
    """One line for what is wrong with a bentofile, from what BentoML's loader raised."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if mark is not None and problem:  # a YAML syntax error
        return f"line {mark.line + 1}: invalid YAML: {problem}"
    leaves = _leaves(exc)
    if leaves:
        parts = []
        for leaf in leaves[:3]:
            if type(leaf).__name__ == "ForbiddenExtraKeysError":
                extra = ", ".join(sorted(getattr(leaf, "extra_fields", ()) or ())) or "?"
                parts.append(f"unknown key(s): {extra}")
                continue
            where = ""
            for note in getattr(leaf, "__notes__", ()) or ():
                if "@ attribute " in note:
                    where = f"bad value for {note.rsplit('@ attribute ', 1)[1].strip()!r}: "
            parts.append(f"{where}{_first_line(leaf)}")
        return "; ".join(parts)
    return _first_line(exc) or type(exc).__name__


def _leaves(exc: BaseException) -> list[BaseException]:
    """The innermost exceptions of an exception group (cattrs' validation errors)."""
    inner = getattr(exc, "exceptions", None)
    if not inner:
        return []
    found: list[BaseException] = []
    for sub in inner:
        found.extend(_leaves(sub) or [sub])
    return found


def _load_config(bentofile: str) -> Any:
    from bentoml._internal.bento.build_config import BentoBuildConfig

    if not os.path.isfile(bentofile):
        raise FileNotFoundError(f"{bentofile}: file not found")
    if os.path.basename(bentofile) != "pyproject.toml":
        # BentoML fails on these with an unrelated AttributeError or TypeError.
        import yaml  # a dependency of BentoML

        with open(bentofile, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
        if not isinstance(data, dict):
            raise ValueError("not a mapping of build options (expected 'service: ...' etc.)")
    return BentoBuildConfig.from_file(bentofile)


def _import_path(value: str) -> str:
    """``service.py:Svc`` and ``service:Svc`` name the same service."""
    module, _, attr = value.strip().partition(":")
    module = module.removesuffix(".py").replace("/", ".") if module else module
    return f"{module}:{attr}" if attr else module


# ---------------------------------------------------------------------------------- main


def main(argv: list[str]) -> int:
    spec = json.loads(argv[1])
    import importlib.util

    if importlib.util.find_spec("bentoml") is None:
        _report("missing", message=f"bentoml is not installed in {sys.executable}")
        return 1
    try:
        import bentoml
    except Exception as exc:
        _report("error", message=f"bentoml cannot be imported: {_one_line(exc)}")
        return 1
    _configure_logging()
    try:
        config = _load_config(spec["bentofile"])
    except Exception as exc:
        _report("config", message=_describe_config_error(exc))
        return 1
    expected = spec.get("service") or ""
    named = getattr(config, "service", "") or ""
    if not named:
        _report("config", message=f"names no service; add service: {expected!r}")
        return 1
    if expected and _import_path(named) != _import_path(expected):
        _report(
            "config",
            message=f"builds service {named!r}, but relman.toml's bento is {expected!r}; "
            "make them name the same service",
        )
        return 1
    print(f"building the Bento of {named} from {os.path.basename(spec['bentofile'])}", flush=True)
    try:
        bento = bentoml.bentos.build_bentofile(
            spec["bentofile"],
            version=spec["version"],
            labels=spec["labels"],
            build_ctx=spec["root"],
        )
    except Exception as exc:
        kind, message = _classify(exc, bentoml)
        _report(kind, message=message)
        return 1
    _report("built", tag=str(bento.tag), path=str(bento.path))
    return 0


def _classify(exc: BaseException, bentoml: Any) -> tuple[str, str]:
    """(kind, message) of a failed build."""
    errors = bentoml.exceptions
    chain = _chain(exc)
    message = _first_line(exc) or type(exc).__name__
    if "already exists" in message:
        return "exists", message
    imports = [e for e in chain if isinstance(e, errors.ImportServiceError)]
    if imports:
        # The outer one lists every way it tried; the innermost says why the import failed.
        return "import", _first_line(imports[-1])
    if isinstance(exc, (errors.InvalidArgument, errors.BentoMLConfigException)):
        return "config", message
    return "error", _one_line(f"{type(exc).__name__}: {exc}")


if __name__ == "__main__":
    # Run by path, Python puts this file's folder (relman's core/) first on sys.path, where
    # its modules (config, errors, ...) would shadow the project's own: drop it.
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0] or ".") == here:
        del sys.path[0]
    sys.exit(main(sys.argv))
