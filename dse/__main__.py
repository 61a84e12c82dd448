"""``python -m dse``: the command line."""

from dse.cli import main

raise SystemExit(main())
