"""sqlite-utils is loaded without pandas and numpy (store/ledger/sqlite.py): a ledger still
works, and a process that has numpy keeps it. (That no module of core/ or store/ loads them:
tests/unit/test_import_hygiene.py.)"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from store.ledger.sqlite import _SkipOptional


def _python(script: str, cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_ledger_written_and_read_without_them(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from store import Ledger, TestResultRecord\n"
        f"path = Path({str(tmp_path / 'ledger.db')!r})\n"
        "with Ledger.open(path) as ledger:\n"
        "    run = ledger.start_run('test', service='svc', release_id=None)\n"
        "    ledger.record_step(run.id, 'unit', 'passed', seconds=0.5, detail='3 passed')\n"
        "    case = TestResultRecord(suite='unit', nodeid='t.py::a', outcome='passed', "
        "seconds=0.1, message='')\n"
        "    print(ledger.record_test_results(run.id, [case]))\n"
        "    ledger.finish_run(run.id, 'passed', reason='unit passed')\n"
        "with Ledger.open(path, readonly=True) as ledger:\n"
        "    print(ledger.get_run(run.id).status)\n"
        "import sqlite_utils.db\n"
        "print(sqlite_utils.db.np, sqlite_utils.db.pd, 'numpy' in sys.modules)\n"
    )
    assert _python(script, tmp_path).splitlines() == ["1", "passed", "None None False"]


def test_numpy_already_loaded_is_given_to_sqlite_utils(tmp_path: Path) -> None:
    script = (
        "import numpy\n"
        "import store.ledger.sqlite\n"
        "import sqlite_utils.db\n"
        "print(sqlite_utils.db.np is numpy, numpy.int64 in sqlite_utils.db.COLUMN_TYPE_MAPPING)\n"
    )
    assert _python(script, tmp_path) == "True True"


def test_the_finder_refuses_only_them_and_only_in_its_thread() -> None:
    finder = _SkipOptional()
    for name in ("pandas", "numpy", "numpy.core"):
        with pytest.raises(ModuleNotFoundError):
            finder.find_spec(name, None)
    assert finder.find_spec("click", None) is None
    assert finder.find_spec("pandasx", None) is None
    elsewhere: list[object] = []
    thread = threading.Thread(target=lambda: elsewhere.append(finder.find_spec("numpy", None)))
    thread.start()
    thread.join()
    assert elsewhere == [None]
