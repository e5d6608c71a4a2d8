"""Who acts: recorded on every ledger event."""

from __future__ import annotations

import getpass
import os
import subprocess
from pathlib import Path


def current_user(root: Path | None = None) -> str:
    """``RELMAN_USER``, else git's ``user.email`` (of the repository), else the OS user."""
    explicit = os.environ.get("RELMAN_USER", "").strip()
    if explicit:
        return explicit
    try:
        result = subprocess.run(
            ["git", "config", "user.email"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        email = result.stdout.strip()
        if result.returncode == 0 and email:
            return email
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid-{os.getuid()}"
