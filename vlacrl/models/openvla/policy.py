"""OpenVLA (autoregressive) as an RL policy: 7 action tokens generated one after another with a KV cache.

The network is OpenVLA-OFT's (fused DINOv2 + SigLIP, projector, Llama-2, the same checkpoint keys), but the
Llama attends causally and an action is decoded token by token, as the released OpenVLA checkpoints were trained:
one action of ``action_dim`` = 7 tokens per env step (chunk length 1).

Sequence, for a prompt of L tokens ``[BOS, PAD…, prompt…, 29871]``: the prefix
``[emb(BOS), 256 patch embeddings, emb(tokens 1..L-1)]`` (S₀ = L + 256 positions), then the generated tokens.
Token j (j = 0..6) is drawn from the logits at position S₀ − 1 + j, under the same masked, tempered distribution as
OpenVLA-OFT's (:mod:`vlacrl.models.openvla_oft.sampling`: only the 256 action ids, divided by the temperature);
``position_ids = cumsum(mask) − 1`` as in the prefix. Training scores the tokens the rollout drew with one
teacher-forced forward over ``prefix + tokens[:-1]``: with causal attention its 7 rows are the conditionals the
rollout sampled from. The value head reads the hidden state at S₀ − 1 (the prompt's last token, before any action
token), the OFT policy's ``a0`` position.
"""

from __future__ import annotations

import inspect

import torch
from transformers import DynamicCache

from vlacrl.models.openvla_oft import sampling
from vlacrl.models.openvla_oft.config import OpenVLAOFTConfig
from vlacrl.models.openvla_oft.llm import set_causal
from vlacrl.models.openvla_oft.policy import ActionPrediction, OpenVLAOFTPolicy, PolicyOutput


