"""A pointing head: which screenshot token the prompt names, read from the model's last hidden states.

Generating a click as digits asks a small model to turn "this token is the target" into a number; the tiny
checkpoints trained here learn the first (their visual tokens tell the named element from the others) long
before the second (docs/training.md, Findings). A checkpoint may therefore carry a
pointing head next to its weights, `pointer_head.safetensors`: a LayerNorm and a linear "flag" over the
language model's last hidden state (after its final norm), scored on every visual token of the prompt's
last image and softmaxed across them (the flag term of visagent.training.pointer, saved by the trainer).
The engine runs it on the hidden states the prefill computes anyway (no extra forward) and returns where it
points as `engine.api.Pointer`: the centre of the top-scored token, as fractions of that image. Knowing
what to do with it (a click there instead of the written digits) is the caller's business; the engine knows
nothing about GUIs. Released Qwen checkpoints have no such file and nothing changes for them.

Tokens are placed on the image by their M-RoPE row / column positions (axes 2 and 3 of `position_ids`), as
the training loss places them, so both agree on which token covers which pixels.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from engine.api import Pointer
from engine.errors import CheckpointError

POINTER_FILE = "pointer_head.safetensors"
#: The tensors the file holds (names as in visagent.training.pointer.PointerHead's state dict).
POINTER_KEYS = ("norm.weight", "norm.bias", "flag.weight", "flag.bias")


class FlagHead(torch.nn.Module):
    """LayerNorm + Linear(hidden, 1): one score per visual token."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.norm = torch.nn.LayerNorm(hidden)
        self.flag = torch.nn.Linear(hidden, 1)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:  # (V, H) → (V,)
        return self.flag(self.norm(hidden.float()))[:, 0]

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor]) -> FlagHead:
        """A detached fp32 copy of the POINTER_KEYS of `state` (a training head's or a file's), in eval mode.
        KeyError for a missing tensor, RuntimeError for one of the wrong shape."""
        head = cls(int(state["norm.weight"].shape[0]))
        head.load_state_dict({k: state[k].detach().float() for k in POINTER_KEYS})
        return head.eval()


def save_pointer_head(state: dict[str, torch.Tensor], directory: str | Path, *, trained_steps: int) -> Path:
    """Write the flag part of a training head's `state` dict into `directory` (a checkpoint). Returns the file."""
    from safetensors.torch import save_file

    missing = [k for k in POINTER_KEYS if k not in state]
    if missing:
        raise ValueError(f"the head's state lacks {', '.join(missing)}")
    path = Path(directory) / POINTER_FILE
    tensors = {k: state[k].detach().float().cpu().contiguous() for k in POINTER_KEYS}
    save_file(tensors, str(path), metadata={"format": "visagent-flag-v1", "trained_steps": str(int(trained_steps))})
    return path


def load_pointer_head(directory: str | Path, hidden: int) -> FlagHead | None:
    """The checkpoint's pointing head, or None when it has none. Raises CheckpointError for a file that cannot
    be read or does not fit the model (`hidden`: the language model's hidden size)."""
    path = Path(directory) / POINTER_FILE
    if not path.is_file():
        return None
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path))
    except Exception as exc:  # safetensors raises its own types for a truncated / foreign file
        raise CheckpointError(f"cannot read {path}: {exc}; delete it to run without the pointing head") from None
    try:
        head = FlagHead.from_state(tensors)
    except (KeyError, RuntimeError) as exc:
        exc_line = str(exc).splitlines()[0]
        raise CheckpointError(f"{path} does not fit this model (hidden size {hidden}): {exc_line}; "
                              "delete it to run without the pointing head") from None
    if head.norm.normalized_shape != (hidden,):
        raise CheckpointError(f"{path} does not fit this model (hidden size {hidden}): it scores "
                              f"{head.norm.normalized_shape[0]}-wide states; delete it to run without the pointing head")
    return head


def token_grid(position_ids: torch.Tensor, visual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """(rows, cols, n_rows, n_cols) of the visual tokens at prompt positions `visual`, from the M-RoPE
    `position_ids` (4, 1, L) or (3, 1, L) (the last two axes are height and width)."""
    rows = position_ids[-2, 0, visual] - position_ids[-2, 0, visual].min()
    cols = position_ids[-1, 0, visual] - position_ids[-1, 0, visual].min()
    return rows, cols, int(rows.max()) + 1, int(cols.max()) + 1


def token_centres(position_ids: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
    """(V, 2): each visual token's centre, x and y as fractions of its image."""
    rows, cols, n_rows, n_cols = token_grid(position_ids, visual)
    return torch.stack([(cols.float() + 0.5) / n_cols, (rows.float() + 0.5) / n_rows], dim=-1)


def last_image_positions(mm_token_type_ids: torch.Tensor) -> torch.Tensor:
    """Prompt positions of the last image's visual tokens (a contiguous run at the end of the image tokens)."""
    image = (mm_token_type_ids[0] == 1).nonzero().flatten()
    if not len(image):
        return image
    breaks = (image[1:] - image[:-1] != 1).nonzero().flatten()
    return image[int(breaks[-1]) + 1:] if len(breaks) else image


class PointerCapture:
    """Collects the last hidden states of one prompt's last image while it is prefilled, then points.

    Pass `capture` to a segment runner (engine/segments.py) as `keep_hidden`; it is called with each chunk's
    (start, end, final-norm output) and keeps the rows of the last image. `pointer()` is None when the prefill
    never ran those tokens (a session's cache already held them) or the prompt has no image."""

    def __init__(self, head: FlagHead, mm_token_type_ids: torch.Tensor, position_ids: torch.Tensor) -> None:
        self.head = head
        self.visual = last_image_positions(mm_token_type_ids)
        self.position_ids = position_ids
        self._hidden: torch.Tensor | None = None
        self._first = int(self.visual[0]) if len(self.visual) else -1
        self._stop = int(self.visual[-1]) + 1 if len(self.visual) else -1

    def capture(self, start: int, end: int, hidden: torch.Tensor) -> None:
        if self._first < 0 or not (start <= self._first and self._stop <= end):
            return  # an image is never cut by a chunk: the chunk holding its first token holds all of it
        self._hidden = hidden[0, self._first - start:self._stop - start].detach()

    def pointer(self) -> Pointer | None:
        if self._hidden is None:
            return None
        with torch.inference_mode():
            head_device = next(self.head.parameters()).device
            probs = torch.softmax(self.head(self._hidden.to(head_device)), dim=-1).cpu()
        centres = token_centres(self.position_ids, self.visual)
        best = int(probs.argmax())
        x, y = (float(v) for v in centres[best])
        return Pointer(x=x, y=y, score=float(probs[best]), tokens=int(len(self.visual)))


def describe(directory: str | Path) -> dict[str, Any] | None:
    """model-info's view of the head: {"file", "trained_steps"} or None when the checkpoint has none."""
    path = Path(directory) / POINTER_FILE
    if not path.is_file():
        return None
    try:
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
    except Exception:
        return {"file": POINTER_FILE, "error": "unreadable"}
    return {"file": POINTER_FILE, "trained_steps": json.loads(meta.get("trained_steps", "null"))}
