"""`python -m vizita` is the `vizita` command."""

from vizita.cli import main

main()
