"""Goal-conditioned value heads (GCVF) of CRL-VLA and the features they read from the policy.

Critic input (one row per observation, i.e. per action chunk):

* state feature ``h(s)`` [B, H]: the backbone's last-layer (post-norm) hidden state at the prompt's final
  token — row 0 of the 56 action positions, the same vector the policy's own value head reads (``vh_mode
  a0``). It carries gradient into the backbone (LoRA).
* goal embedding ``e(g)`` [B, H] [INF]: the mean of the LLM's **input embeddings** (``embed_tokens``) over
  the attended prompt tokens, BOS and the final token 29871 left out. The prompt template
  ("In: What action should the robot take to …?\\nOut:") is the same for every task, so ``e(g)`` differs
  between tasks only through the instruction words. The embedding table is frozen (not a LoRA target),
  so ``e(g)`` is detached.
* action encoding ``a`` [B, C·D] (Q variant only) [INF]: the chunk's 56 action tokens mapped to their
  normalised continuous values (bin centres in [-1, 1], :func:`tokens_to_normalized_actions`).

Both features are captured by :class:`FeatureTap` during the policy's ordinary forward (hooks on
``language_model.model.embed_tokens`` and ``language_model.lm_head``), so no second forward and no
change of the policy file are needed, and under FSDP2 nothing is read outside the root module's forward.

Critic: ``MLP([h; e(g) (; a)]) → hidden → hidden → 1`` with GELU (:class:`GoalConditionedCritic`);
:class:`GCVFCritics` holds the trainable Monte-Carlo head ``mc`` and the frozen copy ``frozen``.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from vlacrl.models.families import ActionVocabulary
from vlacrl.models.openvla_oft.policy import BOS_TOKEN_ID, PROMPT_END_TOKEN_ID

CRITIC_KINDS = ("v", "q")
CRITICS_ATTR = "crl_vla_critics"  # attribute of the policy holding the GCVFCritics module


class GoalConditionedCritic(nn.Module):
    """``[h; e(g) (; a)]`` → Linear → GELU → Linear → GELU → Linear(1): values [B] (float, the critic's dtype).

    Init as the policy's value head: Kaiming-normal (fan_out, ReLU gain) with zero bias for the hidden
    layers, Normal(0, 0.02) and no bias for the output layer (values start near 0).
    """

    def __init__(self, state_dim: int, goal_dim: int, action_dim: int = 0, hidden: int = 1024):
        super().__init__()
        self.state_dim, self.goal_dim, self.action_dim = int(state_dim), int(goal_dim), int(action_dim)
        self.fc1 = nn.Linear(self.state_dim + self.goal_dim + self.action_dim, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, 1, bias=False)
        self.act = nn.GELU()
        self.reset_parameters()

    @property
    def is_q(self) -> bool:
        return self.action_dim > 0

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Re-draw the weights (optionally from ``generator``, for a reproducible fresh critic)."""
        with torch.no_grad():
            for layer in (self.fc1, self.fc2):
                std = (2.0 / layer.weight.shape[0]) ** 0.5  # kaiming normal, fan_out, ReLU gain
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * std)
                layer.bias.zero_()
            self.out.weight.copy_(torch.randn(self.out.weight.shape, generator=generator) * 0.02)

    def forward(self, state: torch.Tensor, goal: torch.Tensor, action: torch.Tensor | None = None) -> torch.Tensor:
        """state [B, H], goal [B, H_g], action [B, A] (Q only) → values [B]."""
        parts = [state, goal]
        if self.is_q:
            if action is None:
                raise ValueError("a Q critic needs the action encoding")
            parts.append(action)
        x = torch.cat([p.to(self.fc1.weight.dtype) for p in parts], dim=-1)
        values = self.out(self.act(self.fc2(self.act(self.fc1(x)))))  # [B, 1]
        return values.sum(dim=-1)  # [B] as a new tensor, not a view (FSDP2 warns on view outputs)


class GCVFCritics(nn.Module):
    """The dual critic: trainable ``mc`` (fits Monte-Carlo returns) and ``frozen`` (its copy at the last boundary).

    ``frozen`` never requires gradients; :meth:`copy_mc_to_frozen` copies ``mc`` exactly (works on plain
    tensors and on FSDP2 DTensors of the same placement).
    """

    def __init__(self, state_dim: int, goal_dim: int, action_dim: int = 0, hidden: int = 1024):
        super().__init__()
        self.mc = GoalConditionedCritic(state_dim, goal_dim, action_dim, hidden)
        self.frozen = copy.deepcopy(self.mc)
        self.frozen.requires_grad_(False)

    @property
    def is_q(self) -> bool:
        return self.mc.is_q

    @torch.no_grad()
    def copy_mc_to_frozen(self) -> None:
        for target, source in zip(self.frozen.parameters(), self.mc.parameters()):
            target.copy_(source.detach())

    def reset_mc(self, seed: int) -> None:
        """A fresh MC critic (seeded; same weights on every rank)."""
        self.mc.reset_parameters(torch.Generator().manual_seed(int(seed)))


