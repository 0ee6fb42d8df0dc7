"""Checkpoints: ``<log_path>/checkpoints/global_step_<N>/`` written atomically.

Layout of one checkpoint (N = 1-based global step, as the reference)::

    global_step_N/
      actor/                        PEFT adapter dir: adapter_config.json + adapter_model.safetensors
        value_head.safetensors      value-head weights (when the model has one)
        optim/                      AdamW state, torch.distributed.checkpoint (sharded, one file per rank)
      trainer_state.json            global step, env reset-state samplers, rollout RNG states
      COMPLETE                      written last; a directory without it is ignored

Everything is written into ``global_step_N.tmp-<pid>/`` and renamed at the end, so an interrupted
save leaves the previous checkpoint as the latest loadable one.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path
from typing import Any

import torch

logger = logging.getLogger(__name__)

COMPLETE = "COMPLETE"
STEP_DIR = re.compile(r"^global_step_(\d+)$")


def checkpoint_root(log_path: str | Path) -> Path:
    return Path(log_path) / "checkpoints"


def step_dir(log_path: str | Path, step: int) -> Path:
    return checkpoint_root(log_path) / f"global_step_{step}"


def temp_dir(log_path: str | Path, step: int, token: str) -> Path:
    return checkpoint_root(log_path) / f"global_step_{step}.tmp-{token}"


def latest_checkpoint(log_path: str | Path) -> Path | None:
    """The complete checkpoint with the highest step under ``log_path``, or None."""
    root = checkpoint_root(log_path)
    if not root.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := STEP_DIR.match(p.name)) and (p / COMPLETE).exists()]
    return max(found)[1] if found else None


def write_adapter(peft_model, full_state: dict[str, torch.Tensor], out_dir: Path) -> None:
    """Write a PEFT adapter dir from an unsharded state dict of the PEFT model (rank 0 only)."""
    from peft.utils import get_peft_model_state_dict  # noqa: PLC0415
    from safetensors.torch import save_file  # noqa: PLC0415

    out_dir.mkdir(parents=True, exist_ok=True)
    adapter = get_peft_model_state_dict(peft_model, state_dict=full_state, save_embedding_layers=False)
    save_file({k: v.contiguous() for k, v in adapter.items()}, str(out_dir / "adapter_model.safetensors"))
    peft_model.peft_config["default"].save_pretrained(str(out_dir))
    head = {k.split("value_head.", 1)[1]: v.contiguous() for k, v in full_state.items() if "value_head." in k}
    if head:
        save_file(head, str(out_dir / "value_head.safetensors"))


def save_optimizer(model: torch.nn.Module, optimizer: torch.optim.Optimizer, out_dir: Path) -> None:
    """Sharded AdamW state with torch.distributed.checkpoint (collective over the actor ranks)."""
    import torch.distributed.checkpoint as dcp  # noqa: PLC0415
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict  # noqa: PLC0415

    dcp.save({"optim": get_optimizer_state_dict(model, optimizer)}, checkpoint_id=str(out_dir))


def load_optimizer(model: torch.nn.Module, optimizer: torch.optim.Optimizer, ckpt_dir: Path) -> None:
    import torch.distributed.checkpoint as dcp  # noqa: PLC0415
    from torch.distributed.checkpoint.state_dict import (  # noqa: PLC0415
        get_optimizer_state_dict,
        set_optimizer_state_dict,
    )

    state = {"optim": get_optimizer_state_dict(model, optimizer)}
    # Parameters that never received a gradient (LoRA on the unused last ViT block, SigLIP's attention
    # pool) have no saved AdamW state; loading gives them an initialised one, removed again below so the
    # optimizer looks exactly as in an uninterrupted run.
    planner = dcp.DefaultLoadPlanner(allow_partial_load=True)
    dcp.load(state, checkpoint_id=str(ckpt_dir), planner=planner)
    set_optimizer_state_dict(model, optimizer, optim_state_dict=state["optim"])
    saved = dcp.FileSystemReader(str(ckpt_dir)).read_metadata().state_dict_metadata
    for name, param in model.named_parameters():
        if param in optimizer.state and f"optim.state.{name}.step" not in saved:
            del optimizer.state[param]


def load_value_head(model: torch.nn.Module, adapter_dir: Path) -> bool:
    """Copy saved value-head weights into ``model`` (full tensors); False when none were saved."""
    from safetensors.torch import load_file  # noqa: PLC0415

    path = adapter_dir / "value_head.safetensors"
    from vlacrl.models.lora import base_module  # noqa: PLC0415

    head = getattr(base_module(model), "value_head", None)
    if head is None or not path.exists():
        return False
    head.load_state_dict(load_file(str(path)))
    return True


def finalize(tmp: Path, final: Path, trainer_state: dict[str, Any]) -> Path:
    """Write the trainer state and the completion marker, then rename ``tmp`` → ``final``."""
    (tmp / "trainer_state.json").write_text(json.dumps(trainer_state, indent=2))
    (tmp / COMPLETE).write_text("ok\n")
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    logger.info("checkpoint written: %s", final)
    return final


def read_trainer_state(ckpt: Path) -> dict[str, Any]:
    return json.loads((ckpt / "trainer_state.json").read_text())
