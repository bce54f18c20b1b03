"""Model side of visagent: checkpoints, preprocessing, generation, sessions, OpenAI-compatible serving.

Knows nothing about GUIs. Public API: see engine.api.
"""
