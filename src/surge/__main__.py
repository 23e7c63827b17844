"""``python -m surge`` runs the command line."""

from surge.cli.main import main

if __name__ == "__main__":
    main()
