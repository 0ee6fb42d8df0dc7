"""The actor's clip-and-step rule (``ActorWorker._clip_and_step``) on plain parameters and a real AdamW."""

from types import SimpleNamespace

import pytest
import torch

from vlacrl.workers.actor_worker import ActorWorker


def make_actor(skip_zero: bool, own_clip: bool):
    policy, critic = torch.nn.Parameter(torch.zeros(4)), torch.nn.Parameter(torch.zeros(4))
    optimizer = torch.optim.AdamW([
        {"params": [policy], "lr": 0.1, "name": "policy"},
        {"params": [critic], "lr": 0.1, "name": "crl_vla_critic", "own_clip": own_clip},
    ], weight_decay=0.0)  # fmt: skip
    cfg = {"actor": {"optim": {"clip_grad": 1.0, "skip_zero_grad_steps": skip_zero}}}
    return SimpleNamespace(cfg=cfg, optimizer=optimizer), policy, critic


def step(actor, policy_grad: float, critic_grad: float) -> float:
    actor.optimizer.param_groups[0]["params"][0].grad = torch.full((4,), policy_grad)
    actor.optimizer.param_groups[1]["params"][0].grad = torch.full((4,), critic_grad)
    return ActorWorker._clip_and_step(actor)


def test_own_clip_group_does_not_shrink_the_policy_gradient():
    joint, policy_joint, critic_joint = make_actor(skip_zero=False, own_clip=False)
    alone, policy_alone, critic_alone = make_actor(skip_zero=False, own_clip=True)
    total = (4 * 0.01**2 + 4 * 100.0**2) ** 0.5
    assert step(joint, 0.01, 100.0) == pytest.approx(total)
    assert step(alone, 0.01, 100.0) == pytest.approx(0.02)  # the norm reported is the jointly clipped groups'
    assert torch.allclose(policy_joint.grad, torch.full((4,), 0.01 / total))  # the critic shrank it 10^4-fold
    assert torch.allclose(policy_alone.grad, torch.full((4,), 0.01))  # under the clip norm: untouched
    assert torch.allclose(critic_alone.grad, torch.full((4,), 0.5))  # clipped alone to norm 1
    assert torch.all(policy_alone < 0) and torch.all(critic_alone < 0)


@pytest.mark.parametrize("skip_zero", [False, True])
def test_zero_gradient_group_is_not_stepped_when_asked(skip_zero):
    actor, policy, critic = make_actor(skip_zero=skip_zero, own_clip=True)
    step(actor, 0.01, 1.0)
    before = policy.detach().clone(), critic.detach().clone()
    step(actor, 0.0, 1.0)  # every sample filtered: only the critic has a gradient
    assert torch.equal(policy, before[0]) == skip_zero  # without the skip, momentum moves the policy
    assert not torch.equal(critic, before[1])
    before = policy.detach().clone(), critic.detach().clone()
    assert step(actor, 0.0, 0.0) == 0.0
    assert torch.equal(critic, before[1]) == skip_zero and torch.equal(policy, before[0]) == skip_zero
