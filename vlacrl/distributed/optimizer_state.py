"""The actor's AdamW state on disk: sharded with ``torch.distributed.checkpoint`` (one file per rank + a
``.metadata`` index), collective over the actor ranks."""

from __future__ import annotations

from pathlib import Path

import torch


def save_optimizer(model: torch.nn.Module, optimizer: torch.optim.Optimizer, out_dir: Path) -> None:
    """Sharded AdamW state with torch.distributed.checkpoint (collective over the actor ranks)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    dcp.save({"optim": get_optimizer_state_dict(model, optimizer)}, checkpoint_id=str(out_dir))


def load_optimizer(model: torch.nn.Module, optimizer: torch.optim.Optimizer, ckpt_dir: Path) -> None:
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import (
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
