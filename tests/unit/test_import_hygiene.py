"""The engine knows nothing of the screen: core/ and store/ import without textual or rich."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _modules(package: str) -> list[str]:
    names = []
    for path in sorted((ROOT / package).rglob("*.py")):
        relative = path.relative_to(ROOT)
        if "demo_template" in relative.parts:
            continue  # files of the demo project, not relman modules
        parts = list(relative.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


def test_engine_modules_exist() -> None:
    assert "core.api" in _modules("core")
    assert "core.config.model" in _modules("core")


def test_core_and_store_import_without_textual_or_rich_or_pandas() -> None:
    """Nor pandas and numpy: sqlite-utils is loaded without them (store/ledger/sqlite.py),
    and what needs numpy (drift, trends) imports it where it is used."""
    modules = _modules("core") + _modules("store")
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "def leaked(*tops):\n"
        "    return ','.join(sorted(m for m in sys.modules if m.split('.')[0] in tops))\n"
        "print(leaked('textual', 'rich'))\n"
        "print(leaked('pandas', 'numpy'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    ui, tables = result.stdout.split("\n")[:2]
    assert ui == "", f"textual/rich loaded by the engine: {ui}"
    assert tables == "", f"pandas/numpy loaded by the engine: {tables}"


def test_lightkube_is_loaded_only_when_a_cluster_is_reached(tmp_path: Path) -> None:
    (tmp_path / "relman.toml").write_text(
        '[project]\nname = "shop"\n\n[services.shop]\nbento = "service:Shop"\nmodel = ["m"]\n\n'
        "[environments.dev]\nport = 3100\n\n"
        '[environments.staging]\ntarget = "kubernetes"\n\n'
        '[environments.staging.kubernetes]\nnamespace = "ml"\n'
    )
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "import tui.cli, core.api\n"
        "from core.config.model import load_project\n"
        "from core.targets import target_for\n"
        f"project = load_project(Path({str(tmp_path)!r}))\n"
        "target_for(project, 'shop', 'dev')\n"
        "target_for(project, 'shop', 'staging')\n"
        "print('lightkube' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
