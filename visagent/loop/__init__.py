"""The agent loop and how a run is put together.

Owns: the loop itself (agent: capture, prompt, generate, parse, map to the screen, check the policy,
execute, record), the chat messages of one model call (prompting), parsing model output into actions (parsing),
coordinate spaces (coords, pointing), sampling per mode (sampling), the safety policy (policy), run controls and
typed events (controls, events), opening the engine from settings (engines), the one run assembly used by the CLI,
the dashboard, suites and eval (runs), and scripted test/demo engines (scripted).

May import: visagent.core, visagent.screen, visagent.sim and `engine.api`. Never the dashboard (ui) or the
commands above it.
"""
