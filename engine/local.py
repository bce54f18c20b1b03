"""Run a Qwen3.5 (or Qwen3-VL / Qwen2.5-VL) checkpoint in this process with transformers' own classes.

One generation = `prepare` (chat template → text, screenshots → patches, image pads expanded to their
visual tokens) → `prefill` (forwards over chunks of the prompt, cancellable between chunks, cache
returned; engine/prefill.py) → `decode` (one token per step, streamed, cancellable). The three steps are public so a session (incremental prefill, cache reuse) can
drive them itself; `generate` chains them under one lock so concurrent callers are serialised.
"""

from __future__ import annotations

import inspect
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.api import Delta, EngineInfo, GenerationConfig, GenerationResult, Message, ThinkingSplitter, ToolSchema
from engine.checkpoint import CheckpointInfo, inspect_checkpoint
from engine.devices import fast_kernels, flush_denormals, intra_op_threads, resolve_device, resolve_dtype
from engine.errors import CheckpointError, EngineError
from engine import presets
from engine.local_messages import collect_images as _collect_images
from engine.local_messages import normalise_messages as _normalise_messages
from engine.pointer import FlagHead, PointerCapture, load_pointer_head
from engine.prefill import DEFAULT_PREFILL_CHUNK, PrefillCancelled, PrefillControl, chunk_ends
from engine.preprocess import image_grids, preprocess_images
from engine.sampling import TokenSampler
from engine.segments import cache_of, image_spans, segment_runner
from engine.session import SessionLimits, SessionStore, session_prefill
from engine.text_stream import TextStream

log = logging.getLogger(__name__)

IMAGE_PAD = "<|image_pad|>"
VIDEO_PAD = "<|video_pad|>"


@dataclass
class PreparedPrompt:
    """A prompt ready for the model. Positions are Qwen's M-RoPE: row 0 text, rows 1-3 (t, h, w)."""

    text: str  # the rendered chat template, one <|image_pad|> per image (before expansion)
    input_ids: torch.Tensor  # (1, L) int64, image pads expanded
    mm_token_type_ids: torch.Tensor  # (1, L) int32, 1 on visual tokens
    position_ids: torch.Tensor  # (4, 1, L) int64
    rope_delta: int  # M-RoPE position of token L is L + rope_delta (images use fewer positions than tokens)
    pixel_values: torch.Tensor | None
    image_grid_thw: torch.Tensor | None
    visual_tokens: int
    thinking_open: bool  # the generation prompt opened <think>

    @property
    def length(self) -> int:
        return int(self.input_ids.shape[1])


