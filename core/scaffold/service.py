"""`relman init --scaffold-service`: a minimal BentoML service for a repository's one model,
a sample request and the tests that check it (docs/adopting.md).

The framework is told from the repository: the model file's extension and first bytes
(pickle or joblib; a zip or HDF5 file is another framework's), scikit-learn imported by the
project's Python files or named in its requirements, and the model itself, loaded in the
project's interpreter (core/scaffold/model_probe.py: its class, the columns it was fitted
on). The sample request holds two rows of the first CSV among the model's data, its label
left out (core/scaffold/service_sample.py). Nothing is written until all of it is known, and
no existing file is ever overwritten.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import UsageError
from core.scaffold.service_sample import Sample, build_sample
from core.scaffold.service_text import ServiceText, bentofile_text, service_text, tests_text

__all__ = ["Framework", "ScaffoldedService", "run_probe", "tell_framework", "write_service"]

SERVICE_FILE = "service.py"
BUILD_FILE = "bentofile.yaml"
SAMPLE_FILE = "sample_request.json"
SUITE = "service"
SUITE_PATH = "tests/service"
LOADERS = {".pkl": "pickle", ".pickle": "pickle", ".joblib": "joblib"}
PROBE = Path(__file__).with_name("model_probe.py")
PROBE_TIMEOUT = 300.0
ONLY = "relman scaffolds scikit-learn pickle/joblib models only for now"
WRITE_IT = "write the BentoML service yourself (docs/adopting.md)"

# Frameworks a project's imports may name, for saying what was found.
FRAMEWORKS = {
    "sklearn": "scikit-learn",
    "torch": "PyTorch",
    "tensorflow": "TensorFlow",
    "keras": "Keras",
    "xgboost": "XGBoost",
    "lightgbm": "LightGBM",
    "catboost": "CatBoost",
    "transformers": "transformers",
    "onnxruntime": "ONNX Runtime",
    "jax": "JAX",
}
# Packages a pickled estimator may also need, by the top-level module loading it imported.
EXTRA_PACKAGES = {"xgboost": "xgboost", "lightgbm": "lightgbm", "catboost": "catboost"}
_IMPORT = re.compile(r"^[ \t]*(?:from[ \t]+([A-Za-z_]\w*)|import[ \t]+([A-Za-z_]\w*))", re.M)
_SKLEARN_REQUIREMENT = re.compile(r"\bscikit[-_]learn\b|\bsklearn\b", re.I)
_REQUIREMENT_FILES = (
    "requirements*.txt",
    "requirements/*.txt",
    "pyproject.toml",
    "setup.cfg",
    "setup.py",
    "environment.y*ml",
    "conda.y*ml",
    "Pipfile",
)
_SKIPPED_DIRS = {"__pycache__", "node_modules", "site-packages", "venv", "env", "build", "dist"}
_MAX_PY_FILES = 5000
_MAX_PY_BYTES = 256 * 1024


@dataclass(frozen=True)
class ScaffoldedService:
    """What `write_service` wrote, as relman.toml names it."""

    bento: str  # "service:ChurnModel"
    build: str  # "bentofile.yaml"
    sample_request: str  # from the repository root
    suite: str  # the suite of its tests
    suite_path: str
    files: list[str] = field(default_factory=list)  # everything written, from the root
    notes: list[str] = field(default_factory=list)  # what a person should check, one line each


@dataclass(frozen=True)
class Framework:
    """What the repository says its model is."""

    loader: str  # "pickle" or "joblib"
    model: dict[str, Any] | None  # model_probe's document; None: the file is not here
    notes: list[str] = field(default_factory=list)


def write_service(
    root: Path,
    name: str,
    model_path: str,
    data_paths: Sequence[str],
    *,
    python: str | None = None,
) -> ScaffoldedService:
    """Write service.py, bentofile.yaml, sample_request.json and tests/service/ for the
    scikit-learn model at ``model_path`` (from ``root``), the sample from the first CSV of
    ``data_paths``; the model is read in ``python`` (the project's interpreter, by default
    this one). UsageError (exit 2) when a file is already there or the model is not a
    scikit-learn pickle or joblib file."""
    root = Path(root)
    for path in (SERVICE_FILE, BUILD_FILE, SAMPLE_FILE, SUITE_PATH):
        if (root / path).exists() or (root / path).is_symlink():
            raise UsageError(
                f"{path}: already exists; relman init --scaffold-service never overwrites a "
                "file: move it away, or write the service yourself and name it in relman.toml"
            )
    framework = tell_framework(root, model_path, python=python or sys.executable)
    model = framework.model if framework.model and framework.model.get("ok") else None
    sample = build_sample(root, model_path, data_paths, model)
    spec = ServiceText(
        name=name,
        cls=class_name(name),
        model_path=model_path,
        loader=framework.loader,
        features=sample.features,
        feature_names=bool(model and model.get("feature_names")),
        packages=_packages(framework.loader, model),
        include=[model_path, *(model or {}).get("local", [])],
    )
    texts = {
        SERVICE_FILE: service_text(spec),
        BUILD_FILE: bentofile_text(spec),
        SAMPLE_FILE: _sample_json(sample),
        f"{SUITE_PATH}/test_service.py": tests_text(spec, sample=SAMPLE_FILE, suite=SUITE),
    }
    for relative, text in texts.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("x", encoding="utf-8") as handle:  # "x": never over another's file
            handle.write(text)
    return ScaffoldedService(
        bento=f"{Path(SERVICE_FILE).stem}:{spec.cls}",
        build=BUILD_FILE,
        sample_request=SAMPLE_FILE,
        suite=SUITE,
        suite_path=SUITE_PATH,
        files=list(texts),
        notes=[*framework.notes, *sample.notes],
    )


def class_name(name: str) -> str:
    """The BentoML service class of relman service ``name``: ``churn`` -> ``ChurnModel``."""
    words = [word for word in re.split(r"[^A-Za-z0-9]+", name) if word]
    camel = "".join(word[:1].upper() + word[1:] for word in words) or "Scaffolded"
    if camel[0].isdigit():
        camel = "Model" + camel
    return camel if camel.lower().endswith("model") else camel + "Model"


# ------------------------------------------------------------------------------ framework


def tell_framework(root: Path, model_path: str, *, python: str) -> Framework:
    """The loader of a scikit-learn model at ``model_path``, and the model as ``python``
    reads it; UsageError (one line: what was found) for anything else."""
    path = root / model_path
    suffix = path.suffix.lower()
    loader = LOADERS.get(suffix)
    if loader is None:
        found = f"a {suffix} model" if suffix else "a model file without an extension"
        raise UsageError(f"{model_path}: {found}{_imported(root)}; {ONLY}: {WRITE_IT}")
    notes: list[str] = []
    model: dict[str, Any] | None = None
    if not path.is_file():
        notes.append(
            f"{model_path} is not in the working tree ('dvc pull' or 'dvc repro' brings it): "
            "the sample request's columns come from the data alone"
        )
    else:
        kind = file_kind(path)
        if kind in ("zip", "hdf5"):
            written_by = "torch.save or Keras" if kind == "zip" else "Keras or h5py"
            raise UsageError(
                f"{model_path}: a {kind.upper()} file (as {written_by} write), not a pickle"
                f"{_imported(root)}; {ONLY}: {WRITE_IT}"
            )
        if kind == "compressed":
            loader = "joblib"  # only joblib compresses a pickle by itself
        model = probe_model(root, model_path, loader, python)
        if not model.get("ok"):
            notes.append(
                f"{model_path} could not be loaded here ({model.get('error')}): check the "
                "service loads it"
            )
        elif not model.get("predict"):
            raise UsageError(
                f"{model_path}: a pickled {model.get('class')} with no predict(); {ONLY}: "
                f"{WRITE_IT}"
            )
    if not (model and model.get("ok") and model.get("sklearn")) and not _uses_sklearn(root):
        raise UsageError(
            f"{model_path}: a {loader} file, but scikit-learn is neither imported by the "
            f"project's Python files nor in its requirements{_imported(root)}; "
            f"{ONLY}: {WRITE_IT}"
        )
    return Framework(loader, model, notes)


def file_kind(path: Path) -> str:
    """What a model file's first bytes say it is: ``pickle``, ``compressed`` (zlib, gzip,
    bz2, xz or lz4, as joblib writes), ``zip``, ``hdf5`` or ``unknown``."""
    with path.open("rb") as handle:
        head = handle.read(8)
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "pickle"
    if head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x04\x22\x4d\x18")) or (
        len(head) >= 2 and head[0] == 0x78 and head[1] in (0x01, 0x5E, 0x9C, 0xDA)
    ):
        return "compressed"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "hdf5"
    return "unknown"


def probe_model(root: Path, model_path: str, loader: str, python: str) -> dict[str, Any]:
    """model_probe's document for the model, read by ``python`` in ``root`` (unpickling
    runs the project's code: never in relman's process)."""
    return run_probe(PROBE, [model_path, loader], cwd=root, python=python)


def run_probe(script: Path, args: list[str], *, cwd: Path, python: str) -> dict[str, Any]:
    """The one JSON document a probe script (model_probe.py, service_probe.py) prints, run
    as ``python -c`` in ``cwd``; ``{"ok": false, "error"}`` when it says nothing readable."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    try:
        done = subprocess.run(
            [python, "-c", script.read_text(encoding="utf-8"), *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"it took over {PROBE_TIMEOUT:.0f} s"}
    except OSError as exc:
        return {"ok": False, "error": f"cannot run {python}: {exc.strerror}"}
    lines = done.stdout.strip().splitlines()
    try:
        document = json.loads(lines[-1]) if lines else None
    except ValueError:
        document = None
    if not isinstance(document, dict):
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"ok": False, "error": f"exit {done.returncode}: {last}"}
    return document


