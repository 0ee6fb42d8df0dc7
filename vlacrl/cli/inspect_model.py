"""``vlacrl-inspect-model MODEL_DIR [--json] [--family F]``: load an HF-format OpenVLA(-OFT) directory and report.

Reports the parameter count, the dimensions, the norm-stats keys, the tokenizer check (BOS first, 29871
last for a LIBERO prompt) and, for a uniform mid-grey 256×256 image and a fixed instruction decoded
greedily, the action token ids and the decoded actions: OpenVLA-OFT's 56 tokens in parallel → [8, 7] actions,
OpenVLA's (``--family openvla``) 7 tokens generated one by one → one [1, 7] action. Exit code 2 for a bad
directory.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

from vlacrl.cli.common import OneLineParser
from vlacrl.models.errors import ModelDirError
from vlacrl.models.families import get_family, hf_family_names
from vlacrl.models.openvla_oft import OpenVLAOFTProcessor, build_prompt, load_policy, validate_model_dir
from vlacrl.models.openvla_oft.checkpoint import read_weight_shapes
from vlacrl.models.openvla_oft.config import OpenVLAOFTConfig
from vlacrl.models.openvla_oft.policy import BOS_TOKEN_ID, PROMPT_END_TOKEN_ID, OpenVLAOFTPolicy

DEFAULT_INSTRUCTION = "pick up the black bowl between the plate and the ramekin and place it on the plate"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineParser(prog="vlacrl-inspect-model", description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument("--instruction", default=DEFAULT_INSTRUCTION)
    parser.add_argument("--unnorm-key", default=None, help="norm-stats key (default: libero_spatial if present)")
    parser.add_argument("--family", choices=hf_family_names(), default=hf_family_names()[0],
                        help="how to run the checkpoint (actor.model.model_name)")  # fmt: skip
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--dtype",
        choices=["auto", *DTYPES],
        default="auto",
        help="auto: float32 for small models on CPU, else bfloat16",
    )
    return parser.parse_args(argv)


def pick_dtype(name: str, config: OpenVLAOFTConfig, device: str) -> torch.dtype:
    if name != "auto":
        return DTYPES[name]
    return torch.float32 if device == "cpu" and config.hidden_size <= 1024 else torch.bfloat16


def pick_unnorm_key(requested: str | None, config: OpenVLAOFTConfig) -> str | None:
    if requested is not None or not config.norm_stats:
        return requested
    keys = sorted(config.norm_stats)
    return next((k for k in keys if k.startswith("libero_spatial")), keys[0])


def dimensions(policy: OpenVLAOFTPolicy) -> dict[str, Any]:
    text = policy.config.text_config
    vision = policy.vision_backbone
    return {
        "vision_backbones": list(policy.config.timm_model_ids),
        "vision_dims": [vision.featurizer.embed_dim]
        + ([vision.fused_featurizer.embed_dim] if vision.fused_featurizer is not None else []),
        "vision_depths": [len(vision.featurizer.blocks)]
        + ([len(vision.fused_featurizer.blocks)] if vision.fused_featurizer is not None else []),
        "patches_per_image": vision.num_patches,
        "llm_hidden_size": text.hidden_size,
        "llm_layers": text.num_hidden_layers,
        "llm_heads": text.num_attention_heads,
        "vocab_size_padded": text.vocab_size,
        "action_token_ids": [policy.token_begin, policy.config.tokenizer_vocab_size],
    }


def inspect(args: argparse.Namespace) -> dict[str, Any]:
    read_weight_shapes(validate_model_dir(args.model_dir))
    config = OpenVLAOFTConfig.from_model_dir(args.model_dir)
    dtype = pick_dtype(args.dtype, config, args.device)
    unnorm_key = pick_unnorm_key(args.unnorm_key, config)
    family = get_family(args.family)
    policy = load_policy(
        args.model_dir, dtype=dtype, device=args.device, unnorm_key=unnorm_key,
        num_action_chunks=family.action_chunks, policy_class=family.policy_class(),
    )  # fmt: skip
    processor = OpenVLAOFTProcessor.from_model_dir(args.model_dir)
    image = torch.full((1, 256, 256, 3), 128, dtype=torch.uint8)
    batch = {k: v.to(args.device) for k, v in processor([args.instruction], image).items()}
    ids = batch["input_ids"][0]
    raw_ids = processor.prompts.tokenizer(build_prompt(args.instruction))["input_ids"]
    prediction = policy.predict_action_batch(**batch, greedy=True)
    return {
        "model_dir": str(args.model_dir),
        "family": args.family,
        "parameters": sum(p.numel() for p in policy.parameters()),
        "dtype": str(dtype).removeprefix("torch."),
        "device": args.device,
        "dimensions": dimensions(policy),
        "norm_stats_keys": sorted(config.norm_stats),
        "unnorm_key": policy.unnorm_key,
        "tokenizer": {
            "bos_first": int(ids[0]) == BOS_TOKEN_ID,
            "last_is_29871": int(ids[-1]) == PROMPT_END_TOKEN_ID,
            "tokenizer_produced_29871": raw_ids[-1] == PROMPT_END_TOKEN_ID,
            "prompt_tokens": int(batch["attention_mask"][0].sum()),
            "padded_length": int(ids.shape[0]),
        },
        "instruction": args.instruction,
        "action_tokens": prediction.action_tokens[0].reshape(-1).tolist(),
        "actions": [[round(float(v), 6) for v in row] for row in prediction.actions[0]],
    }


def print_text(report: dict[str, Any]) -> None:
    print(
        f"model      {report['model_dir']}  ({report['parameters']:,} parameters, {report['dtype']} on "
        f"{report['device']})"
    )
    for key, value in report["dimensions"].items():
        print(f"  {key:<20} {value}")
    print(f"norm stats {', '.join(report['norm_stats_keys'])}  (using {report['unnorm_key']})")
    tok = report["tokenizer"]
    print(
        f"tokenizer  BOS first: {tok['bos_first']}, 29871 last: {tok['last_is_29871']} "
        f"(produced by tokenizer: {tok['tokenizer_produced_29871']}), {tok['prompt_tokens']} prompt tokens "
        f"padded to {tok['padded_length']}"
    )
    print(f"greedy actions ({report['family']}) for a mid-grey image and {report['instruction']!r}:")
    print(f"  tokens {report['action_tokens']}")
    for step, row in enumerate(report["actions"]):
        print(f"  step {step}: " + " ".join(f"{v:+.4f}" for v in row))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = inspect(args)
    except ModelDirError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