class LocalEngine:
    """An `engine.api.Engine` over a local checkpoint directory, loaded with transformers' Auto classes.

    dtype: bf16 on CUDA, fp32 on CPU unless given. `device_map="auto"` spreads the model over GPUs / CPU
    with accelerate; otherwise the whole model goes to `device`. `threads`: torch intra-op threads while
    generating (default: 1 for a model under 50M parameters on CPU, torch's setting otherwise).
    `prefill_chunk`: prompt tokens per prefill forward (None or 0: the whole prompt in one forward); Stop
    (`cancel`) and `timeout_s` are checked between chunks. `on_prefill_chunk(start, end)`, when set, is
    called after every chunk `generate` runs (a progress hook; tests count chunks with it).
    `session_limits`: bounds of `self.sessions` (engine/session.py).
    Raises CheckpointError for a bad directory and EngineError for a bad device, dtype or chunk size.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        spec: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        device_map: str | None = None,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        threads: int | None = None,
        session_limits: SessionLimits | None = None,
        prefill_chunk: int | None = DEFAULT_PREFILL_CHUNK,
    ) -> None:
        if prefill_chunk is not None and prefill_chunk < 0:
            raise EngineError(f"prefill_chunk must be a positive token count or 0/None (one forward), got {prefill_chunk}")
        self.prefill_chunk = prefill_chunk or None
        self.on_prefill_chunk: Callable[[int, int], None] | None = None
        self.checkpoint: CheckpointInfo = inspect_checkpoint(path, min_pixels=min_pixels, max_pixels=max_pixels)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.kernels = fast_kernels(self.device)
        self._lock = threading.Lock()
        self.tokenizer = self._load_tokenizer()
        self.model = self._load_model(device_map)
        self._cache_kwarg = "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"
        self._input_device = self.model.get_input_embeddings().weight.device
        self.pointer_head: FlagHead | None = self._load_pointer_head()
        self._image_token_id = int(self.model.config.image_token_id)
        self._eos_ids = self._stop_token_ids()
        self.threads = threads if threads is not None else self._default_threads()
        self.sessions = SessionStore(session_limits or SessionLimits())  # generate(session_id=...): engine/session.py
        self.info = EngineInfo(
            spec=spec or str(self.checkpoint.path),
            model_type=self.checkpoint.model_type,
            coord_space=self.checkpoint.family.coord_space,
            vision=self.checkpoint.vision,
            supports_thinking=True,
            context_length=self.checkpoint.context_length,
            prompt_profile=self.checkpoint.prompt_profile,
            history_images=self.checkpoint.history_images,
            points=self.pointer_head is not None,
            sampling=presets.for_checkpoint(self.checkpoint.path, self.checkpoint.model_type,
                                            decoding=self.checkpoint.decoding),
        )
        log.info(
            "loaded %s (%s) on %s as %s; kernels: %s",
            self.checkpoint.path,
            self.checkpoint.model_type,
            self._input_device,
            self.dtype,
            self.kernels,
        )

    # -- loading ---------------------------------------------------------------------------------------

    def _load_tokenizer(self):
        from transformers import AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(str(self.checkpoint.path))
        except Exception as exc:  # transformers raises many types; the user needs the one line
            raise CheckpointError(f"cannot load the tokenizer of {self.checkpoint.path}: {exc}") from exc
        if IMAGE_PAD not in tokenizer.get_vocab():
            raise CheckpointError(f"the tokenizer of {self.checkpoint.path} has no {IMAGE_PAD} token: not a Qwen VL checkpoint")
        if not tokenizer.chat_template:
            raise CheckpointError(f"no chat template loaded from {self.checkpoint.chat_template}; check the file")
        return tokenizer

    def _load_model(self, device_map: str | None):
        from transformers import AutoModelForImageTextToText

        # use_kernels=False: transformers (5.25) otherwise "kernelizes" the model from the Hugging Face Hub's kernel
        # repositories whenever it enters training mode on a GPU (model.train() fetched kernels-community/fla and
        # failed offline on a lent H200, docs/gpu.md). Fused kernels come only from installed packages
        # (visagent[fast]: flash-linear-attention), which transformers still picks up by itself.
        kwargs: dict[str, Any] = {"dtype": self.dtype, "use_kernels": False}
        if device_map:
            kwargs["device_map"] = device_map
        try:
            model = AutoModelForImageTextToText.from_pretrained(str(self.checkpoint.path), **kwargs)
        except Exception as exc:
            raise CheckpointError(f"cannot load the model in {self.checkpoint.path}: {exc}") from exc
        if not device_map:
            model.to(self.device)
        model.eval()
        return model

    def _load_pointer_head(self) -> FlagHead | None:
        """engine/pointer.py: the checkpoint's pointing head, on the model's input device, or None."""
        config = self.model.config
        hidden = int(getattr(getattr(config, "text_config", config), "hidden_size"))
        head = load_pointer_head(self.checkpoint.path, hidden)
        return head.to(self._input_device) if head is not None else None

    def _default_threads(self) -> int | None:
        """1 intra-op thread for a small model on CPU (its ops are too small to gain from threads, and on a
        busy CPU thread hand-offs made the tiny model 10x slower); torch's default otherwise."""
        if self._input_device.type != "cpu":
            return None
        params = sum(p.numel() for p in self.model.parameters())
        return 1 if params < 50_000_000 else None

    def _stop_token_ids(self) -> set[int]:
        ids = {self.tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")}
        if self.tokenizer.eos_token_id is not None:
            ids.add(int(self.tokenizer.eos_token_id))
        gen = self.checkpoint.path / "generation_config.json"
        if gen.is_file():
            eos = json.loads(gen.read_text(encoding="utf-8")).get("eos_token_id")
            ids.update(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        unk = self.tokenizer.unk_token_id
        return {int(i) for i in ids if i is not None and i != unk}

    # -- the three steps -----------------------------------------------------------------------------------

    def render_prompt(self, messages: Sequence[Message], *, tools: Sequence[ToolSchema] | None = None, enable_thinking: bool = False) -> str:
        """The checkpoint's chat template applied with `tools=` and `enable_thinking=`, generation prompt added."""
        try:
            return self.tokenizer.apply_chat_template(
                _normalise_messages(messages),
                tools=list(tools) if tools else None,
                enable_thinking=enable_thinking,
                add_generation_prompt=True,
                tokenize=False,
            )
        except EngineError:
            raise
        except Exception as exc:  # jinja raise_exception / TemplateError: the template's own message
            raise EngineError(f"the chat template refused these messages: {exc}") from exc

    def prepare(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSchema] | None = None,
        enable_thinking: bool = False,
        pixels: bool = True,
    ) -> PreparedPrompt:
        """Render, preprocess images and tokenize. Raises EngineError for bad messages or images.

        `pixels=False` lays out the visual tokens from the image sizes only and leaves `pixel_values` None:
        a session (engine/session.py) preprocesses just the screenshots its cache does not hold yet.
        """
        text = self.render_prompt(messages, tools=tools, enable_thinking=enable_thinking)
        images = _collect_images(messages)
        if VIDEO_PAD in text:
            raise EngineError("video content is not supported; send frames as images")
        pieces = text.split(IMAGE_PAD)
        if len(pieces) - 1 != len(images):
            raise EngineError(
                f"the chat template placed {len(pieces) - 1} image tokens for {len(images)} images; "
                "put images only in user/tool messages as {'type': 'image', 'image': PIL.Image}"
            )
        pixel_values = grid = None
        visual = 0
        expanded = pieces[0]
        if images:
            if pixels:
                pixel_values, grid = self._preprocess(images)  # engine.preprocess: transformers' patch layout, fast
            else:
                grid = self._grids(images)
            merge = self.checkpoint.vision.merge_size ** 2
            for piece, thw in zip(pieces[1:], grid.tolist()):
                n = thw[0] * thw[1] * thw[2] // merge
                visual += n
                expanded += IMAGE_PAD * n + piece
        input_ids = self.tokenizer(expanded, add_special_tokens=False, return_tensors="pt")["input_ids"]
        mm = (input_ids == self._image_token_id).to(torch.int32)
        positions, delta = self._positions(input_ids, mm, grid)
        return PreparedPrompt(
            text=text,
            input_ids=input_ids,
            mm_token_type_ids=mm,
            position_ids=positions,
            rope_delta=delta,
            pixel_values=pixel_values,
            image_grid_thw=grid,
            visual_tokens=visual,
            # from the text, not the flag: some templates (Qwen3-VL Thinking) always open <think>, some never
            thinking_open=text.rstrip().endswith("<think>"),
        )

    def _grids(self, images: list[Any]) -> torch.Tensor:
        try:
            return image_grids(images, self.checkpoint.vision)
        except ValueError as exc:
            raise EngineError(str(exc)) from None

    def _preprocess(self, images: list[Any]) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            return preprocess_images(images, self.checkpoint.vision)
        except ValueError as exc:  # names the bad image (index, size, type)
            raise EngineError(str(exc)) from None

    def _positions(self, input_ids: torch.Tensor, mm: torch.Tensor, grid: torch.Tensor | None) -> tuple[torch.Tensor, int]:
        length = input_ids.shape[1]
        text = torch.arange(length, dtype=torch.long).view(1, 1, -1)
        if grid is None:
            return text.expand(4, 1, -1).clone(), 0
        vision, deltas = self.model.model.get_rope_index(
            input_ids=input_ids, mm_token_type_ids=mm, image_grid_thw=grid, attention_mask=None
        )
        return torch.cat([text, vision.to(torch.long).cpu()], dim=0), int(deltas.view(-1)[0])

    def prefill(
        self,
        prompt: PreparedPrompt,
        cache: Any = None,
        start: int = 0,
        *,
        control: PrefillControl | None = None,
        keep_hidden: Callable[[int, int, torch.Tensor], None] | None = None,
    ) -> tuple[torch.Tensor, Any]:
        """Run the prompt tokens from `start` (0: all; >0: `cache` already holds the tokens before it).

        Returns (logits of the last position, float32 (vocab,), the cache). Images are encoded only in the
        chunks that hold their visual tokens (`prompt.pixel_values` must cover every image of the prompt).
        `control` (engine/prefill.py): chunk size and the cancel / deadline checks made before each chunk;
        None runs one forward. `keep_hidden`: engine/segments.py's hidden-state callback (the pointing head's
        capture). Raises PrefillCancelled (the cache then holds tokens [0, exc.done)) or
        EngineError (deadline passed, or images in the new tokens of a prompt prepared with pixels=False).
        """
        if start >= prompt.length:
            raise EngineError(f"prefill start {start} is not before the prompt end {prompt.length}")
        merge = self.checkpoint.vision.merge_size
        if prompt.pixel_values is None and bool(prompt.mm_token_type_ids[:, start:].any()):
            raise EngineError("prefill of a segment with images needs pixel_values: prepare the prompt with pixels=True")
        spans = image_spans(prompt.mm_token_type_ids, prompt.image_grid_thw, merge)
        run = segment_runner(
            self.model,
            prompt.input_ids,
            prompt.position_ids,
            prompt.mm_token_type_ids,
            prompt.pixel_values,
            prompt.image_grid_thw,
            merge_size=merge,
            device=self._input_device,
            dtype=self.dtype,
            keep_hidden=keep_hidden,
        )
        logits = None
        begin = start
        try:
            for end in chunk_ends(start, prompt.length, control.chunk_tokens if control else None, spans):
                if control is not None:
                    control.check(begin)
                logits, cache = run(begin, end, cache)
                if control is not None and control.on_chunk is not None:
                    control.on_chunk(begin, end)
                begin = end
        except ValueError as exc:  # segment_runner: a cut through an image (a bug in the chunk plan)
            raise EngineError(str(exc)) from None
        assert logits is not None
        return logits, cache

    def decode(
        self,
        prompt: PreparedPrompt,
        logits: torch.Tensor,
        cache: Any,
        config: GenerationConfig,
        *,
        on_delta: Callable[[Delta], None] | None = None,
        cancel: threading.Event | None = None,
        deadline: float | None = None,
        fed: list[int] | None = None,
    ) -> tuple[GenerationResult, Any]:
        """Sample from `logits`, feed each token back, stream text; returns (result, cache after decoding).

        Stops at an end-of-turn token ("stop"), a stop string ("stop_string", not included in the text),
        `max_new_tokens` or the context end ("length"), or `cancel` being set ("cancelled", checked before
        every token). Raises EngineError when `deadline` (time.monotonic) passes. `fed`, when given, gets
        every generated token that was fed back into the cache (a session records them).
        """
        sampler = TokenSampler(config, prompt.input_ids, device=logits.device)
        stream = TextStream(self.tokenizer, config.stop, ThinkingSplitter(prompt.thinking_open), on_delta)
        limit = config.max_new_tokens
        if self.info.context_length:
            limit = min(limit, self.info.context_length - prompt.length)
        position = prompt.length
        finish = "length"
        count = 0
        dev = self._input_device
        while count < limit:
            if cancel is not None and cancel.is_set():
                finish = "cancelled"
                break
            if deadline is not None and time.monotonic() > deadline:
                raise EngineError(
                    f"generation exceeded timeout_s={config.timeout_s} after {count} tokens; raise timeout_s or lower max_new_tokens"
                )
            token = sampler.next_token(logits)
            count += 1
            if token in self._eos_ids:
                finish = "stop"
                break
            if stream.push(token):
                finish = "stop_string"
                break
            if count >= limit:
                break
            if fed is not None:
                fed.append(token)
            pos = torch.tensor([position, position + prompt.rope_delta, position + prompt.rope_delta, position + prompt.rope_delta])
            with torch.inference_mode():
                out = self.model(
                    input_ids=torch.tensor([[token]], device=dev),
                    position_ids=pos.view(4, 1, 1).to(dev),
                    use_cache=True,
                    **{self._cache_kwarg: cache},
                )
            cache = cache_of(out)
            logits = out.logits[0, -1].float()
            position += 1
        text, thinking, answer = stream.finish()
        result = GenerationResult(
            text=text,
            thinking=thinking,
            answer=answer,
            finish_reason=finish,  # type: ignore[arg-type]
            prompt_tokens=prompt.length,
            visual_tokens=prompt.visual_tokens,
            generated_tokens=count,
        )
        return result, cache

    # -- Engine protocol ---------------------------------------------------------------------------------

    def generate(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSchema] | None = None,
        config: GenerationConfig = GenerationConfig(),
        on_delta: Callable[[Delta], None] | None = None,
        cancel: threading.Event | None = None,
        session_id: str | None = None,
    ) -> GenerationResult:
        """Generate one assistant turn (see engine.api.Engine.generate).

        With `session_id` the conversation's model state is kept (self.sessions, engine/session.py): the next
        call with that id prefills only what its prompt adds, and `result.cached_tokens` says how much came
        from the cache. The output is the same as without a session.
        """
        if config.max_new_tokens < 1:
            raise EngineError(f"max_new_tokens must be at least 1, got {config.max_new_tokens}")
        if self.model is None:
            raise EngineError(f"the engine for {self.info.spec} was closed; load it again with load_engine")
        with self._lock, intra_op_threads(self.threads), flush_denormals(self.device):
            t0 = time.monotonic()
            deadline = t0 + config.timeout_s if config.timeout_s else None
            # a session preprocesses only the screenshots its cache lacks (engine/session.py)
            prompt = self.prepare(messages, tools=tools, enable_thinking=config.enable_thinking, pixels=session_id is None)
            if self.info.context_length and prompt.length >= self.info.context_length:
                raise EngineError(
                    f"the prompt is {prompt.length} tokens, the model's context is {self.info.context_length}; "
                    "send fewer or smaller screenshots"
                )
            t1 = time.monotonic()
            cached, fed = 0, None
            control = PrefillControl(self.prefill_chunk, cancel, deadline, config.timeout_s, self.on_prefill_chunk)
            capture = None
            if self.pointer_head is not None and prompt.visual_tokens:
                capture = PointerCapture(self.pointer_head, prompt.mm_token_type_ids, prompt.position_ids)
            keep = capture.capture if capture is not None else None
            try:
                if session_id is None:
                    logits, cache = self.prefill(prompt, control=control, keep_hidden=keep)
                else:  # engine/session.py: reuse the conversation's cached state, prefill only what is new
                    step = session_prefill(self, self.sessions, session_id, prompt, _collect_images(messages), control,
                                           keep_hidden=keep)
                    logits, cache, cached, fed = step.logits, step.cache, step.cached_tokens, []
            except PrefillCancelled as stop:  # Stop during prefill: an empty, cancelled turn (a session keeps
                result = GenerationResult(  # the chunks that ran and resumes after them next call)
                    text="", thinking="", answer="", finish_reason="cancelled",
                    prompt_tokens=prompt.length, visual_tokens=prompt.visual_tokens, generated_tokens=0,
                )
                t2 = time.monotonic()
                result.timings = {"preprocess": t1 - t0, "prefill": t2 - t1, "decode": 0.0, "total": t2 - t0}
                log.info("prefill cancelled after %d of %d prompt tokens", stop.done, prompt.length)
                return result
            t2 = time.monotonic()
            try:
                result, cache = self.decode(
                    prompt, logits, cache, config, on_delta=on_delta, cancel=cancel, deadline=deadline, fed=fed
                )
            except BaseException:
                if session_id is not None:
                    self.sessions.drop(session_id)  # its cache holds part of an unfinished turn
                raise
            if session_id is not None:
                self.sessions.commit(session_id, cache, fed or [], prompt.rope_delta)
            t3 = time.monotonic()
        result.cached_tokens = cached
        result.pointer = capture.pointer() if capture is not None else None
        result.timings = {"preprocess": t1 - t0, "prefill": t2 - t1, "decode": t3 - t2, "total": t3 - t0}
        return result

    def close(self) -> None:
        """Drop the model; GPU memory is returned to the allocator."""
        with self._lock:
            self.sessions.clear()
            self.model = None  # type: ignore[assignment]
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
