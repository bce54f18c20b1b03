"""The model picker the Run and Grounding tabs share: the model kind, a checkpoint directory, or a server with
provider presets, an API key (a password field; it goes to the engine only) and a connection test that runs
`visagent doctor`'s checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from engine import PROVIDER_CHOICES
from ui import forms
from ui.engines import MODEL_KINDS, MODEL_LABELS, MODEL_NOTES, PROVIDER_PRESETS, ModelChoice
from visagent.core.errors import VisagentError


@dataclass
class ModelPicker:
    """The picker's components. `inputs`: the values ModelChoice.from_form takes, in its order (kind,
    checkpoint, url, model name, provider, API key)."""

    kind: Any
    checkpoint: Any
    url: Any
    model_name: Any
    provider: Any
    api_key: Any

    @property
    def inputs(self) -> list[Any]:
        return [self.kind, self.checkpoint, self.url, self.model_name, self.provider, self.api_key]


def build(dash: forms.Dashboard, prefix: str = "vg", kinds: tuple[str, ...] = MODEL_KINDS) -> ModelPicker:
    """Add the picker's components and events to the current Blocks (inside the caller's layout). Element ids
    start with `prefix` (the Run tab's are vg-model-kind, vg-preset, vg-api-key, vg-test-connection...)."""
    model: ModelChoice = dash.default_model
    if model.kind not in kinds:
        model = ModelChoice("tiny", "tiny")
    server = model.kind == "server"
    kind = gr.Radio([(MODEL_LABELS[k], k) for k in kinds], value=model.kind, label="Model",
                    elem_id=f"{prefix}-model-kind")
    note = gr.Markdown(MODEL_NOTES.get(model.kind, ""), elem_id=f"{prefix}-model-note", elem_classes=["vg-note"])
    checkpoint = gr.Textbox(label="Checkpoint directory", visible=model.kind == "checkpoint",
                            value=model.spec if model.kind == "checkpoint" else "", elem_id=f"{prefix}-checkpoint")
    with gr.Group(visible=server) as server_box:
        preset = gr.Dropdown([(p.label, name) for name, p in PROVIDER_PRESETS.items()], value=None,
                             label="Preset (fills URL, model name and provider)", elem_id=f"{prefix}-preset")
        with gr.Row():
            url = gr.Textbox(label="Server URL", placeholder="http://127.0.0.1:8000/v1", scale=2,
                             value=model.spec if server else "", elem_id=f"{prefix}-url")
            model_name = gr.Textbox(label="Model name", value=model.model_name or "", scale=1,
                                    elem_id=f"{prefix}-model-name")
        with gr.Row():
            provider = gr.Dropdown(list(PROVIDER_CHOICES), value=model.provider or dash.settings.provider,
                                   label="Provider", scale=1, elem_id=f"{prefix}-provider")
            api_key = gr.Textbox(label="API key", type="password", value="", scale=2, elem_id=f"{prefix}-api-key",
                                 placeholder="empty: $VISAGENT_API_KEY / $OPENAI_API_KEY",
                                 info="sent to the server only; never written to a trace, settings file or log")
        test = gr.Button("Test connection", size="sm", elem_id=f"{prefix}-test-connection")
        result = gr.Textbox(label="Connection test (visagent doctor)", lines=6, interactive=False, visible=False,
                            elem_id=f"{prefix}-connection")

    def on_kind(value: str) -> tuple[Any, Any, str]:
        return (gr.update(visible=value == "checkpoint"), gr.update(visible=value == "server"),
                MODEL_NOTES.get(value, ""))

    kind.change(on_kind, kind, [checkpoint, server_box, note], api_visibility="private")

    def on_preset(name: str | None) -> tuple[Any, Any, Any]:
        if not name:
            return gr.skip(), gr.skip(), gr.skip()
        try:
            return forms.preset_values(name)
        except VisagentError:
            return gr.skip(), gr.skip(), gr.skip()

    preset.input(on_preset, preset, [url, model_name, provider], api_visibility="private")

    def on_test(url_value: str, name: str, provider_value: str, key: str) -> Any:
        try:
            ok, lines = forms.connection_check(dash.settings, url_value, name, provider_value, key)
        except VisagentError as exc:
            return gr.update(value=f"FAIL  {exc}", visible=True)
        # the server's words go into a plain Textbox, never Markdown
        return gr.update(value=lines + ("\nall checks passed" if ok else ""), visible=True)

    test.click(on_test, [url, model_name, provider, api_key], result, api_visibility="private")
    return ModelPicker(kind, checkpoint, url, model_name, provider, api_key)
