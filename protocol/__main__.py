"""``python -m protocol``: the same as the ``ccm-protocol`` console script."""

from .cli import main

raise SystemExit(main())
