"""``python -m leechcodec.bench``: the harness without the main CLI."""

from leechcodec.bench.cli import main

raise SystemExit(main())
