"""What the dashboard's Run form asks for: one `RunRequest`, checked, and turned into run settings.

A scenario is a sim scenario or a real-desktop one (visagent.realworld: real programs on a private Xvfb); both
are picked with the sim executor, as `visagent run --scenario ID` does: the id tells the world."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ui.engines import ModelChoice
from visagent.core.errors import ConfigError
from visagent.core.settings import Settings, validate_settings


@dataclass(frozen=True)
class RunRequest:
    """Everything the Run view's form says. `seed` None: the scenario's own seed (a real-desktop scenario has
    none)."""

    task: str
    model: ModelChoice
    executor: str = "sim"
    scenario: str | None = None
    seed: int | None = None
    monitor: int | None = None
    serial: str | None = None
    thinking: bool = False
    max_steps: int = 15
    history_images: int = 4
    settle: bool = True

    def validate(self) -> None:
        """What only the form can get wrong (the settings it changes are checked by `settings`). Raises
        ConfigError naming the bad field and the fix."""
        if not self.task.strip():
            raise ConfigError("the task is empty; say what the agent should do")
        if self.executor == "sim" and not self.scenario:
            raise ConfigError("the sim executor needs a scenario; pick one from the list")
        if self.model.kind == "oracle" and self.executor != "sim":
            raise ConfigError("the scripted oracle only plays sim and real-desktop scenarios; pick the sim executor "
                              "and a scenario, or a model")
        if self.seed is not None and self.real_scenario() is not None:
            raise ConfigError(f"real-desktop scenario {self.scenario} has no seeds; leave the seed empty")

    def real_scenario(self) -> Any:
        """The real-desktop scenario (visagent.realworld's RealScenario) the form picked, or None (a sim scenario,
        or another executor)."""
        if self.executor != "sim" or not self.scenario:
            return None
        from visagent.realworld.registry import get_real_scenario, is_real_scenario

        return get_real_scenario(self.scenario) if is_real_scenario(self.scenario) else None

    def settings(self, base: Settings) -> Settings:
        """The run's settings: `base` (what `visagent run` would use) with the form's choices in place, checked
        as loaded settings are. Raises ConfigError naming the bad value."""
        settings = dataclasses.replace(base, executor=self.executor,
                                       scenario=self.scenario if self.executor == "sim" else None,
                                       thinking=self.thinking, max_steps=self.max_steps,
                                       history_images=self.history_images, settle=self.settle)
        validate_settings(settings)
        return settings

    def where(self) -> dict[str, Any]:
        """open_run's options for the executor the form picked (those of the other executors left out). A
        real-desktop scenario is passed as its object: open_run calls its `open_executor`, which starts a world
        (display, window manager, programs) of the run's own."""
        real = self.real_scenario()
        if real is not None:
            return {"scenario": real}
        if self.executor == "sim":
            return {"seed": self.seed}
        if self.executor == "desktop":
            return {"monitor": self.monitor or 1}
        return {"serial": self.serial}

    @property
    def executor_key(self) -> str | None:
        """What must not be driven twice: a sim scenario's world, the desktop's mouse, one phone. None for a
        real-desktop scenario: each run starts a display of its own, so several may run at once."""
        if self.real_scenario() is not None:
            return None
        if self.executor == "sim":
            return f"sim:{self.scenario}"
        if self.executor == "desktop":
            return "desktop"  # one mouse and keyboard for every monitor
        return f"android:{self.serial or 'default'}"

    @property
    def executor_label(self) -> str:
        if self.real_scenario() is not None:
            return f"real-desktop · {self.scenario}"
        if self.executor == "sim":
            return f"sim · {self.scenario}"
        if self.executor == "desktop":
            return f"desktop · monitor {self.monitor or 1}"
        return f"android · {self.serial or 'default device'}"
