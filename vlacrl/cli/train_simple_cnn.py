"""``vlacrl-train-simple-cnn``: supervised pre-training of the Simple CNN baseline (docs/methods/simple_cnn.md).

Reads the suite's replay files (default ``--data``: ``vlacrl-precompute-logits``'s output for ``--suite``, built
from the RLDS release with every episode, as the reference's ``…_simplevla_trajall``) or LIBERO demo ``.hdf5``
files, trains with the reference recipe
(AdamW lr 1e-4, weight decay 1e-5, batch 32, 10 epochs, 10 % validation) and writes ``best_checkpoint.pt``
and ``checkpoint_epoch_<e>.pt`` to ``--out``. See docs/methods/simple_cnn.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from vlacrl.cli.common import OneLineParser, output_dir
from vlacrl.data import default_replay_dir
from vlacrl.data.errors import ReplayDataError
from vlacrl.training.simple_cnn_sft import SFTConfig, train_simple_cnn


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineParser(prog="vlacrl-train-simple-cnn", description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="libero_spatial", help="suite of the default --data and --unnorm-key")
    parser.add_argument(
        "--data",
        nargs="+",
        type=Path,
        help="demo .hdf5 files or folders of them, all demos used (default: the "
        "suite's replay folder, <LIBERO>/datasets/datasets_with_logits/<suite>_simplevla)",
    )
    parser.add_argument("--out", required=True, type=output_dir, help="output folder for the checkpoints")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--weight-decay", type=float, default=1e-5)
    parser.add_argument("--val-fraction", type=float, default=0.1, help="random validation share (seeded)")
    parser.add_argument("--seed", type=int, default=0, help="model init, split and shuffle seed")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--unnorm-key", help="key of the stored action statistics (default <suite>_no_noops)")
    parser.add_argument("--save-every", type=int, default=5, help="write checkpoint_epoch_<e>.pt every N epochs")
    parser.add_argument("--num-workers", type=int, default=0, help="DataLoader worker processes")
    parser.add_argument("--demos-per-task", type=int, help="first N demos of each file (default: all)")
    parser.add_argument(
        "--label-smoothing", type=float, default=0.0, help="CE label smoothing in [0, 1) (0 = the reference)"
    )
    args = parser.parse_args(argv)
    args.data = args.data or [default_replay_dir(args.suite)]
    args.unnorm_key = args.unnorm_key or f"{args.suite}_no_noops"
    if args.epochs < 1 or args.batch_size < 1 or not 0.0 <= args.val_fraction < 1.0:
        parser.error("--epochs and --batch-size must be >= 1 and --val-fraction in [0, 1)")
    if not 0.0 <= args.label_smoothing < 1.0:
        parser.error("--label-smoothing must be in [0, 1)")
    return args


def main(argv: list[str] | None = None) -> int:
    """Console entry point: 0 on success, 2 (one-line error) for missing or unusable data."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = SFTConfig(
        data=args.data, out_dir=args.out, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        weight_decay=args.weight_decay, val_fraction=args.val_fraction, seed=args.seed, device=args.device,
        unnorm_key=args.unnorm_key, save_every=args.save_every, num_workers=args.num_workers,
        demos_per_task=args.demos_per_task, label_smoothing=args.label_smoothing,
    )  # fmt: skip
    try:
        result = train_simple_cnn(cfg)
    except ReplayDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"tasks: {result.task_id_map}")
    for row in result.history:
        print(f"epoch {row['epoch']}: train loss {row['train_loss']:.4f}, val loss {row['val_loss']:.4f}")
    for path in dict.fromkeys(result.checkpoints):
        print(f"saved {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