def build_critics(kind: str, hidden_size: int, num_action_tokens: int, hidden: int = 1024) -> GCVFCritics:
    """``kind`` ``v`` → V(s, g); ``q`` → Q(s, a, g) with a = the C·D normalised actions of the chunk."""
    if kind not in CRITIC_KINDS:
        raise ValueError(f"crl.critic must be one of {CRITIC_KINDS}, got {kind!r}")
    action_dim = int(num_action_tokens) if kind == "q" else 0
    return GCVFCritics(hidden_size, hidden_size, action_dim, hidden)


# ------------------------------------------------------------------------------------------------ features
def instruction_mask(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """[B, L] bool: attended prompt tokens without BOS (position 0) and the final token 29871."""
    mask = attention_mask.bool().clone()
    mask[:, 0] = False
    mask &= input_ids != PROMPT_END_TOKEN_ID
    return mask


def masked_mean(embeds: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """embeds [B, L, H], mask [B, L] bool → mean over the masked positions [B, H] (float32)."""
    weights = mask.to(torch.float32).unsqueeze(-1)
    total = (embeds.float() * weights).sum(dim=1)
    return total / weights.sum(dim=1).clamp(min=1.0)


def tokens_to_normalized_actions(tokens: torch.Tensor, vocabulary: ActionVocabulary) -> torch.Tensor:
    """Action token ids [B, C, D] or [B, C·D] → normalised actions [B, C·D] in [-1, 1] (float32, same device).

    The bin centre of each token, as :meth:`ActionTokenizer.tokens_to_normalized` (k = end − t − 1 clamped to
    [0, n_bins − 2], centre_k = the midpoint of linspace(-1, 1, n_bins) bins k and k + 1; ``end`` and ``n_bins``
    from the policy family's ``vocabulary``).
    """
    vocab_size, n_bins = vocabulary.token_end, vocabulary.num_bins
    bins = torch.linspace(-1.0, 1.0, n_bins, dtype=torch.float64, device=tokens.device)
    centers = ((bins[:-1] + bins[1:]) / 2.0).float()
    k = (vocab_size - tokens.long() - 1).clamp(0, n_bins - 2)
    return centers[k].reshape(tokens.shape[0], -1)


class FeatureTap:
    """Captures the critic inputs during every forward of an OpenVLA(-OFT) policy.

    * the embedding of the prompt (the ``embed_tokens`` call whose ids start with BOS: [B, L + 56, H] for
      OpenVLA-OFT, [B, L, H] for OpenVLA, whose generated tokens are embedded by later calls) →
      :meth:`goal_embedding` (prompt part, masked mean, detached);
    * the first ``lm_head`` input after it ([B, 56, H] for OpenVLA-OFT; OpenVLA: [B, 7, H] teacher-forced, or the
      prompt's last state [B, H] while generating) → :meth:`state_feature` (row 0: the prompt's final position).

    The rows are those of the last forward (RL micro-batch and replay half concatenated, in that order).
    """

    def __init__(self, policy: nn.Module):
        lm = policy.language_model
        self._handles = [
            lm.get_input_embeddings().register_forward_hook(self._on_embed),
            lm.lm_head.register_forward_hook(self._on_head),
        ]
        self.embeds: torch.Tensor | None = None
        self.action_hidden: torch.Tensor | None = None
        self._awaiting_head = False

    def _on_embed(self, module, inputs, output) -> None:
        ids = inputs[0]
        if ids.ndim == 2 and bool((ids[:, 0] == BOS_TOKEN_ID).all()):  # the prompt, not generated tokens
            self.embeds = output.detach()
            self._awaiting_head = True

    def _on_head(self, module, inputs, output) -> None:
        if self._awaiting_head:
            hidden = inputs[0]
            self.action_hidden = hidden if hidden.ndim == 3 else hidden.unsqueeze(1)
            self._awaiting_head = False

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def state_feature(self, rows: slice = slice(None)) -> torch.Tensor:
        """h(s) [B, H] of the last forward (with gradient), rows ``rows``."""
        if self.action_hidden is None:
            raise RuntimeError("FeatureTap: no forward has run since the tap was installed")
        return self.action_hidden[rows, 0]

    def goal_embedding(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, rows: slice = slice(None)):
        """e(g) [B, H] (float32, detached) of the last forward's rows ``rows``; ids/mask [B, L] of those rows."""
        if self.embeds is None:
            raise RuntimeError("FeatureTap: no forward has run since the tap was installed")
        prompt = self.embeds[rows, : input_ids.shape[1]]
        mask = instruction_mask(input_ids.to(prompt.device), attention_mask.to(prompt.device))
        return masked_mean(prompt, mask)
