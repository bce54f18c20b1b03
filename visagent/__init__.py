"""visagent: a visual GUI agent on Qwen3.5."""

__version__ = "0.1.0"
