"""``vlacrl-make-tiny-checkpoint OUT [--seed N] [--family F]``: write a tiny random OpenVLA(-OFT) HF directory.

Same files as the released 7B checkpoints (config.json with ``timm_model_kwargs``, dataset_statistics.json,
preprocessor_config.json, tokenizer files, sharded safetensors + index), built locally without downloads. The
OpenVLA and OpenVLA-OFT checkpoints share layout and tensor names, so ``--family`` only names the directory's
intended policy in the message (``actor.model.model_name`` decides how it is run).
"""

from __future__ import annotations

import argparse
import sys

import torch

from vlacrl.cli.common import OneLineParser, output_dir
from vlacrl.models.families import get_family, hf_family_names
from vlacrl.models.openvla_oft.tiny import write_tiny_checkpoint

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineParser(prog="vlacrl-make-tiny-checkpoint", description=__doc__.splitlines()[0])
    parser.add_argument("out", type=output_dir, help="directory to create (e.g. model/tiny-openvla-oft)")
    parser.add_argument("--seed", type=int, default=0, help="weight seed (same seed → same weights)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float32", help="dtype of the stored tensors")
    parser.add_argument("--force", action="store_true", help="write into a non-empty directory")
    parser.add_argument("--family", choices=hf_family_names(), default=hf_family_names()[0],
                        help="the policy family it is for (actor.model.model_name)")  # fmt: skip
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.out.exists() and any(args.out.iterdir()) and not args.force:
        print(f"error: {args.out} is not empty (use --force to overwrite)", file=sys.stderr)
        return 2
    path = write_tiny_checkpoint(args.out, seed=args.seed, dtype=DTYPES[args.dtype])
    print(
        f"wrote tiny {get_family(args.family).label} checkpoint to {path} (seed {args.seed}); inspect it with: "
        f"vlacrl-inspect-model {path} --family {args.family}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
