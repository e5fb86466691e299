"""`python -m vizita` is the `vizita` command."""

from vizita.app.cli import main

main(prog_name="vizita")
