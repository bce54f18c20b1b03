"""Per-app solvers used by the oracle; importing this package registers them all in SOLVERS."""

from visagent.sim.solvers import apps, settings  # noqa: F401
from visagent.sim.solvers.base import SOLVERS, Ctx, OracleError

__all__ = ["SOLVERS", "Ctx", "OracleError"]
