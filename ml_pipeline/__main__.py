"""`python -m ml_pipeline ...`: see ml_pipeline.cli."""

from ml_pipeline.cli import main

raise SystemExit(main())
