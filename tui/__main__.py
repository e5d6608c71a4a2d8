"""`python -m tui` runs the relman command line."""

from tui.cli import main

main()
