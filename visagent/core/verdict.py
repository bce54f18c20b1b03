"""The words and badge for a run's outcome, shared by the CLI, eval, the HTML report and the dashboard.

Two things are kept apart everywhere: the *verdict* (did the sim world really reach the scenario's goal: the
scenario's own check, written to meta.json as `verdict`) and the *model's claim* (the run's status, which the
model chose with `terminate success` or an answer). A run with no check (a typed task, a real screen) has
no verdict, and says so instead of borrowing the claim.
"""

from __future__ import annotations

import html
from typing import Any

#: Statuses in which the model says it succeeded (its claim, not a verdict).
CLAIM_STATUSES = frozenset({"success", "answered"})

#: verdict key -> (short label, symbol)
LABELS = {"met": ("goal met", "✔"), "not_met": ("goal NOT met", "✘"), "none": ("no check", "–")}

#: CSS for the badge (the report inlines it; the dashboard's style.css has the same rules).
BADGE_CSS = (".vg-verdict{display:inline-block;padding:.05em .6em;border-radius:1em;font-weight:600;"
             "border:1px solid transparent}"
             ".vg-verdict-met{background:#c8f7d2;color:#0b5d1e;border-color:#6fcf87}"
             ".vg-verdict-not_met{background:#ffd6d6;color:#8a0010;border-color:#f08080}"
             ".vg-verdict-none{background:#eceff3;color:#4a5160;border-color:#c9ced6}"
             ".vg-verdict-pending{background:#fff3cd;color:#6b5200;border-color:#e0c060}")


def verdict_key(verdict: Any) -> str:
    """"met", "not_met" or "none" from a meta.json `verdict` ({"success": bool, ...}), a bool, one of those
    keys already, or None."""
    if isinstance(verdict, str) and verdict in LABELS:
        return verdict
    if isinstance(verdict, dict):
        verdict = verdict.get("success")
    if isinstance(verdict, bool):
        return "met" if verdict else "not_met"
    return "none"


def verdict_text(verdict: Any) -> str:
    """`✔ goal met`, `✘ goal NOT met` or `– no check` (plain text, for tables and terminals)."""
    label, symbol = LABELS[verdict_key(verdict)]
    return f"{symbol} {label}"


def badge_html(verdict: Any, *, pending: bool = False) -> str:
    """The verdict as an HTML badge (fixed text: nothing from the trace or the model goes into it)."""
    if pending:
        return '<span class="vg-verdict vg-verdict-pending" data-verdict="pending">checking the goal…</span>'
    key = verdict_key(verdict)
    label, symbol = LABELS[key]
    title = {"met": "the sim world's check: the scenario's goal is met",
             "not_met": "the sim world's check: the scenario's goal is NOT met",
             "none": "no check: only a sim scenario's own task can be checked"}[key]
    return (f'<span class="vg-verdict vg-verdict-{key}" data-verdict="{key}" title="{html.escape(title)}">'
            f'{symbol} {label}</span>')


def claim_text(status: Any) -> str:
    """The run's status labelled as the model's own claim when it claims success (`model claimed success`),
    else as how the run ended (`run ended max_steps`)."""
    status = str(status or "running")
    if status in CLAIM_STATUSES:
        return f"model claimed {status}"
    if status == "running":
        return "running"
    return f"run ended {status}"
