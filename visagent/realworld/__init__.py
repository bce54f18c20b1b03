"""The real-desktop world: scenarios on real Linux programs under a private Xvfb, judged on their real state.

See docs/real-desktop.md. Modules: procs (marked processes, records, stray cleanup), display (Xvfb + openbox),
programs (launch, windows, X tools), world (RealScenario, RealWorld, RealExecutor, the oracle engine),
registry (the scenario list), and the scenario modules.
"""

from __future__ import annotations

WORLD = "real-desktop"
