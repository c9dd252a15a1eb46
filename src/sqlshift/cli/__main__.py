"""``python -m sqlshift.cli`` (what ``torchrun``/``accelerate launch -m sqlshift.cli train`` use) runs the CLI."""

from sqlshift.cli import main

main()
