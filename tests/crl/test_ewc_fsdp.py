"""EWC under FSDP2: the Fisher, the penalty and its gradients with 2 gloo ranks equal those with 1 rank and
those without FSDP.

A small peft-wrapped module (a ``Block`` — an FSDP unit of its own — with two LoRA linears, plus a LoRA head
on the root, whose parameters stay unsharded between forward and backward) runs the actor's hook sequence
for two mini-batches of the stage's last step: forward → ``extra_losses`` → backward → ``after_backward`` →
SGD step → ``after_optimizer_step``; then ``finish_task``. With 2 ranks each rank gets half of every
mini-batch (one micro-batch per rank), so FSDP's averaged gradient is the 1-rank gradient. LoRA rank 3 makes
the ``lora_A`` rows split unevenly (2 + 1). The ranks run in spawned processes, so the test process never
joins a process group.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from vlacrl.distributed.torch_dist import free_port

LAMBDA = 10.0
MINIBATCHES, ROWS = 2, 4  # rows per mini-batch (all ranks together)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(6, 5), nn.Linear(5, 3)

    def forward(self, x):
        return torch.tanh(self.fc2(torch.tanh(self.fc1(x))))


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.block, self.head = Block(), nn.Linear(3, 2)

    def forward(self, x):
        return self.head(self.block(x))


def _model():
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    config = LoraConfig(r=3, lora_alpha=3, target_modules=["fc1", "fc2", "head"], init_lora_weights="gaussian")
    return get_peft_model(Toy(), config)


def _perturb(model, seed: int, scale: float) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora" in name:
                param.add_(scale * torch.randn(param.shape, generator=generator))


def _previous_fisher(path: Path) -> None:
    generator = torch.Generator().manual_seed(1)
    fisher = {n: torch.rand(p.shape, generator=generator) for n, p in _model().named_parameters() if "lora" in n}
    fisher["base_model.model.block.fc2.lora_B.default.weight"][0, 0] = float("nan")  # cleaned to 1e4 on load
    torch.save({"fisher_dict": fisher}, path)


def _run(rank: int, world: int, port: int, job: dict) -> None:
    """world 0: no process group, no FSDP; else FSDP2 over ``world`` gloo ranks."""
    import torch.distributed as dist

    from vlacrl.crl.registry import build_method
    from vlacrl.distributed import torch_dist

    model = _model()
    _perturb(model, seed=2, scale=0.5)  # non-zero B: every LoRA tensor gets gradients
    method = build_method({"crl": {"method": "ewc", "ewc_lambda": LAMBDA, "previous_fisher_path": job["fisher"]}})
    method.setup_actor(model)  # anchor θ* = the weights now
    anchor = {n: p.detach().clone() for n, p in model.named_parameters() if "lora" in n}
    _perturb(model, seed=3, scale=0.1)  # θ ≠ θ*: a non-zero penalty
    if world:
        torch_dist.init_process_group(rank, world, "127.0.0.1", port, use_gpu=False)
        torch_dist.shard(model.get_base_model(), use_gpu=False, block_names=("Block",))
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    data = torch.randn(MINIBATCHES, ROWS, 6, generator=torch.Generator().manual_seed(4))
    share = ROWS // max(world, 1)
    penalties, grads = [], []
    for mini in range(MINIBATCHES):
        optimizer.zero_grad(set_to_none=True)
        x = data[mini, rank * share : (rank + 1) * share]
        out = model(x)
        kinds = {type(p).__name__ for n, p in model.named_parameters() if "lora" in n}
        penalty = method.extra_losses(model, {}, None)["ewc"]
        (out.square().mean() + penalty).backward()
        method.after_backward(model, is_last_step=True)
        grads.append({n: method_full(p.grad) for n, p in model.named_parameters() if "lora" in n})
        penalties.append(float(penalty.detach()))
        optimizer.step()
        method.after_optimizer_step(model, is_last_step=True)
    out_dir = Path(job["out"]) / f"world{world}"
    record = method.finish_task(model, out_dir, is_rank0=rank == 0)
    result = {"penalties": penalties, "grads": grads, "record": record, "anchor": anchor,
              "dtensor": [type(p).__name__ for p in model.parameters()], "kinds_in_loss": kinds}  # fmt: skip
    torch.save(result, Path(job["out"]) / f"world{world}_rank{rank}.pt")
    if world:
        dist.destroy_process_group()


def method_full(tensor):
    from vlacrl.crl.ewc import full_tensor

    return full_tensor(tensor).detach().clone()


def _spawn(world: int, job: dict) -> list[dict]:
    import torch.multiprocessing as mp

    mp.spawn(_run, args=(world, free_port(), job), nprocs=world, join=True)
    return [torch.load(Path(job["out"]) / f"world{world}_rank{r}.pt", weights_only=False) for r in range(world)]


def test_fisher_and_penalty_match_across_1_and_2_fsdp_ranks(tmp_path):
    from vlacrl.crl.ewc import ewc_penalty, load_fisher

    job = {"fisher": str(tmp_path / "prev_ewc_data.pt"), "out": str(tmp_path)}
    _previous_fisher(Path(job["fisher"]))
    _run(0, 0, 0, job)
    plain = torch.load(tmp_path / "world0_rank0.pt", weights_only=False)
    one, two = _spawn(1, job), _spawn(2, job)
    assert all(kind == "DTensor" for r in (*one, *two) for kind in r["dtensor"])
    # between forward and backward the block's LoRA tensors are shards, the root's (head) are unsharded
    assert all(r["kinds_in_loss"] == {"DTensor", "Parameter"} for r in (*one, *two))

    # the penalty value of the first mini-batch is λ Σ F (θ − θ*)² of the known perturbation
    previous = load_fisher(job["fisher"])
    model = _model()
    _perturb(model, seed=2, scale=0.5)
    _perturb(model, seed=3, scale=0.1)
    params = {n: p.detach() for n, p in model.named_parameters() if "lora" in n}
    expected = float(ewc_penalty(params, previous, plain["anchor"], LAMBDA))
    assert expected > 1.0 and plain["penalties"][0] == pytest.approx(expected, rel=1e-6)

    fisher = {w: torch.load(tmp_path / f"world{w}" / "ewc_data.pt")["fisher_dict"] for w in (0, 1, 2)}
    assert set(fisher[0]) == set(previous) and all(float(f.max()) > 0 for f in fisher[0].values())
    for results in (one, two):
        for rank_result in results:  # every rank: same values, same record
            assert rank_result["penalties"] == pytest.approx(plain["penalties"], rel=1e-5)
            assert rank_result["record"]["fisher_path"].endswith("ewc_data.pt")
            for mini in range(MINIBATCHES):
                for name, grad in plain["grads"][mini].items():
                    torch.testing.assert_close(rank_result["grads"][mini][name], grad, rtol=1e-5, atol=1e-6)
    for world in (1, 2):
        assert set(fisher[world]) == set(fisher[0])
        for name, value in fisher[0].items():
            torch.testing.assert_close(fisher[world][name], value, rtol=1e-5, atol=1e-6, msg=name)
