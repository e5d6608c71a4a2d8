"""`relman ci github|gitlab`: the CI workflow that runs relman in `--batch` on each new commit,
written into the repository (docs/ci.md). Imports only core.config and core.errors."""
