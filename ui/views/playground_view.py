"""The Grounding tab: a screenshot and an instruction in, the model's predicted action drawn on the image."""

from __future__ import annotations

import importlib
from typing import Any

import gradio as gr
from PIL import Image

from engine.errors import EngineError
from ui import forms
from ui.engines import ModelChoice
from ui.overlay import Markers, draw_markers, markers_for_action
from visagent.errors import VisagentError

UNAVAILABLE = "grounding is not available in this build (visagent.grounding is missing)"


def ground_image(dash: forms.Dashboard, image: Image.Image, instruction: str,
                 choice: ModelChoice | None = None) -> tuple[Image.Image, str]:
    """Run the grounding model on `image` and draw its prediction. Returns (image with markers, Markdown).

    Raises ConfigError for a missing image / instruction, VisagentError / EngineError from the model.
    """
    from visagent.errors import ConfigError

    if image is None:
        raise ConfigError("upload a screenshot first")
    if not (instruction or "").strip():
        raise ConfigError("the instruction is empty; say what to find, e.g. 'the Wi-Fi switch'")
    try:
        grounding = importlib.import_module("visagent.grounding")
    except ModuleNotFoundError:
        raise ConfigError(UNAVAILABLE) from None
    choice = choice or dash.default_model
    if choice.kind == "oracle":
        raise ConfigError("grounding needs a model, not the scripted oracle; start the dashboard with --model")
    engine = dash.runs.engines.get(choice)
    result = grounding.ground(engine, image.convert("RGB"), instruction.strip())
    return draw_markers(image, _markers(result, image)), _describe(result)


def _markers(result: Any, image: Image.Image) -> Markers:
    """Markers for a GroundingResult: its action (screen space = image pixels) or its point."""
    action = getattr(result, "action", None)
    if action is not None and getattr(action, "coordinate", None) is not None:
        geometry = {"width": image.width, "height": image.height, "offset_x": 0, "offset_y": 0, "scale": 1.0}
        return markers_for_action(action.to_dict(), geometry, executed=True)
    point = getattr(result, "point", None)
    if point is not None:
        return Markers(click=(float(point[0]), float(point[1])))
    return Markers()


def _describe(result: Any) -> str:
    parts = []
    action = getattr(result, "action", None)
    if action is not None:
        parts.append(f"predicted action: `{action.summary()}`")
    point = getattr(result, "point", None)
    if point is not None:
        parts.append(f"point (image px): ({float(point[0]):.0f}, {float(point[1]):.0f})")
    raw = getattr(result, "raw", None) or getattr(result, "text", None)
    if raw:
        parts.append(f"model output:\n```\n{str(raw)[:1500]}\n```")
    error = getattr(result, "error", None)
    if error:
        parts.append(f"⚠ {error}")
    return "\n\n".join(parts) or "the model gave no point"


def sim_screen(scenario_id: str | None) -> Image.Image:
    """A screenshot of a sim scenario's start screen (an example to ground on)."""
    from visagent.scenarios import get_scenario

    if not scenario_id:
        from visagent.errors import ConfigError

        raise ConfigError("no sim scenario to take a screen from")
    return get_scenario(scenario_id).make_world().render()


def build(dash: forms.Dashboard) -> None:
    """Add the Grounding tab's components and events to the current Blocks."""
    available = importlib.util.find_spec("visagent.grounding") is not None
    gr.Markdown(f"Model: **{dash.default_model.label}** (set with `visagent ui --model`). The pink ring is where "
                "the model pointed, the blue cross the screen point it maps to."
                + ("" if available else f"\n\n⚠ {UNAVAILABLE}"))
    with gr.Row(equal_height=False):
        with gr.Column(scale=1):
            upload = gr.Image(type="pil", label="Screenshot", sources=["upload", "clipboard"],
                              elem_id="vg-ground-input", height=420)
            instruction = gr.Textbox(label="Instruction", placeholder="e.g. click the Dark mode switch",
                                     elem_id="vg-ground-instruction")
            with gr.Row():
                example = gr.Button("Use a sim screen", size="sm")
                locate = gr.Button("Locate", variant="primary", elem_id="vg-ground-run")
        with gr.Column(scale=1):
            output = gr.Image(type="pil", interactive=False, label="Prediction", elem_id="vg-ground-output",
                              height=420)
            info = gr.Markdown("", elem_id="vg-ground-info")

    def on_example() -> tuple[Any, Any, str]:
        try:
            return sim_screen(dash.default_scenario), "the Dark mode switch", ""
        except VisagentError as exc:
            return gr.skip(), gr.skip(), f"⚠ {exc}"

    example.click(on_example, None, [upload, instruction, info], api_visibility="private")

    def on_locate(image: Image.Image | None, text: str) -> tuple[Any, str]:
        try:
            return ground_image(dash, image, text)
        except (VisagentError, EngineError) as exc:
            return gr.skip(), f"⚠ {exc}"

    locate.click(on_locate, [upload, instruction], [output, info], api_visibility="private")
