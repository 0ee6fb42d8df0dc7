"""``vlacrl-precompute-logits``: build the ER/DER replay cache (docs/methods/er.md) from demonstration files.

For every task it writes ``<output-dir>/<instruction with spaces → _>.hdf5`` with ``data/demo_<i>/{actions,
obs/agentview_rgb, processed_action_logits, predicted_actions, action_tokens}``; the logits are the base
model's (the SFT checkpoint in ``--model-dir``; a fresh LoRA adapter would not change them). Sources, as the
reference: by default the suite's RLDS release (LIBERO: ``openvla/modified_libero_rlds`` under
``<LIBERO>/datasets/modified_libero_rlds/<suite>_no_noops/1.0.0``, 256² frames, every episode, ``demo_0`` =
episode 0; read without TensorFlow), or ``--rlds DIR``; with ``--input`` LIBERO's demo HDF5 files (converted:
gripper convention, 180° frames, no-op steps dropped) or files already in the replay layout (the default of
suites without a release, e.g. ``probe``). ``--no-logits`` only converts (enough for ER).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch
from safetensors import SafetensorError
from tqdm import tqdm

from vlacrl.cli.common import OneLineParser, output_dir
from vlacrl.data import (
    ReplayDataError,
    cache_file_name,
    default_demo_dir,
    default_replay_dir,
    default_rlds_dir,
    write_cache_file,
)
from vlacrl.data.precompute import SourceTask, base_model_bc_stats, compute_demo_logits, expand_inputs, iter_hdf5_tasks
from vlacrl.models.errors import ModelDirError

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineParser(prog="vlacrl-precompute-logits", description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="libero_spatial", help="LIBERO suite (default paths, unnorm key)")
    parser.add_argument("--model-dir", type=Path, help="HF-format OpenVLA-OFT directory (required unless --no-logits)")
    parser.add_argument("--input", nargs="+", type=Path, help="demo .hdf5 files or folders instead of the RLDS release")
    parser.add_argument(
        "--rlds",
        type=Path,
        help="RLDS folder …/<suite>_no_noops/1.0.0 (default <LIBERO>/datasets/modified_libero_rlds/…)",
    )
    parser.add_argument(
        "--output-dir", type=output_dir, help="default <LIBERO>/datasets/datasets_with_logits/<suite>_simplevla"
    )
    parser.add_argument("--demos-per-task", type=int, help="demos kept per task (default: all)")
    parser.add_argument(
        "--first-demo",
        type=int,
        default=0,
        help="skip this many demos per task first (default 0; the reference's RLDS worker skipped 1 when "
        "it limited --demos-per-task)",
    )
    parser.add_argument("--batch-size", type=int, default=16, help="frames per forward pass")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument(
        "--precision", choices=["auto", *PRECISIONS], default="auto", help="auto: bf16 on GPU, fp32 on CPU"
    )
    parser.add_argument("--unnorm-key", help="action statistics key (default <suite>_no_noops)")
    parser.add_argument("--max-prompt-length", type=int, default=128, help="prompt length (runner.max_prompt_length)")
    parser.add_argument("--keep-noops", action="store_true", help="keep LIBERO's no-op steps (OpenVLA dropped them)")
    parser.add_argument("--no-logits", action="store_true", help="only convert demos (ER); no model needed")
    parser.add_argument("--overwrite", action="store_true", help="recompute files that already exist")
    args = parser.parse_args(argv)
    if not args.no_logits and args.model_dir is None:
        parser.error("--model-dir is required (or pass --no-logits to only convert the demos)")
    if args.input and args.rlds:
        parser.error("--input and --rlds name two sources; pass one")
    if args.batch_size < 1 or args.first_demo < 0 or (args.demos_per_task is not None and args.demos_per_task < 1):
        parser.error("--batch-size and --demos-per-task must be >= 1, --first-demo >= 0")
    return args


def load_model(args: argparse.Namespace):
    """The base policy (eval mode) and its processor on the chosen device and dtype."""
    from vlacrl.models.openvla_oft import OpenVLAOFTProcessor, load_policy

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    precision = args.precision if args.precision != "auto" else ("bf16" if device.startswith("cuda") else "fp32")
    policy = load_policy(
        args.model_dir,
        dtype=PRECISIONS[precision],
        device=device,
        unnorm_key=args.unnorm_key or f"{args.suite}_no_noops",
    )
    processor = OpenVLAOFTProcessor.from_model_dir(args.model_dir, max_length=args.max_prompt_length)
    print(f"model {args.model_dir} on {device} ({precision})")
    return policy, processor


def source_tasks(args: argparse.Namespace):
    """The tasks to process: ``--input`` HDF5 files, else ``--rlds`` or the suite's RLDS release, else (a suite
    without a release) the HDF5 files of its demo folder."""
    rlds = None if args.input else (args.rlds or default_rlds_dir(args.suite))
    if rlds is not None:
        from vlacrl.data.rlds import iter_rlds_tasks, rlds_files

        rlds_files(rlds)  # a missing release fails here, before the model loads
        print(f"demos: RLDS release {rlds}")
        return iter_rlds_tasks(rlds, demos_per_task=args.demos_per_task, first_demo=args.first_demo)
    files = expand_inputs(args.input or [default_demo_dir(args.suite)])
    return iter_hdf5_tasks(
        files, demos_per_task=args.demos_per_task, first_demo=args.first_demo, filter_noops=not args.keep_noops
    )


def process_task(task: SourceTask, out_path: Path, model, args: argparse.Namespace) -> str:
    """Compute the logits of one task (unless --no-logits), write its file; returns a summary line."""
    demos = task.demos
    if model is not None:
        policy, processor = model
        with tqdm(total=task.num_steps, desc=task.instruction[:48], unit="step", file=sys.stdout) as bar:
            demos = [
                (name, compute_demo_logits(policy, processor, task.instruction, demo, batch_size=args.batch_size,
                                           progress=bar.update))
                for name, demo in demos
            ]  # fmt: skip
    write_cache_file(out_path, demos, instruction=task.instruction)
    line = f"wrote {out_path} ({len(demos)} demos, {sum(d.num_steps for _, d in demos)} steps)"
    if model is not None:
        stats = [base_model_bc_stats(demo, int(model[0].token_begin)) for _, demo in demos]
        count = sum(n for _, _, n in stats)
        if count:
            ce = sum(loss * n for loss, _, n in stats if n) / count
            acc = sum(a * n for _, a, n in stats if n) / count
            line += f"; base model BC cross-entropy {ce:.4f}, token accuracy {acc:.4f} over {count} chunks"
    return line


def run(args: argparse.Namespace) -> int:
    out_dir = args.output_dir or default_replay_dir(args.suite)
    tasks = source_tasks(args)  # a missing demo input fails here, before the model loads
    model = None if args.no_logits else load_model(args)
    written = 0
    for task in tasks:
        out_path = out_dir / cache_file_name(task.instruction)
        if out_path.exists() and not args.overwrite:
            print(f"skipped {out_path} (exists; --overwrite recomputes it)")
            continue
        if not task.demos:
            print(f"skipped {task.instruction!r} from {task.source}: no demos selected")
            continue
        print(process_task(task, out_path, model, args))
        written += 1
    print(f"done: {written} file(s) in {out_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return run(args)
    except (ReplayDataError, ModelDirError, OSError, KeyError, ValueError) as exc:
        message = " ".join(str(exc).split())
        print(f"error: {message}", file=sys.stderr)
        return 2
    except SafetensorError as exc:
        message = f"a weight file of {args.model_dir} is corrupted or truncated ({exc}); copy it again"
        print(f"error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
