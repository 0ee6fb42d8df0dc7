"""The files of a saved PEFT adapter as the actor writes them: adapter + optional value head (which a fully
fine-tuned model's directory carries too).

``actor/`` of a checkpoint (and every stage's adapter dir): ``adapter_config.json``,
``adapter_model.safetensors`` and, for models with a value head (PPO), ``value_head.safetensors``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from vlacrl.models.lora import base_module

VALUE_HEAD_FILE = "value_head.safetensors"


def write_adapter(peft_model, full_state: dict[str, torch.Tensor], out_dir: Path) -> None:
    """Write a PEFT adapter dir from an unsharded state dict of the PEFT model (rank 0 only)."""
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    adapter = get_peft_model_state_dict(peft_model, state_dict=full_state, save_embedding_layers=False)
    save_file({k: v.contiguous() for k, v in adapter.items()}, str(out_dir / "adapter_model.safetensors"))
    peft_model.peft_config["default"].save_pretrained(str(out_dir))
    write_value_head(full_state, out_dir)


def write_value_head(full_state: dict[str, torch.Tensor], out_dir: Path) -> None:
    """``value_head.safetensors`` from the ``value_head.*`` tensors of ``full_state`` (none: no file)."""
    from safetensors.torch import save_file

    head = {k.split("value_head.", 1)[1]: v.contiguous() for k, v in full_state.items() if "value_head." in k}
    if head:
        out_dir.mkdir(parents=True, exist_ok=True)
        save_file(head, str(out_dir / VALUE_HEAD_FILE))


def load_value_head(model: torch.nn.Module, adapter_dir: Path) -> bool:
    """Copy saved value-head weights into ``model`` (full tensors); False when none were saved."""
    from safetensors.torch import load_file

    path = adapter_dir / VALUE_HEAD_FILE
    head = getattr(base_module(model), "value_head", None)
    if head is None or not path.exists():
        return False
    head.load_state_dict(load_file(str(path)))
    return True
