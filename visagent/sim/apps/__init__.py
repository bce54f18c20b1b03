"""The sim apps, by name. Each module holds one app class (see apps.base.App)."""

from __future__ import annotations

from visagent.sim.apps.base import App
from visagent.sim.apps.settings import SettingsApp

APP_CLASSES: dict[str, type[App]] = {
    "settings": SettingsApp,
}