def python_imports(root: Path) -> dict[str, str]:
    """{top-level module: the first of the project's Python files importing it}, skipping
    hidden folders, virtual environments and build output."""
    found: dict[str, str] = {}
    seen = 0
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".")
            and d not in _SKIPPED_DIRS
            and not (Path(folder) / d / "pyvenv.cfg").exists()
        )
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            seen += 1
            if seen > _MAX_PY_FILES:
                return found
            path = Path(folder) / name
            try:
                with path.open(encoding="utf-8", errors="replace") as handle:
                    text = handle.read(_MAX_PY_BYTES)
            except OSError:
                continue
            relative = path.relative_to(root).as_posix()
            for match in _IMPORT.finditer(text):
                found.setdefault(match.group(1) or match.group(2), relative)
    return found


def _uses_sklearn(root: Path) -> bool:
    if "sklearn" in python_imports(root):
        return True
    for pattern in _REQUIREMENT_FILES:
        for path in sorted(root.glob(pattern)):
            try:
                if _SKLEARN_REQUIREMENT.search(path.read_text(encoding="utf-8", errors="replace")):
                    return True
            except OSError:
                continue
    return False


def _imported(root: Path) -> str:
    """`` (torch imported by src/train.py)``: the frameworks the project's files import."""
    imports = python_imports(root)
    named = [
        f"{module} imported by {imports[module]}" for module in FRAMEWORKS if module in imports
    ]
    return f" ({', '.join(named)})" if named else ""


def _packages(loader: str, model: dict[str, Any] | None) -> list[str]:
    packages = ["scikit-learn", "numpy"]
    if loader == "joblib":
        packages.append("joblib")
    if model and model.get("feature_names"):
        packages.append("pandas")
    modules = set((model or {}).get("modules", []))
    packages += [package for module, package in EXTRA_PACKAGES.items() if module in modules]
    return packages


def _sample_json(sample: Sample) -> str:
    """One row a line: ``{"rows": [\n  {"a": 1, "b": 2},\n  ...\n]}``."""
    rows = ",\n".join("  " + json.dumps(row) for row in sample.rows)
    return '{"rows": [\n' + rows + "\n]}\n"
