"""``vlacrl-make-tiny-checkpoint OUT [--seed N]``: write a tiny random OpenVLA-OFT directory in HF format.

Same files as the released 7B checkpoints (config.json with ``timm_model_kwargs``, dataset_statistics.json,
preprocessor_config.json, tokenizer files, sharded safetensors + index), built locally without downloads.
"""

from __future__ import annotations

import argparse
import sys

import torch

from vlacrl.cli.common import OneLineParser, output_dir
from vlacrl.models.openvla_oft.tiny import write_tiny_checkpoint

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineParser(prog="vlacrl-make-tiny-checkpoint", description=__doc__.splitlines()[0])
    parser.add_argument("out", type=output_dir, help="directory to create (e.g. model/tiny-openvla-oft)")
    parser.add_argument("--seed", type=int, default=0, help="weight seed (same seed → same weights)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float32", help="dtype of the stored tensors")
    parser.add_argument("--force", action="store_true", help="write into a non-empty directory")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.out.exists() and any(args.out.iterdir()) and not args.force:
        print(f"error: {args.out} is not empty (use --force to overwrite)", file=sys.stderr)
        return 2
    path = write_tiny_checkpoint(args.out, seed=args.seed, dtype=DTYPES[args.dtype])
    print(
        f"wrote tiny OpenVLA-OFT checkpoint to {path} (seed {args.seed}); inspect it with: vlacrl-inspect-model {path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
