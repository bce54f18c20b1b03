"""Auxiliary pointer loss for grounding records (`visagent train --pointer-weight W`).

The next-token loss on a click gives the model a handful of digit tokens per screen to learn from; whether
the instruction picks out one element among many ("click the 4 button") has to be inferred from them. The
pointer loss supervises that binding directly: at every position whose next token is a coordinate digit,
a small training-only head scores each visual token of the screenshot against that position's hidden state
(scaled dot product of two projections), and the loss is -log of the softmax mass on the visual tokens that
lie inside the target element (the click-inside event itself). Gradients reach the language layers'
attention from the answer to the screen and the vision tower's features of each 32-px token. A second term
scores each visual token on its own (a linear "flag" over its hidden state, softmax across the screenshot,
same -log mass inside): under a prompt profile that puts the task before the screenshot
("compact-task-first") each visual token can read the task, so this asks it to know whether it is the target;
with the screenshot first it can only learn where clickable things are.

The trainer keeps the head in its state so a resumed run continues it, and writes its flag part into every
checkpoint it saves (`pointer_head.safetensors`, engine/pointer.py): an engine loading that checkpoint then
reports where the flag points, and the agent may click there instead of the written digits. Only records
with `meta.bbox` and `meta.image_size` (grounding records) and a `coordinate` argument get the loss; others
train as before.

Readout loss (`visagent train --readout-weight W`): the pointer and flag terms train a side head, so the
model's own answer need not use what they find. The readout terms act on the model's computation instead:
(a) in the last full-attention layer, head 0's attention from every coordinate-digit position must put its
mass on the target's visual tokens (-log of that mass: the answer looks at the target); (b) a linear probe
must read each visual token's centre (x, y as fractions of the screenshot) from that layer's input (10 x mean
squared error: what it looks at carries where it is); (c) a second linear probe must read the target's centre
(the mean centre of its tokens) from the model's last hidden state at every coordinate-digit position (10 x
mean squared error: what the answer read arrived). Together they build a copy path from the target's tokens
to the digits; (c) is there because (a) and (b) alone leave the target's column unreadable at the answer.
Needs eager attention in the language model while training (set by the trainer).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import torch

from engine import last_image_positions, token_centres, token_grid

_COORDINATE = re.compile(r"<parameter=coordinate>\s*\[([^\]]*)\]")


@dataclass
class PointerTarget:
    """Where the pointer loss applies in one example (positions index its full input_ids).

    visual: positions of the last image's visual tokens; inside: bool per visual token (centre inside the
    target box, or the token holding the box centre when none is); queries: positions whose next token is a
    digit of the coordinate."""

    visual: torch.Tensor
    inside: torch.Tensor
    queries: torch.Tensor
    centres: torch.Tensor | None = None  # (V, 2): each visual token's centre, x and y as fractions of the image


def pointer_target(tokenizer: Any, record: dict[str, Any], target_text: str, prompt_length: int,
                   mm_token_type_ids: torch.Tensor, position_ids: torch.Tensor) -> PointerTarget | None:
    """The pointer target of one record, or None when it has no box or no coordinate (e.g. trajectory steps).

    Visual tokens are located by their M-RoPE positions (rows: axis 2, columns: axis 3 of `position_ids`), so
    the mapping to screen regions does not assume a token order."""
    meta = record.get("meta") or {}
    bbox, size = meta.get("bbox"), meta.get("image_size")
    match = _COORDINATE.search(target_text)
    if not bbox or not size or match is None:
        return None
    visual = last_image_positions(mm_token_type_ids)
    if not len(visual):
        return None
    rows, cols, n_rows, n_cols = token_grid(position_ids, visual)
    width, height = float(size[0]), float(size[1])
    x0, y0, x1, y1 = (float(v) for v in bbox)
    cx = (cols.float() + 0.5) / n_cols * width
    cy = (rows.float() + 0.5) / n_rows * height
    inside = (cx >= x0) & (cx <= x1) & (cy >= y0) & (cy <= y1)
    if not bool(inside.any()):  # a box smaller than a token: the token holding its centre
        r = min(n_rows - 1, int((y0 + y1) / 2 / height * n_rows))
        c = min(n_cols - 1, int((x0 + x1) / 2 / width * n_cols))
        inside = (rows == r) & (cols == c)
    enc = tokenizer(target_text, add_special_tokens=False, return_offsets_mapping=True)
    digits = range(match.start(1), match.end(1))
    queries = [prompt_length + i - 1 for i, (a, b) in enumerate(enc["offset_mapping"])
               if b > a and a in digits and target_text[a:b].isdigit()]
    if not queries:
        return None
    centres = token_centres(position_ids, visual)
    return PointerTarget(visual=visual, inside=inside, queries=torch.tensor(queries, dtype=torch.long),
                         centres=centres)


class PointerHead(torch.nn.Module):
    """Scores visual tokens against answer positions: (q(h_query) . k(h_visual)) / sqrt(dim)."""

    def __init__(self, hidden: int, dim: int = 64, readout: bool = False) -> None:
        super().__init__()
        self.norm = torch.nn.LayerNorm(hidden)
        self.q = torch.nn.Linear(hidden, dim)
        self.k = torch.nn.Linear(hidden, dim)
        self.flag = torch.nn.Linear(hidden, 1)
        self.scale = dim ** -0.5
        if readout:  # the readout probe: a visual token's centre from its hidden state (only when used, so a
            self.pos = torch.nn.Linear(hidden, 2)  # pointer-only run's state and optimizer keep their shapes)
            self.carry = torch.nn.Linear(hidden, 2)

    def loss(self, hidden: torch.Tensor, target: PointerTarget, offset: int = 0) -> torch.Tensor:
        """Mean over query positions of -log P(inside target), plus the flag term's -log P(inside target).
        `hidden`: (L', H) hidden states of the positions from `offset` on (offset > 0 when a shared prefix
        cache covered the first tokens)."""
        h = self.norm(hidden.float())
        dev = h.device
        visual = h[(target.visual - offset).to(dev)]  # (V, H)
        keys = self.k(visual)  # (V, d)
        queries = self.q(h[(target.queries - offset).to(dev)])  # (Q, d)
        logp = torch.log_softmax(queries @ keys.T * self.scale, dim=-1)  # (Q, V)
        inside = target.inside.to(dev)
        pointer = -torch.logsumexp(logp[:, inside], dim=-1).mean()
        flag = -torch.logsumexp(torch.log_softmax(self.flag(visual)[:, 0], dim=-1)[inside], dim=-1)
        return pointer + flag

    def readout_loss(self, attention: torch.Tensor, hidden_in: torch.Tensor, target: PointerTarget,
                     hidden_out: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """The readout terms (module docstring). `attention`: (heads, L', L) weights of the last full-attention
        layer for the positions from `offset` on over all positions; `hidden_in`: (L', H) that layer's input;
        `hidden_out`: (L', H) the model's last hidden states (term (c))."""
        dev = attention.device
        keys = target.visual[target.inside].to(dev)
        mass = attention[0][(target.queries - offset).to(dev)][:, keys].float().sum(-1)
        attend = -torch.log(mass.clamp_min(1e-9)).mean()
        seen = hidden_in[(target.visual - offset).to(dev)].float()
        # normalised per token: raw hidden norms (~60) into the untrained probe made this term swamp the rest
        where = self.pos(torch.nn.functional.layer_norm(seen, seen.shape[-1:]))
        locate = 10 * ((where - target.centres.to(dev)) ** 2).sum(-1).mean()
        answer = hidden_out[(target.queries - offset).to(dev)].float()
        said = self.carry(torch.nn.functional.layer_norm(answer, answer.shape[-1:]))
        goal = target.centres[target.inside].mean(0).to(dev)
        carry = 10 * ((said - goal) ** 2).sum(-1).mean()
        return attend + locate + carry
