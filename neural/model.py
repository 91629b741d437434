"""The model: a decoder-only Llama-architecture transformer sized for a CPU, and local loading."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

DEFAULT_MODEL_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "default_model")


@dataclass(frozen=True, slots=True)
class ModelSize:
    """The shape of a model trained from scratch."""

    layers: int = 4
    hidden: int = 256
    heads: int = 4
    intermediate: int = 688  # about 8/3 of hidden, as Llama's SwiGLU sizing
    context: int = 1024  # longest sequence (positions)


TINY = ModelSize(layers=2, hidden=32, heads=2, intermediate=64, context=256)  # tests


def make_config(size: ModelSize, vocab_size: int, pad_id: int, eos_id: int) -> Any:
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=size.hidden,
        intermediate_size=size.intermediate,
        num_hidden_layers=size.layers,
        num_attention_heads=size.heads,
        num_key_value_heads=size.heads,
        max_position_embeddings=size.context,
        tie_word_embeddings=True,  # the embedding is most of a small model's weights: share it
        pad_token_id=pad_id,
        eos_token_id=eos_id,
        bos_token_id=None,
    )


def new_model(size: ModelSize, vocab_size: int, pad_id: int, eos_id: int, seed: int = 0) -> Any:
    """A randomly initialised causal LM (seeded)."""
    import torch
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    return LlamaForCausalLM(make_config(size, vocab_size, pad_id, eos_id))


def load_model(path: str, device: str = "cpu") -> Any:
    """Any local causal-LM checkpoint (save_pretrained layout), never from the network."""
    from transformers import AutoModelForCausalLM

    if not os.path.isfile(os.path.join(path, "config.json")):
        raise FileNotFoundError(f"{path} is not a model directory (no config.json)")
    model: Any = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
    return model.to(device)


def parameter_count(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def size_dict(size: ModelSize) -> dict[str, int]:
    return asdict(size)


def pick_device(name: str = "auto") -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("--device cuda asked for, but no CUDA device is available")
    return name
