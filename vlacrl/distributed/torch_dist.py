"""torch.distributed process groups for the actor ranks and FSDP2 sharding.

* ``init_process_group``: gloo on CPU, NCCL on GPU; rank 0's address/port come from the driver.
* ``shard``: ``fully_shard`` on every block (decoder layer, ViT block, projector, value head — chosen by
  class name), then on the root; bf16 mixed precision on GPU; optional CPU offload.
* ``full_state_dict``: unsharded CPU tensors (all or only trainable) for weight sync and checkpoints.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Iterable

import torch
import torch.distributed as dist
from torch import nn

logger = logging.getLogger(__name__)

# Module classes that become their own FSDP unit (one all-gather per block).
BLOCK_CLASS_NAMES = ("LlamaDecoderLayer", "Block", "FusedProjector", "PrismaticProjector", "ValueHead")


def free_port() -> int:
    """A TCP port that is free on this host right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("", 0))
        return int(sock.getsockname()[1])


def host_address() -> str:
    """This host's address as other Ray nodes reach it."""
    try:
        import ray

        return ray.util.get_node_ip_address()
    except Exception:  # noqa: BLE001 - no Ray: single host
        return "127.0.0.1"


def init_process_group(rank: int, world_size: int, master_addr: str, master_port: int, use_gpu: bool) -> None:
    """Join the actor process group (idempotent)."""
    if dist.is_initialized():
        return
    os.environ.update(MASTER_ADDR=master_addr, MASTER_PORT=str(master_port))
    backend = "nccl" if use_gpu else "gloo"
    if use_gpu:
        torch.cuda.set_device(0)  # Ray exposes exactly this worker's GPU as device 0
    dist.init_process_group(backend, rank=rank, world_size=world_size)
    logger.info("actor rank %d/%d joined the %s group at %s:%d", rank, world_size, backend, master_addr, master_port)


def shard(
    model: nn.Module, *, use_gpu: bool, cpu_offload: bool = False, block_names: Iterable[str] = BLOCK_CLASS_NAMES
):
    """Apply FSDP2 ``fully_shard`` per block and at the root; returns the (same, now sharded) model."""
    from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, fully_shard

    kwargs = {}
    if use_gpu:
        kwargs["mp_policy"] = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    if cpu_offload:
        kwargs["offload_policy"] = CPUOffloadPolicy()
    names = set(block_names)
    blocks = [m for m in model.modules() if type(m).__name__ in names and m is not model]
    for block in blocks:
        fully_shard(block, **kwargs)
    fully_shard(model, **kwargs)
    logger.info("FSDP2: %d blocks sharded (+ root)", len(blocks))
    return model


def full_state_dict(model: nn.Module, trainable_only: bool = True) -> dict[str, torch.Tensor]:
    """Unsharded CPU copy of the model's (trainable) parameters; collective: every rank must call it."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    names = {n for n, p in model.named_parameters() if p.requires_grad} if trainable_only else None
    if dist.is_initialized():
        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        state = get_model_state_dict(model, options=options)
    else:
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if names is not None:
        state = {k: v for k, v in state.items() if k in names}
    # On CPU (no device → host transfer, and with one rank no all-gather) the tensors can still be the
    # model's own storage; clone those so that later optimizer steps do not change the returned copy.
    live = {_storage_ptr(t) for t in (*model.parameters(), *model.buffers())}
    return {k: v.clone() if _storage_ptr(v) in live else v for k, v in state.items()}


def _storage_ptr(tensor: torch.Tensor) -> int:
    local = tensor.to_local() if hasattr(tensor, "to_local") else tensor  # DTensor → this rank's shard
    return local.untyped_storage().data_ptr()
