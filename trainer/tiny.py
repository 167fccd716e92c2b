"""Tiny Llama-style base models built on the machine, for tests, benchmarks and the embedded default.

Nothing is downloaded: a byte-level BPE tokenizer is trained on a small built-in corpus and a
LlamaConfig model is initialised from a fixed seed. Both steps are deterministic, so every Ray worker
(on any node) that resolves ``tiny://<preset>`` builds byte-identical weights without shared storage,
and a resumed run continues from exactly the base it started on. ``python -m trainer.tiny <preset>
<folder>`` writes one out as an ordinary Hugging Face folder for tools that want a path.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import safetensors.torch
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from trainer import tiny_coder

TINY_SCHEME = "tiny://"
PAD, EOS = "<|pad|>", "<|eos|>"
_FORMAT = 1  # bump when the build changes, so stale caches are never reused
# A randomly initialised 64-wide model emits logits within about +-1 (embeddings of std 0.02 read through a
# unit RMSNorm), so no adapter on the frozen base could express a confident answer. Scaling the final norm
# gives the logit range of a trained model; adapters then learn in tens of steps, as they do on real bases.
_LOGIT_SCALE = 4.0


@dataclass(frozen=True)
class TinySpec:
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    max_positions: int = 512
    seed: int = 0
    pretrain_steps: int = 0  # 0: random weights; otherwise steps on trainer.tiny_coder's corpus
    pretrain_documents: int = 0


PRESETS: dict[str, TinySpec] = {
    # The test model: trains 30 DPO steps in about a second on one core.
    "kaizen-tiny": TinySpec(hidden=64, layers=2, heads=4, kv_heads=2, intermediate=176, vocab=512),
    # The benchmark model: enough compute per step that framework overhead is measured, not noise.
    "kaizen-small": TinySpec(hidden=256, layers=4, heads=8, kv_heads=4, intermediate=704, vocab=512),
    # The loop's base: 0.85 M parameters pre-trained on the coder task (trainer.tiny_coder), a few minutes
    # on one core, once per machine. It copies names but often ignores the language asked for.
    "kaizen-coder": TinySpec(
        hidden=128,
        layers=4,
        heads=4,
        kv_heads=2,
        intermediate=384,
        vocab=512,
        max_positions=128,
        pretrain_steps=800,
        pretrain_documents=12_000,
    ),
}

# Mixed English and code, covering the words of devstack.synthetic's task and ordinary text.
_CORPUS = """
Write a function in python. Write a function in rust. Write a function in go. Write a function in javascript.
def solve(x):
    return x
fn solve(x: i32) -> i32 { x }
func solve(x int) int { return x }
function solve(x) { return x; }
The agent fixed the failing test and the build passed. The reviewer accepted the change.
Please summarise the ticket, then propose a patch with tests. Reply with the answer only.
import os, sys; print("hello world"); for i in range(10): total += i
error: expected one argument, found two. warning: unused variable. ok: all tests passed.
"""


def is_tiny(uri: str) -> bool:
    return uri.startswith(TINY_SCHEME)


def preset(uri: str) -> TinySpec:
    name = uri.removeprefix(TINY_SCHEME).strip("/")
    if name not in PRESETS:
        raise ValueError(f"unknown tiny model {uri!r}; presets: {sorted(PRESETS)}")
    return PRESETS[name]


def build_tokenizer(spec: TinySpec) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer (any text encodes) with pad and eos tokens, as a transformers tokenizer."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=spec.vocab,
        special_tokens=[PAD, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    if spec.pretrain_steps:
        tokenizer.train_from_iterator(tiny_coder.documents(2000, EOS), trainer=trainer)
    else:
        lines = [line for line in _CORPUS.splitlines() if line.strip()]
        tokenizer.train_from_iterator(lines * 4, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token=PAD, eos_token=EOS)  # type: ignore[no-untyped-call]


def build_model(spec: TinySpec, vocab_size: int) -> LlamaForCausalLM:
    """A randomly initialised LlamaForCausalLM; the same spec always gives the same weights."""
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=spec.hidden,
        intermediate_size=spec.intermediate,
        num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads,
        num_key_value_heads=spec.kv_heads,
        max_position_embeddings=spec.max_positions,
        tie_word_embeddings=True,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=1,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        model = LlamaForCausalLM(config)
    if not spec.pretrain_steps:  # pre-training finds its own logit range
        with torch.no_grad():
            model.model.norm.weight.fill_(_LOGIT_SCALE)
    return model


def materialize(spec: TinySpec, folder: Path) -> Path:
    """Write tokenizer + model into ``folder`` (a normal Hugging Face model folder) atomically."""
    if (folder / "config.json").exists():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tiny-", dir=folder.parent))
    try:
        tokenizer = build_tokenizer(spec)
        model = build_model(spec, len(tokenizer))
        if spec.pretrain_steps:
            corpus = tiny_coder.documents(spec.pretrain_documents, EOS, spec.seed)
            tiny_coder.pretrain(model, tokenizer, corpus, spec.pretrain_steps)
        tokenizer.save_pretrained(staging)
        # Not model.save_pretrained: under torch.distributed it writes only on global rank 0, and every
        # node's workers build their own copy. lm_head is tied to the embeddings and is left out.
        model.config.to_json_file(str(staging / "config.json"))
        weights = {k: v.contiguous() for k, v in sorted(model.state_dict().items()) if k != "lm_head.weight"}
        safetensors.torch.save_file(weights, str(staging / "model.safetensors"), metadata={"format": "pt"})
        try:
            os.rename(staging, folder)  # atomic; loses harmlessly to a concurrent builder
        except OSError:
            if not (folder / "config.json").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def cache_dir() -> Path:
    root = os.environ.get("KAIZEN_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "kaizen")
    return Path(root) / "tiny"


def resolve(uri: str) -> Path:
    """The local folder for a tiny:// URI, built on first use and cached per preset and format."""
    name = uri.removeprefix(TINY_SCHEME).strip("/")
    return materialize(preset(uri), cache_dir() / f"{name}-v{_FORMAT}")


def main(argv: list[str]) -> int:
    """``<preset> <folder>`` writes the preset there; ``<preset>`` alone rebuilds its cached copy
    (``make base-model``)."""
    if len(argv) not in (1, 2):
        print(
            "usage: python -m trainer.tiny <preset> [<folder>]  (no folder: rebuild the cache)",
            file=sys.stderr,
        )
        return 2
    if len(argv) == 1:
        cached = cache_dir() / f"{argv[0]}-v{_FORMAT}"
        preset(TINY_SCHEME + argv[0])  # an unknown preset fails here, before anything is removed
        shutil.rmtree(cached, ignore_errors=True)
        print(resolve(TINY_SCHEME + argv[0]))
        return 0
    folder = materialize(preset(TINY_SCHEME + argv[0]), Path(argv[1]))
    print(folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
