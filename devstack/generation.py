"""Text generation for the local model server: a base model and its LoRA adapters, token by token.

The base is loaded with transformers and the adapters with PEFT onto the same weights, as vLLM does
with ``--enable-lora``: each request names either the base (adapters disabled) or one adapter. The
decode loop is written out (one forward pass per token with the KV cache) so that every token can be
streamed as it is made, with its log-probability; greedy at temperature 0, seeded sampling otherwise.
PEFT keeps one active adapter per model, so generations run one at a time behind a lock.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, AutoTokenizer


class GenerationError(ValueError):
    """A request the model cannot serve (too long, bad parameters); ``param`` names the field."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class Sampling:
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: Sequence[str] = ()
    top_logprobs: int = 0


@dataclass(frozen=True)
class TokenLogprob:
    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()  # most likely first; distinct tokens may decode alike


@dataclass
class Step:
    """One piece of a generation: new text (possibly empty while a stop string may be forming), the
    token that made it, and, on the last step, why generation ended."""

    text: str
    token: TokenLogprob | None = None
    finish_reason: str | None = None


class Engine:
    """A base model with named LoRA adapters, ready to generate."""

    def __init__(self, base: Path, base_name: str, adapters: Mapping[str, Path]) -> None:
        self.base_name = base_name
        self.paths = {base_name: base, **adapters}
        self.roots = {name: str(path) for name, path in self.paths.items()}
        self.tokenizer: Any = AutoTokenizer.from_pretrained(str(base))
        model: Any = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
        if adapters:
            from peft import PeftModel

            first, *rest = adapters.items()
            model = PeftModel.from_pretrained(model, str(first[1]), adapter_name=first[0])
            for name, path in rest:
                model.load_adapter(str(path), adapter_name=name)
        self.model = model.eval()
        self.adapters: tuple[str, ...] = tuple(adapters)
        self.max_model_len = int(getattr(self.model.config, "max_position_embeddings", 2048))
        self._lock = threading.Lock()

    def load_adapter(self, name: str, path: Path, root: str) -> None:
        """Add an adapter while serving (vLLM's runtime LoRA loading); ``root`` is what ``/v1/models``
        reports it was loaded from. Waits for the generation in progress (the model is shared)."""
        from peft import PeftModel

        with self._lock:
            if isinstance(self.model, PeftModel):
                self.model.load_adapter(str(path), adapter_name=name)
            else:
                self.model = PeftModel.from_pretrained(self.model, str(path), adapter_name=name).eval()
            self.paths[name] = path
            self.roots[name] = root
            self.adapters = (*self.adapters, name)

    def unload_adapter(self, name: str) -> None:
        with self._lock:
            self.model.delete_adapter(name)
            self.adapters = tuple(a for a in self.adapters if a != name)
            self.paths.pop(name, None)
            self.roots.pop(name, None)

    @property
    def models(self) -> list[str]:
        return [self.base_name, *self.adapters]

    def encode(self, prompt: str) -> list[int]:
        return list(self.tokenizer(prompt)["input_ids"])

    def chat_prompt(self, messages: Sequence[Mapping[str, str]]) -> str:
        """The model's chat template when it has one; otherwise the messages' contents, one per line
        (the plain-text form the trainer trains on)."""
        if getattr(self.tokenizer, "chat_template", None):
            return str(
                self.tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)
            )
        return "".join(m["content"] if m["content"].endswith("\n") else m["content"] + "\n" for m in messages)

    def check(self, model_name: str, prompt_ids: list[int], sampling: Sampling) -> None:
        """Refuse, before any work, what ``generate`` cannot do."""
        if model_name not in self.paths:
            raise GenerationError("model", f"The model `{model_name}` does not exist.")
        if not prompt_ids:
            raise GenerationError("prompt", "the prompt is empty")
        if len(prompt_ids) + sampling.max_tokens > self.max_model_len:
            raise GenerationError(
                "max_tokens",
                f"This model's maximum context length is {self.max_model_len} tokens. However, you requested "
                f"{len(prompt_ids) + sampling.max_tokens} tokens ({len(prompt_ids)} in the messages, "
                f"{sampling.max_tokens} in the completion).",
            )

    def generate(self, model_name: str, prompt_ids: list[int], sampling: Sampling) -> Generator[Step]:
        """Steps of one checked generation; holds the model for its whole length (run it off the event loop)."""
        with self._lock, torch.inference_mode():
            if model_name == self.base_name and hasattr(self.model, "disable_adapter"):
                with self.model.disable_adapter():
                    yield from self._decode(prompt_ids, sampling)
            else:
                if self.adapters:
                    self.model.set_adapter(model_name)
                yield from self._decode(prompt_ids, sampling)

    def _decode(self, prompt_ids: list[int], sampling: Sampling) -> Iterator[Step]:
        generator = torch.Generator().manual_seed(sampling.seed) if sampling.seed is not None else None
        eos = self.tokenizer.eos_token_id
        hold = max((len(s) for s in sampling.stop), default=1) - 1
        generated: list[int] = []
        sent = 0
        inputs = torch.tensor([prompt_ids])
        past = None
        for _ in range(sampling.max_tokens):
            out = self.model(input_ids=inputs, past_key_values=past, use_cache=True)
            past = out.past_key_values
            logits = out.logits[0, -1].float()
            logprobs = F.log_softmax(logits, dim=-1)
            token = _choose(logits, sampling, generator)
            if token == eos:
                yield Step(self._text(generated)[sent:], finish_reason="stop")
                return
            generated.append(token)
            text = self._text(generated)
            stop_at = min((i for s in sampling.stop if (i := text.find(s)) >= 0), default=-1)
            info = self._logprob(token, logprobs, sampling.top_logprobs)
            if stop_at >= 0:
                yield Step(text[sent:stop_at], info, finish_reason="stop")
                return
            # Hold back what could be the start of a stop string, and half-decoded multi-byte characters.
            safe = len(text) - hold if sampling.stop else len(text)
            while safe > sent and text[safe - 1] == "\ufffd":
                safe -= 1
            yield Step(text[sent:safe] if safe > sent else "", info)
            sent = max(sent, safe)
            inputs = torch.tensor([[token]])
        yield Step(self._text(generated)[sent:], finish_reason="length")

    def _text(self, ids: list[int]) -> str:
        return str(self.tokenizer.decode(ids, skip_special_tokens=True))

    def _logprob(self, token: int, logprobs: torch.Tensor, top: int) -> TokenLogprob:
        best: tuple[tuple[str, float], ...] = ()
        if top:
            values, indices = torch.topk(logprobs, top)
            best = tuple((self._text([int(i)]), float(v)) for v, i in zip(values, indices, strict=True))
        return TokenLogprob(self._text([token]), float(logprobs[token]), best)


def _choose(logits: torch.Tensor, sampling: Sampling, generator: torch.Generator | None) -> int:
    if sampling.temperature <= 0.0:
        return int(torch.argmax(logits))
    probs = F.softmax(logits / sampling.temperature, dim=-1)
    if sampling.top_p < 1.0:
        ordered, order = torch.sort(probs, descending=True)
        keep = torch.cumsum(ordered, dim=-1) - ordered < sampling.top_p
        probs = torch.zeros_like(probs).scatter(0, order[keep], ordered[keep])
    choice = torch.multinomial(probs / probs.sum(), 1, generator=generator)
    return int(choice[0])


def finite(value: float) -> float:
    """JSON has no -inf: a token the model rules out gets the lowest finite log-probability."""
    return value if math.isfinite(value) else -9999.0
