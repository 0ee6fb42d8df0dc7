"""Ray cluster, placement of the worker groups, torch.distributed and FSDP2."""
