"""Next-token choice for the in-process engine: greedy or seeded sampling with penalties.

Reuses transformers' logits processors (repetition penalty, temperature, top-k, top-p, min-p); the presence
penalty (OpenAI / vLLM semantics: subtract a constant from every token already generated) is added here.
"""

from __future__ import annotations

import torch

from engine.api import GenerationConfig
from engine.errors import EngineError


class PresencePenaltyLogitsProcessor:
    """Subtracts `penalty` from the logits of tokens that already appeared in the generated text."""

    def __init__(self, penalty: float) -> None:
        self.penalty = penalty

    def __call__(self, generated: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if generated.numel() == 0:
            return scores
        seen = torch.zeros_like(scores, dtype=torch.bool)
        seen.scatter_(1, generated.to(scores.device), True)
        return scores - self.penalty * seen.to(scores.dtype)


class TokenSampler:
    """Chooses tokens one at a time. temperature 0 → argmax; otherwise sampling with a seeded generator.

    `prompt_ids` (1, L) take part in the repetition penalty, as in transformers and vLLM.
    Raises EngineError for out-of-range settings.
    """

    def __init__(self, config: GenerationConfig, prompt_ids: torch.Tensor, *, device: torch.device | str = "cpu") -> None:
        from transformers import (
            MinPLogitsWarper,
            RepetitionPenaltyLogitsProcessor,
            TemperatureLogitsWarper,
            TopKLogitsWarper,
            TopPLogitsWarper,
        )

        _check(config)
        self.greedy = config.temperature == 0
        self._ids = prompt_ids.view(1, -1).to(device)
        self._generated: list[int] = []
        self._repetition = (
            RepetitionPenaltyLogitsProcessor(config.repetition_penalty) if config.repetition_penalty != 1.0 else None
        )
        self._presence = PresencePenaltyLogitsProcessor(config.presence_penalty) if config.presence_penalty else None
        self._warpers: list = []
        if not self.greedy:
            self._warpers.append(TemperatureLogitsWarper(config.temperature))
            if config.top_k > 0:
                self._warpers.append(TopKLogitsWarper(config.top_k))
            if config.top_p < 1.0:
                self._warpers.append(TopPLogitsWarper(config.top_p))
            if config.min_p > 0.0:
                self._warpers.append(MinPLogitsWarper(config.min_p))
        self._generator: torch.Generator | None = None
        if not self.greedy and config.seed is not None:
            self._generator = torch.Generator(device=device).manual_seed(int(config.seed))

    def next_token(self, logits: torch.Tensor) -> int:
        """Choose the next token from the last position's logits (vocab,) and remember it."""
        scores = logits.view(1, -1).float()
        if self._repetition is not None:
            scores = self._repetition(self._ids, scores)
        if self._presence is not None:
            scores = self._presence(torch.tensor([self._generated], dtype=torch.long), scores)
        if self.greedy:
            token = int(scores.argmax(dim=-1))
        else:
            for warp in self._warpers:
                scores = warp(self._ids, scores)
            probs = torch.softmax(scores, dim=-1)
            token = int(torch.multinomial(probs, 1, generator=self._generator))
        self._generated.append(token)
        self._ids = torch.cat([self._ids, torch.tensor([[token]], device=self._ids.device)], dim=1)
        return token


def _check(config: GenerationConfig) -> None:
    if config.temperature < 0:
        raise EngineError(f"temperature must be >= 0 (0 = greedy), got {config.temperature}")
    if not 0 < config.top_p <= 1:
        raise EngineError(f"top_p must be in (0, 1], got {config.top_p}")
    if not 0 <= config.min_p <= 1:
        raise EngineError(f"min_p must be in [0, 1] (0 = off), got {config.min_p}")
    if config.top_k < 0:
        raise EngineError(f"top_k must be >= 0 (0 = off), got {config.top_k}")
    if config.repetition_penalty <= 0:
        raise EngineError(f"repetition_penalty must be > 0 (1 = off), got {config.repetition_penalty}")
