"""A Llama-2-shaped tokenizer built locally (no download) for tiny checkpoints.

Same layout as the Llama-2 vocabulary where it matters: ``<unk>`` 0, ``<s>`` (BOS) 1, ``</s>`` (EOS) 2,
byte-fallback pieces ``<0x00>``… at 3–258 (so ``\\n`` is 13), ``▁`` (the lone space) at 29871, 32000 ids in
all, plus the added ``<PAD>`` = 32000. A byte-level BPE over words of the LIBERO prompts fills the rest;
unused slots are filler pieces no merge can produce. Written as ``tokenizer.json`` (no SentencePiece
``tokenizer.model``), ``tokenizer_config.json``, ``special_tokens_map.json`` and ``added_tokens.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, processors

VOCAB_SIZE = 32000
SPACE_PIECE = "▁"
SPACE_ID = 29871
PAD_TOKEN, PAD_ID = "<PAD>", 32000
SPECIALS = ("<unk>", "<s>", "</s>")

_WORDS = (
    "In What action should the robot take to Out pick up place put turn on off open close push "
    "the a and of in it top bottom drawer cabinet bowl plate black white wooden ramekin cookie box "
    "stove microwave mug basket caddy tray book alphabet soup cream cheese ketchup tomato sauce butter "
    "milk orange juice bbq salad dressing chocolate pudding wine bottle rack between next center table "
    "front back left right middle sink moka pot pots both yellow red green"
).split()


def _vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    vocab: dict[str, int] = {tok: i for i, tok in enumerate(SPECIALS)}
    for byte in range(256):
        vocab[f"<0x{byte:02X}>"] = len(vocab)
    merges: list[tuple[str, str]] = []
    chars = sorted({c for w in _WORDS for c in w} | set(":?,.'-0123456789"))
    for word in _WORDS:
        for form in (SPACE_PIECE + word, word):
            for end in range(2, len(form) + 1):
                piece = form[:end]
                if piece not in vocab:
                    vocab[piece] = len(vocab)
                    merges.append((form[: end - 1], form[end - 1]))
    filler = 0
    while len(vocab) < SPACE_ID:
        vocab[f"<unused{filler}>"] = len(vocab)
        filler += 1
    for char in [SPACE_PIECE, *chars]:
        vocab.setdefault(char, len(vocab))
    while len(vocab) < VOCAB_SIZE:
        vocab[f"<unused{filler}>"] = len(vocab)
        filler += 1
    return vocab, merges


def build_tiny_tokenizer() -> Tokenizer:
    """The ``tokenizers`` object: BPE with byte fallback, Llama-2 normaliser/decoder, BOS prepended."""
    vocab, merges = _vocab_and_merges()
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend(SPACE_PIECE), normalizers.Replace(" ", SPACE_PIECE)])
    tok.decoder = decoders.Sequence(
        [decoders.Replace(SPACE_PIECE, " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in SPECIALS])
    tok.add_special_tokens([AddedToken(PAD_TOKEN, special=True, normalized=False)])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)]
    )
    return tok


def _token_entry(content: str) -> dict:
    return {
        "content": content,
        "lstrip": False,
        "normalized": False,
        "rstrip": False,
        "single_word": False,
        "special": True,
    }


def write_tiny_tokenizer(out_dir: str | Path) -> None:
    """Write the tokenizer files into ``out_dir`` (loadable with ``AutoTokenizer.from_pretrained``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    build_tiny_tokenizer().save(str(out / "tokenizer.json"))
    decoder = {str(i): _token_entry(s) for i, s in enumerate(SPECIALS)}
    decoder[str(PAD_ID)] = _token_entry(PAD_TOKEN)
    config = {
        "add_bos_token": True,
        "add_eos_token": False,
        "added_tokens_decoder": decoder,
        "bos_token": "<s>",
        "clean_up_tokenization_spaces": False,
        "eos_token": "</s>",
        "legacy": False,
        "model_max_length": 2048,
        "pad_token": PAD_TOKEN,
        "padding_side": "right",
        "tokenizer_class": "LlamaTokenizer",
        "unk_token": "<unk>",
    }
    special = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": PAD_TOKEN}
    for name, data in (
        ("tokenizer_config.json", config),
        ("special_tokens_map.json", special),
        ("added_tokens.json", {PAD_TOKEN: PAD_ID}),
    ):
        (out / name).write_text(json.dumps(data, indent=2) + "\n")
