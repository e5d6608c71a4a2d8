"""What a BentoML service's APIs take, read in the project's interpreter for `relman init`
(core/scaffold/request_sample.py builds the sample request from it).

relman runs this file's text with ``python -c`` and the service's build context as working
directory, because importing the service runs the project's code and needs BentoML: never in
relman's own process. Argument: the service's import path (``service:Churn``). It prints one
JSON line: ``ok``, the service's ``name`` and ``apis``, ``{method: {"schema": the JSON
Schema of its input, "root": whether the body is that one value, "route": its path}}`` in
the order the class defines them (an API whose schema cannot be made has ``error``
instead), or ``ok: false`` and ``error``. The standard library and BentoML only; nothing
happens on import.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]


def describe(import_path: str, working_dir: str) -> dict[str, Any]:
    """The JSON document this script prints for the service at ``import_path``."""
    try:
        from bentoml._internal.service.loader import import_service
    except ImportError as exc:
        return {"ok": False, "error": f"BentoML cannot be imported here ({_one_line(exc)})"}
    try:
        service = import_service(import_path, working_dir=working_dir)
    except Exception as exc:  # whatever importing the project's code raised: say it
        return {"ok": False, "error": _one_line(exc)}
    apis = getattr(service, "apis", None)
    if not isinstance(apis, dict):
        return {"ok": False, "error": f"{import_path} is not a BentoML 1.2+ service"}
    found: dict[str, Any] = {}
    for name, api in apis.items():
        spec = getattr(api, "input_spec", None)
        if spec is None:  # a BentoML 1.1 service: IO descriptors, not pydantic models
            found[name] = {"error": "a BentoML 1.1 API (IO descriptors)"}
            continue
        try:
            schema = spec.model_json_schema()
        except Exception as exc:  # a type pydantic cannot describe, a name not defined
            found[name] = {"error": _one_line(exc)}
            continue
        found[name] = {
            "schema": schema,
            "root": bool(getattr(spec, "__root_input__", False)),
            "route": str(getattr(api, "route", "") or f"/{name}"),
        }
    return {"ok": True, "name": str(getattr(service, "name", "")), "apis": found}


def main() -> None:
    import os

    print(json.dumps(describe(sys.argv[1], os.getcwd())), flush=True)


if __name__ == "__main__":
    main()
