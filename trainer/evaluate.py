"""Held-out evaluation with one definition for DPO and SFT adapters.

For each held-out pair the model scores the chosen and the rejected answer (summed log-probability of
the answer's tokens given the prompt) twice: with the adapter (policy) and without it (the frozen base,
which is also DPO's reference). From those four numbers come every gate metric: preference accuracy
(policy prefers chosen), the base model's own accuracy for comparison, DPO's implicit reward accuracy
and margin, DPO's sigmoid loss, and for SFT the per-token log-likelihood gain on the chosen answers.
Computing them here rather than through TRL's evaluate loop keeps SFT and DPO runs comparable and needs
no collective calls, so rank 0 can evaluate alone after training.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from peft import PeftModel
from transformers import PreTrainedTokenizerBase

from trainer.data import Row


@dataclass(frozen=True)
class Scores:
    """Summed answer log-probabilities and answer token counts, one entry per pair."""

    chosen: torch.Tensor
    rejected: torch.Tensor
    chosen_tokens: torch.Tensor


def _encode(tokenizer: PreTrainedTokenizerBase, prompt: str, answer: str) -> tuple[list[int], int]:
    """Token ids of prompt + answer + eos and where the answer starts (as TRL splits them)."""
    prompt_ids: list[int] = tokenizer(prompt)["input_ids"]
    full: list[int] = tokenizer(prompt + answer + str(tokenizer.eos_token))["input_ids"]
    start = 0
    while start < min(len(prompt_ids), len(full)) and prompt_ids[start] == full[start]:
        start += 1
    return full, start


@torch.no_grad()
def answer_logprobs(
    model: Any,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[str],
    answers: list[str],
    batch_size: int = 16,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed log-probability of each answer given its prompt, and the answer's token count."""
    device = next(model.parameters()).device
    sums, counts = [], []
    items = list(zip(prompts, answers, strict=True))
    for start in range(0, len(items), batch_size):
        encoded = [_encode(tokenizer, p, a) for p, a in items[start : start + batch_size]]
        width = max(len(ids) for ids, _ in encoded)
        ids = torch.full((len(encoded), width), int(tokenizer.pad_token_id or 0), dtype=torch.long)
        attention = torch.zeros_like(ids)
        answer_mask = torch.zeros_like(ids, dtype=torch.bool)
        for row, (tokens, answer_start) in enumerate(encoded):
            ids[row, : len(tokens)] = torch.tensor(tokens)
            attention[row, : len(tokens)] = 1
            answer_mask[row, answer_start : len(tokens)] = True
        logits = model(input_ids=ids.to(device), attention_mask=attention.to(device)).logits.float()
        logp = torch.gather(F.log_softmax(logits[:, :-1], dim=-1), 2, ids[:, 1:, None].to(device)).squeeze(2)
        mask = answer_mask[:, 1:].to(device)
        sums.append((logp * mask).sum(dim=1).cpu())
        counts.append(mask.sum(dim=1).cpu())
    return torch.cat(sums), torch.cat(counts)


def score(model: Any, tokenizer: PreTrainedTokenizerBase, pairs: list[Row]) -> Scores:
    prompts = [p["prompt"] for p in pairs]
    chosen, chosen_tokens = answer_logprobs(model, tokenizer, prompts, [p["chosen"] for p in pairs])
    rejected, _ = answer_logprobs(model, tokenizer, prompts, [p["rejected"] for p in pairs])
    return Scores(chosen=chosen, rejected=rejected, chosen_tokens=chosen_tokens)


def metrics_from_scores(policy: Scores, base: Scores, beta: float) -> dict[str, float]:
    """The gate metrics from policy and base scores (pure arithmetic, unit-tested on its own)."""
    reward_chosen = beta * (policy.chosen - base.chosen)
    reward_rejected = beta * (policy.rejected - base.rejected)
    margin = reward_chosen - reward_rejected
    tokens = policy.chosen_tokens.clamp(min=1)
    return {
        "preference_accuracy": float((policy.chosen > policy.rejected).float().mean()),
        "baseline_preference_accuracy": float((base.chosen > base.rejected).float().mean()),
        "reward_accuracy": float((margin > 0).float().mean()),
        "reward_margin": float(margin.mean()),
        "dpo_loss": float(-F.logsigmoid(margin).mean()),
        "chosen_nll": float((-policy.chosen / tokens).mean()),
        "chosen_logprob_gain": float(((policy.chosen - base.chosen) / tokens).mean()),
    }


def evaluate(
    model: PeftModel, tokenizer: PreTrainedTokenizerBase, pairs: list[Row], beta: float
) -> dict[str, float]:
    """Score held-out pairs with the adapter enabled and disabled; empty when there are no pairs."""
    if not pairs:
        return {}
    was_training = model.training
    model.eval()
    try:
        policy = score(model, tokenizer, pairs)
        with model.disable_adapter():
            base = score(model, tokenizer, pairs)
    finally:
        model.train(was_training)
    return {**metrics_from_scores(policy, base, beta), "eval_pairs": float(len(pairs))}
