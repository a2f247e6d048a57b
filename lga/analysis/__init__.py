"""The analysis of finished runs: records, sweep summaries, statistics, reports, the study.

Nothing in this package imports torch or Lightning (``tests/test_layout.py`` checks it):
reading and comparing results stays cheap, and works where no model can be built.
"""
