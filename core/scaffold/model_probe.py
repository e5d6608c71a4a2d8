"""What a pickled model takes, read in the project's interpreter for `relman init
--scaffold-service` (core/scaffold/service.py).

relman runs this file's text with ``python -c`` and the repository root as working directory
(so a pickle naming the project's own modules, ``src.features``, finds them), because
unpickling runs the project's code: never in relman's own process. Arguments: the model's
path and its loader (``pickle`` or ``joblib``). It prints one JSON line: ``ok``, the model's
``class``, ``sklearn`` (a scikit-learn estimator), ``predict``, ``feature_names``
(``feature_names_in_``), ``n_features`` (``n_features_in_``), ``modules`` (the top-level
packages loading it imported) and ``local`` (the project's own files it imported), or
``ok: false`` and ``error``. The standard library only; nothing happens on import.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def _load(path: str, loader: str) -> Any:
    if loader == "joblib":
        import joblib

        return joblib.load(path)
    import pickle

    with open(path, "rb") as handle:
        return pickle.load(handle)


def _local_files(root: str, before: set[str]) -> list[str]:
    """The project's own source files that loading the model imported."""
    found = []
    for name, module in list(sys.modules.items()):
        if name in before:
            continue
        path = getattr(module, "__file__", None)
        if not path:
            continue
        path = os.path.realpath(path)
        if not path.startswith(root + os.sep) or "site-packages" in path:
            continue
        found.append(os.path.relpath(path, root).replace(os.sep, "/"))
    return sorted(set(found))


def _count(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def describe(path: str, loader: str) -> dict[str, Any]:
    """The JSON document this script prints for the model at ``path``."""
    root = os.path.realpath(os.getcwd())
    before = set(sys.modules)
    try:
        model = _load(path, loader)
    except Exception as exc:  # whatever unpickling raised: say it, in one line
        return {"ok": False, "error": " ".join(f"{type(exc).__name__}: {exc}".split())[:300]}
    cls = type(model)
    try:
        from sklearn.base import BaseEstimator

        sklearn = isinstance(model, BaseEstimator)
    except ImportError:
        sklearn = False
    names = getattr(model, "feature_names_in_", None)
    count = getattr(model, "n_features_in_", None)
    modules = sorted({name.split(".")[0] for name in set(sys.modules) - before})
    return {
        "ok": True,
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "sklearn": sklearn or cls.__module__.split(".")[0] == "sklearn",
        "predict": callable(getattr(model, "predict", None)),
        "feature_names": [str(name) for name in names] if names is not None else None,
        "n_features": _count(count),
        "modules": modules,
        "local": _local_files(root, before),
    }


def main() -> None:
    path, loader = sys.argv[1], sys.argv[2]
    print(json.dumps(describe(path, loader)), flush=True)


if __name__ == "__main__":
    main()
