"""The real-desktop world: scenarios on real Linux programs under a private Xvfb, judged on their real state.

See docs/real-desktop.md. Modules: procs (marked processes, records, stray cleanup), display (Xvfb + openbox),
programs (launch, windows, X tools), world (RealScenario, RealWorld, RealExecutor, the oracle engine, eval
episodes), episode (selection and replay for the commands), webapps + chromium (the loopback web apps and the
browser), registry (the scenario list), and the scenario modules (web_scenarios). The command glue of
`visagent run` lives in visagent/commands/_real_desktop.py.
"""

from __future__ import annotations

WORLD = "real-desktop"
