"""The sim apps, by name. Each module holds one app class (see apps.base.App)."""

from __future__ import annotations

from visagent.sim.apps.base import App
from visagent.sim.apps.calculator import CalculatorApp
from visagent.sim.apps.contacts import ContactsApp
from visagent.sim.apps.files import FilesApp
from visagent.sim.apps.messages import MessagesApp
from visagent.sim.apps.notes import NotesApp
from visagent.sim.apps.settings import SettingsApp
from visagent.sim.apps.shop import ShopApp

APP_CLASSES: dict[str, type[App]] = {
    "settings": SettingsApp,
    "notes": NotesApp,
    "files": FilesApp,
    "calculator": CalculatorApp,
    "contacts": ContactsApp,
    "shop": ShopApp,
    "messages": MessagesApp,
}
