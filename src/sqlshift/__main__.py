"""``python -m sqlshift`` runs the CLI."""

from sqlshift.cli import main

if __name__ == "__main__":  # a spawned child (training, vLLM's engine) imports this module too
    main()
