"""`python -m lga.report`: the command-line entry point of :mod:`lga.analysis.report`."""

from .analysis.report import main

if __name__ == "__main__":
    main()