class OpenVLAPolicy(OpenVLAOFTPolicy):
    """OpenVLA-OFT's network with causal attention and token-by-token decoding (one action per step)."""

    decodes_in_parallel = False

    def __init__(self, config: OpenVLAOFTConfig, *, action_dim: int = 7, num_action_chunks: int = 1, **kwargs):
        if int(num_action_chunks) != 1:
            raise ValueError(f"OpenVLA decodes one action per step (num_action_chunks 1), got {num_action_chunks}")
        super().__init__(config, action_dim=action_dim, num_action_chunks=1, **kwargs)
        set_causal(self.language_model, True)

    def sequence_length(self, prompt_length: int) -> int:
        """Positions of the teacher-forced training forward: prefix + the first D − 1 action tokens."""
        return prompt_length + self.vision_backbone.num_patches + self.num_action_tokens - 1

    # ------------------------------------------------------------------ sequence pieces
    def build_prefix(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, pixel_values: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``inputs_embeds`` [B, S₀, H] and mask [B, S₀] (long) of ``[BOS, patches, prompt tokens 1..L-1]``."""
        self.check_inputs(input_ids, attention_mask)
        embeds = self.language_model.get_input_embeddings()(input_ids)
        patches = self.embed_images(pixel_values).to(embeds.dtype)
        mask = attention_mask.long()
        embeds = torch.cat([embeds[:, :1], patches, embeds[:, 1:]], dim=1)
        mask = torch.cat([mask[:, :1], mask.new_ones(patches.shape[:2]), mask[:, 1:]], dim=1)
        return embeds, mask

    def _append_tokens(
        self, embeds: torch.Tensor, mask: torch.Tensor, tokens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Prefix + ``tokens`` [B, n] (embedded, mask 1)."""
        token_embeds = self.language_model.get_input_embeddings()(tokens).to(embeds.dtype)
        return torch.cat([embeds, token_embeds], dim=1), torch.cat([mask, torch.ones_like(tokens, dtype=mask.dtype)], 1)

    def _hidden(self, embeds: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        position_ids = mask.cumsum(dim=1) - 1
        out = self.language_model.model(inputs_embeds=embeds, attention_mask=mask, position_ids=position_ids)
        return out.last_hidden_state

    # ------------------------------------------------------------------ training view
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        pixel_values: torch.Tensor,
        action_tokens: torch.Tensor | None = None,
    ) -> PolicyOutput:
        """Teacher-forced forward: ``logits`` [B, D, V] of every action token given the ones before it
        (``action_tokens`` [B, D] or [B, 1, D]; without them only row 0 exists), ``hidden_states`` [B, D, H],
        ``values`` from row 0 when a value head exists."""
        embeds, mask = self.build_prefix(input_ids, attention_mask, pixel_values)
        n_rows = 1
        if action_tokens is not None:
            tokens = action_tokens.reshape(action_tokens.shape[0], -1).long()
            embeds, mask = self._append_tokens(embeds, mask, tokens[:, :-1])
            n_rows = tokens.shape[1]
        hidden = self._hidden(embeds, mask)
        action_hidden = hidden[:, hidden.shape[1] - n_rows :].clone()  # a copy: FSDP2 and in-place ops
        logits = self.language_model.lm_head(action_hidden)
        values = self.value_head(action_hidden[:, 0]) if self.value_head is not None else None
        return PolicyOutput(logits=logits, hidden_states=action_hidden, values=values)

    def sequence_hidden_states(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, pixel_values: torch.Tensor
    ) -> torch.Tensor:
        """Last-layer (post-norm) hidden states of the prefix [B, S₀, H]."""
        return self._hidden(*self.build_prefix(input_ids, attention_mask, pixel_values))

    # ------------------------------------------------------------------ rollout view
    @torch.no_grad()
    def predict_action_batch(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        pixel_values: torch.Tensor,
        *,
        temperature: float = 1.6,
        top_k: int | None = None,
        greedy: bool = False,
        generator: torch.Generator | None = None,
        use_cache: bool = True,
    ) -> ActionPrediction:
        """Generate D = 7 tokens one at a time (KV cache unless ``use_cache=False``, which re-runs the whole
        sequence per token: the same tokens, for tests) and decode them to one env-scale action [B, 1, D]."""
        embeds, mask = self.build_prefix(input_ids, attention_mask, pixel_values)
        steps = _CachedSteps(self, embeds, mask) if use_cache else _UncachedSteps(self, embeds, mask)
        hidden = steps.first()
        values = self.value_head(hidden) if self.value_head is not None else None
        tokens, logprobs, logits = [], [], []
        for j in range(self.action_dim):
            raw = self.language_model.lm_head(hidden)[:, None]  # [B, 1, V]
            drawn = sampling.sample_tokens(
                raw, self.token_begin, self.config.tokenizer_vocab_size,
                temperature=temperature, top_k=top_k, greedy=greedy, generator=generator,
            )  # fmt: skip
            tokens.append(drawn.tokens)
            logprobs.append(drawn.logprobs)
            logits.append(drawn.logits)
            if j + 1 < self.action_dim:
                hidden = steps.next(drawn.tokens)
        action_tokens = torch.cat(tokens, dim=1).reshape(-1, 1, self.action_dim)
        actions = self.action_tokenizer.decode(action_tokens)
        return ActionPrediction(actions, action_tokens, torch.cat(logprobs, 1), torch.cat(logits, 1), values)


class _CachedSteps:
    """Decoding with a KV cache: the prefix once, then one position per generated token."""

    def __init__(self, policy: OpenVLAPolicy, embeds: torch.Tensor, mask: torch.Tensor):
        self.policy, self.embeds, self.mask = policy, embeds, mask
        self.backbone = policy.language_model.model
        self.cache_argument = {_cache_keyword(self.backbone): DynamicCache()}  # looked up once per call

    def _run(self, embeds: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
        out = self.backbone(
            inputs_embeds=embeds, attention_mask=self.mask, position_ids=position_ids, use_cache=True,
            **self.cache_argument,
        )  # fmt: skip
        return out.last_hidden_state[:, -1]

    def first(self) -> torch.Tensor:
        """Hidden state [B, H] at the prefix's last position."""
        positions = self.mask.cumsum(dim=1) - 1
        self.position = positions[:, -1:]
        return self._run(self.embeds, positions)

    def next(self, token: torch.Tensor) -> torch.Tensor:
        """Feed ``token`` [B, 1]; the hidden state [B, H] at its position."""
        self.mask = torch.cat([self.mask, torch.ones_like(token, dtype=self.mask.dtype)], dim=1)
        self.position = self.position + 1
        return self._run(self.policy.language_model.get_input_embeddings()(token), self.position)


def _cache_keyword(backbone: torch.nn.Module) -> str:
    """``cache`` (transformers ≥ 5.2x) or ``past_key_values`` (older releases, e.g. on a GPU machine's image)."""
    return "cache" if "cache" in inspect.signature(backbone.forward).parameters else "past_key_values"


class _UncachedSteps:
    """Decoding without a cache: the whole sequence again for every token (reference for the cached path)."""

    def __init__(self, policy: OpenVLAPolicy, embeds: torch.Tensor, mask: torch.Tensor):
        self.policy, self.embeds, self.mask = policy, embeds, mask

    def first(self) -> torch.Tensor:
        return self.policy._hidden(self.embeds, self.mask)[:, -1]

    def next(self, token: torch.Tensor) -> torch.Tensor:
        self.embeds, self.mask = self.policy._append_tokens(self.embeds, self.mask, token)
        return self.first()
