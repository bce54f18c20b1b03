"""The Grounding tab: a screenshot and an instruction in, the model's predicted action drawn on the image."""

from __future__ import annotations

import importlib
from typing import Any

import gradio as gr
from PIL import Image

from engine.errors import EngineError
from ui import forms, text as md
from ui.engines import ModelChoice
from ui.overlay import Markers, draw_markers
from ui.views import model_picker
from visagent.core.errors import VisagentError
from visagent.traces.markers import legend_html

#: Grounding needs a model: every picker choice but the scripted oracle.
GROUNDING_KINDS = ("tiny", "checkpoint", "server")
UNAVAILABLE = "grounding is not available in this build (visagent.grounding is missing)"


def ground_image(dash: forms.Dashboard, image: Image.Image, instruction: str, platform: str = "desktop",
                 choice: ModelChoice | None = None) -> tuple[Image.Image, str]:
    """Run visagent.grounding.ground on `image` and draw the predicted point (image pixels) as a pink ring.
    Returns (image with the marker, Markdown describing the prediction).

    Raises ConfigError for a missing image / instruction, VisagentError / EngineError from the model.
    """
    from visagent.core.errors import ConfigError

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
        raise ConfigError("grounding needs a model, not the scripted oracle; pick a model in the Model section")
    engine = dash.runs.engines.get(choice)
    result = grounding.ground(engine, image.convert("RGB"), instruction.strip(), platform=platform)
    markers = Markers() if result.point is None else Markers(model=(float(result.point[0]), float(result.point[1])))
    return draw_markers(image, markers), describe(result)


def describe(result: Any) -> str:
    """Markdown for a GroundingResult: the action, the point in model space and in image pixels, the output."""
    parts = []
    if result.action is not None:
        parts.append(f"predicted action: {md.code(result.action.summary())}")
    if result.point is not None and result.point_model is not None:
        px, py = result.point
        mx, my = result.point_model
        off = "" if 0 <= px < result.image_size[0] and 0 <= py < result.image_size[1] else " — off the image"
        parts.append(f"point: model {md.text(result.space)} ({mx:g}, {my:g}) → image ({px:.0f}, {py:.0f}) px{off}")
    if result.error:
        parts.append(f"⚠ no point: {md.text(result.error)}")
    parts.append(f"{result.latency_s:.1f} s · prompt style {result.prompt_style}")
    if result.raw:
        parts.append("model output:\n" + md.block(result.raw[:1500]))
    return "\n\n".join(parts)


def sim_screen(scenario_id: str | None) -> Image.Image:
    """A screenshot of a sim scenario's start screen (an example to ground on)."""
    from visagent.sim.scenarios import get_scenario

    if not scenario_id:
        from visagent.core.errors import ConfigError

        raise ConfigError("no sim scenario to take a screen from")
    return get_scenario(scenario_id).make_world().render()


def build(dash: forms.Dashboard) -> None:
    """Add the Grounding tab's components and events to the current Blocks."""
    available = importlib.util.find_spec("visagent.grounding") is not None
    gr.Markdown("The pink ring is where the model pointed. The model is picked as on the Run tab (a loaded model "
                "is shared by both tabs)." + ("" if available else f"\n\n⚠ {UNAVAILABLE}"))
    with gr.Accordion("Model", open=False, elem_id="vg-ground-model"):
        picker = model_picker.build(dash, "vg-ground", kinds=GROUNDING_KINDS)
    with gr.Row(equal_height=False):
        with gr.Column(scale=1):
            upload = gr.Image(type="pil", label="Screenshot", sources=["upload", "clipboard"],
                              elem_id="vg-ground-input", height=420)
            with gr.Row():
                instruction = gr.Textbox(label="Instruction", placeholder="e.g. the Dark mode switch", scale=3,
                                         elem_id="vg-ground-instruction")
                platform = gr.Radio(["desktop", "phone"], value="desktop", label="Screen", scale=1)
            with gr.Row():
                example = gr.Button("Use a sim screen", size="sm")
                locate = gr.Button("Locate", variant="primary", elem_id="vg-ground-run")
        with gr.Column(scale=1):
            output = gr.Image(type="pil", interactive=False, label="Prediction", elem_id="vg-ground-output",
                              height=420)
            gr.HTML(legend_html(), elem_id="vg-ground-legend")
            info = gr.Markdown("", elem_id="vg-ground-info", **md.MARKDOWN_SAFE)

    def on_example() -> tuple[Any, Any, Any, str]:
        try:
            return sim_screen(dash.default_scenario), "the Display item in the Settings sidebar", "desktop", ""
        except VisagentError as exc:
            return gr.skip(), gr.skip(), gr.skip(), f"⚠ {md.text(exc)}"

    example.click(on_example, None, [upload, instruction, platform, info], api_visibility="private")

    def on_locate(image: Image.Image | None, text: str, screen: str, *model: Any) -> tuple[Any, str]:
        try:
            return ground_image(dash, image, text, screen, ModelChoice.from_form(*model))
        except (VisagentError, EngineError) as exc:
            return gr.skip(), f"⚠ {md.text(exc)}"

    locate.click(on_locate, [upload, instruction, platform, *picker.inputs], [output, info], api_visibility="private")
