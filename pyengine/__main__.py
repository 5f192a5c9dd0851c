"""`python -m pyengine ...` is the `pyengine` command."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
