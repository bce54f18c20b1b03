"""Errors of the engine layer (it imports nothing from visagent)."""


class EngineError(Exception):
    """A checkpoint, server or generation problem a user can act on; the message says what to do."""


class CheckpointError(EngineError):
    """A checkpoint directory that cannot be loaded (no config.json, unknown model_type, bad shards...)."""


class RemoteError(EngineError):
    """An OpenAI-compatible server that refused or failed a request."""
