"""The two worked examples of the seed documents, with their evaluation-trace tables.

A thin wrapper: the demo lives in the package (``wengert.demo``) so that the installed
``wengert demo`` command runs it too.  Run with ``make demo`` or ``python examples/seed_examples.py``.
"""

from wengert.demo import main

if __name__ == "__main__":
    main()
