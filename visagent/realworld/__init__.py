"""The real-desktop world: scenarios on real Linux programs under a private Xvfb, judged on their real state.

Owns: marked processes and stray cleanup (procs), the private X server + openbox (display), launching programs
and reading their windows (programs, xwindows), the scenario declaration, the running world, its executor and its
oracle engine (world), the loopback web apps and Chromium (webapps, chromium), the scenarios (web_scenarios,
mousepad_scenarios, xterm_scenarios, galculator_scenarios, desktop_apps), the list (registry), and selection and
replay for the commands (episode). A run here is assembled by visagent.loop.runs.open_run like any other: it calls
a scenario's `open_executor`, `executor_meta` and `oracle_engine`. See docs/real-desktop.md.

May import: visagent.core, visagent.sim (scenario tags), visagent.screen (the desktop executor), visagent.loop and
visagent.traces (replay). Only the commands import it.
"""

from __future__ import annotations

WORLD = "real-desktop"
