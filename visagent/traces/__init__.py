"""What is done with runs once they are recorded: the consumers of traces.

Owns: replay as a regression test (replay), the HTML report, its markers and the GIF (report, markers,
animation), training records (export), and measuring success over scenarios x seeds (evaluate, step_eval, and
eval on a Ray cluster).

May import: visagent.core, visagent.sim, visagent.screen, visagent.loop, visagent.grounding and `engine.api`.
"""
