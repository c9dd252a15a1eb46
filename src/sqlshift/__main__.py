"""``python -m sqlshift`` runs the CLI."""

from sqlshift.cli import main

main()
