"""`python -m lga.study`: the command-line entry point of :mod:`lga.analysis.study`."""

from .analysis.study import main

if __name__ == "__main__":
    main()
