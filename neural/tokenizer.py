"""A byte-level BPE tokenizer trained on serialized trajectories, with the format's special tokens."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from neural.textformat import END, PAD, SPECIAL_TOKENS


def train_tokenizer(texts: Iterable[str], vocab_size: int = 4096) -> Any:
    """A transformers PreTrainedTokenizerFast whose special tokens are single tokens (ids 0..8)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tokenizer = Tokenizer(models.BPE())
    # Byte level: any text (code, reprs, unicode) encodes without an unknown token.
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    return wrap(tokenizer)


def wrap(tokenizer: Any) -> Any:
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token=PAD,
        eos_token=END,
        additional_special_tokens=[t for t in SPECIAL_TOKENS if t not in (PAD, END)],
        clean_up_tokenization_spaces=False,
    )


def load_tokenizer(path: str) -> Any:
    """The tokenizer saved next to a model (tokenizer.json), from local files only."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path, local_files_only=True)


def ensure_special_tokens(tokenizer: Any) -> int:
    """Add the format's special tokens to a foreign tokenizer (for --base); returns how many were added."""
    unknown = (None, tokenizer.unk_token_id)
    missing = [t for t in SPECIAL_TOKENS if tokenizer.convert_tokens_to_ids(t) in unknown]
    added = 0
    if missing:
        added = tokenizer.add_special_tokens({"additional_special_tokens": missing})
    if tokenizer.pad_token is None:
        tokenizer.pad_token = PAD
    return int(added)
