from __future__ import annotations

from hotplex.cli import main

main()
