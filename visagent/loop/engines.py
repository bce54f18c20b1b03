"""Open the engine a command runs with, from the resolved settings: one place for every load option.

`visagent run`, `serve`, `eval`, `ground` and the dashboard all call `open_engine`, so a setting added here
(device, dtype, device_map, model_name, api_key, provider, session limits, prefill chunk) reaches every one of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from visagent.core.settings import Settings

if TYPE_CHECKING:
    from engine.api import Engine
    from engine import SessionLimits


def session_limits(settings: Settings) -> SessionLimits:
    """engine.session.SessionLimits from `session_max_sessions`, `session_max_mb` (MiB) and
    `session_max_snapshots`."""
    from engine import SessionLimits

    return SessionLimits(
        max_sessions=settings.session_max_sessions,
        max_bytes=max(1, int(settings.session_max_mb * (1 << 20))),
        max_snapshots=settings.session_max_snapshots,
    )


def open_engine(settings: Settings, *, model: str | None = None, model_name: str | None = None) -> Engine:
    """engine.load_engine with everything `settings` says about the model.

    `model` / `model_name` replace `settings.model` / `settings.model_name` (the dashboard's model picker);
    when `model` is given, `model_name` is taken as given (None: the server's only model). Session limits
    and the prefill chunk apply to an in-process model only. Raises engine.errors.CheckpointError /
    EngineError with one line saying what to fix.
    """
    from engine import load_engine

    spec = settings.model if model is None else model
    name = settings.model_name if model is None else model_name
    return load_engine(
        spec,
        device=settings.device,
        dtype=settings.dtype,
        device_map=settings.device_map,
        model_name=name,
        api_key=settings.api_key,
        session_limits=session_limits(settings),
        prefill_chunk=settings.prefill_chunk,
        provider=settings.provider,
    )
