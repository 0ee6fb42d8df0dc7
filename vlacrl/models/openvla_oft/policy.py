"""OpenVLA-OFT as an RL policy: 56 action tokens decoded in parallel from one bidirectional forward.

Sequence (docs/models.md), for a prompt of L = 128 tokens ``[BOS, PAD…, prompt…, 29871]``:
``[emb(BOS), 256 patch embeddings, emb(tokens 1..L-1), 56 zero embeddings]`` → 1 + 256 + 127 + 56 = 440
positions; attention mask likewise (patches and placeholders 1); ``position_ids = cumsum(mask) - 1``.
Row j of the action logits is read at sequence position ``-57 + j`` (the first one at the prompt's final
token 29871), i.e. one position left of placeholder j. Only those 56 rows go through ``lm_head``.

Top-level attribute names (``vision_backbone``, ``projector``, ``language_model``, ``value_head``) match
the reference so checkpoint keys and LoRA adapter keys carry over unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vlacrl.models.openvla_oft import sampling
from vlacrl.models.openvla_oft.action_tokenizer import ActionTokenizer, resolve_unnorm_key
from vlacrl.models.openvla_oft.config import OpenVLAOFTConfig
from vlacrl.models.openvla_oft.llm import build_language_model
from vlacrl.models.openvla_oft.projector import PrismaticProjector
from vlacrl.models.openvla_oft.vision import FusedVisionBackbone
from vlacrl.models.value_head import ValueHead, value_head_out_dim

BOS_TOKEN_ID = 1
PLACEHOLDER_TOKEN_ID = 1
PROMPT_END_TOKEN_ID = 29871
VALUE_HEAD_PREFIX = "value_head."


@dataclass
class PolicyOutput:
    """``logits`` [B, 56, V] raw (untempered, unmasked) action-position logits; ``hidden_states`` [B, 56, H]
    last-layer (post-norm) states at those positions; ``values`` [B, out_dim] or None."""

    logits: torch.Tensor
    hidden_states: torch.Tensor
    values: torch.Tensor | None = None


@dataclass
class ActionPrediction:
    """Rollout output: ``actions`` [B, C, D] float64 (env scale), ``action_tokens`` [B, C, D] int64,
    ``logprobs`` [B, C·D], ``processed_logits`` [B, C·D, 256] (tempered logits of the allowed action ids),
    ``values`` or None."""

    actions: torch.Tensor
    action_tokens: torch.Tensor
    logprobs: torch.Tensor
    processed_logits: torch.Tensor
    values: torch.Tensor | None = None


class OpenVLAOFTPolicy(nn.Module):
    """Vision backbone + projector + bidirectional Llama (+ optional value head); sizes come from ``config``."""

    #: whether ``forward`` scores every action token from the prompt alone (no teacher forcing needed)
    decodes_in_parallel = True

    def __init__(
        self,
        config: OpenVLAOFTConfig,
        *,
        action_dim: int = 7,
        num_action_chunks: int = 8,
        unnorm_key: str | None = None,
        vh_mode: str | None = None,
        value_type: str = "step_level",
        attn_implementation: str = "sdpa",
    ):
        super().__init__()
        self.config = config
        self.action_dim, self.num_action_chunks = int(action_dim), int(num_action_chunks)
        self.vh_mode = vh_mode
        self.vision_backbone = FusedVisionBackbone(config)
        self.projector = PrismaticProjector(
            config.use_fused_vision_backbone, self.vision_backbone.embed_dim, config.hidden_size
        )
        self.language_model = build_language_model(config.text_config, attn_implementation)
        self.value_head = None
        if vh_mode is not None:
            if vh_mode != "a0":
                raise ValueError(f"vh_mode must be None or 'a0', got {vh_mode!r}")
            self.value_head = ValueHead(config.hidden_size, value_head_out_dim(value_type, num_action_chunks))
        if unnorm_key is not None and config.norm_stats:
            unnorm_key = resolve_unnorm_key(config.norm_stats, unnorm_key)
        self.unnorm_key = unnorm_key
        self._action_tokenizer: ActionTokenizer | None = None

    # ------------------------------------------------------------------ sizes and helpers
    @property
    def num_action_tokens(self) -> int:
        """C·D = 56 tokens per observation."""
        return self.action_dim * self.num_action_chunks

    @property
    def token_begin(self) -> int:
        """First action token id: tokenizer vocab (32000) - n_action_bins (256) = 31744."""
        return self.config.tokenizer_vocab_size - self.config.n_action_bins

    @property
    def action_tokenizer(self) -> ActionTokenizer:
        """Bins + BOUNDS_Q99 statistics of ``unnorm_key`` (built on first use)."""
        if self._action_tokenizer is None:
            self._action_tokenizer = ActionTokenizer.from_norm_stats(
                self.config.norm_stats, self.unnorm_key, self.config.tokenizer_vocab_size, self.config.n_action_bins
            )
        return self._action_tokenizer

    def sequence_length(self, prompt_length: int) -> int:
        """Multimodal positions for a prompt of ``prompt_length`` tokens (128 → 440)."""
        return prompt_length + self.vision_backbone.num_patches + self.num_action_tokens

    def checkpoint_state_dict(self) -> dict[str, torch.Tensor]:
        """The tensors a HF checkpoint stores: everything but the (never saved) value head."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith(VALUE_HEAD_PREFIX)}

    def enable_gradient_checkpointing(self) -> None:
        """Activation checkpointing on every Llama decoder layer (the actor always enables it)."""
        llm, kwargs = self.language_model, {"use_reentrant": False}
        if hasattr(llm, "activation_checkpointing_enable"):  # newer transformers deprecate the old name
            llm.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            llm.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)

    # ------------------------------------------------------------------ forward
    def check_inputs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> None:
        """Raise unless ids/mask are [B, L] with BOS (mask 1) first and 29871 (mask 1) last."""
        if input_ids.ndim != 2 or input_ids.shape != attention_mask.shape:
            raise ValueError(f"input_ids {tuple(input_ids.shape)} / attention_mask must both be [B, L]")
        ends = torch.stack([input_ids[:, 0] == BOS_TOKEN_ID, input_ids[:, -1] == PROMPT_END_TOKEN_ID])
        masked = torch.stack([attention_mask[:, 0] != 0, attention_mask[:, -1] != 0])
        if not bool(torch.all(ends & masked)):
            raise ValueError("each prompt must start with BOS (id 1) and end with token 29871, both unmasked")

    def embed_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """pixel_values [B, N_img, 6, 224, 224] → projected patches [B, N_img·256, H]."""
        batch = pixel_values.shape[0]
        flat = pixel_values.reshape(-1, *pixel_values.shape[2:])
        dtype = self.projector.fc1.weight.dtype
        patches = self.projector(self.vision_backbone(flat.to(dtype)))
        return patches.reshape(batch, -1, patches.shape[-1])

    def build_inputs(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, pixel_values: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Multimodal ``inputs_embeds`` [B, S, H] and mask [B, S] (long), S = L + 256·N_img + 56."""
        batch, n_act = input_ids.shape[0], self.num_action_tokens
        placeholders = input_ids.new_full((batch, n_act), PLACEHOLDER_TOKEN_ID)
        ids = torch.cat([input_ids, placeholders], dim=1)
        mask = torch.cat([attention_mask.long(), attention_mask.new_ones((batch, n_act)).long()], dim=1)
        embeds = self.language_model.get_input_embeddings()(ids)
        keep = torch.ones_like(ids, dtype=embeds.dtype)
        keep[:, -n_act:] = 0
        embeds = embeds * keep.unsqueeze(-1)
        patches = self.embed_images(pixel_values).to(embeds.dtype)
        embeds = torch.cat([embeds[:, :1], patches, embeds[:, 1:]], dim=1)
        patch_mask = mask.new_ones(patches.shape[:2])
        mask = torch.cat([mask[:, :1], patch_mask, mask[:, 1:]], dim=1)
        return embeds, mask

    def sequence_hidden_states(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, pixel_values: torch.Tensor
    ) -> torch.Tensor:
        """Last-layer (post-norm) hidden states of the whole multimodal sequence [B, S, H]."""
        self.check_inputs(input_ids, attention_mask)
        embeds, mask = self.build_inputs(input_ids, attention_mask, pixel_values)
        position_ids = mask.cumsum(dim=1) - 1
        out = self.language_model.model(inputs_embeds=embeds, attention_mask=mask, position_ids=position_ids)
        return out.last_hidden_state

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        pixel_values: torch.Tensor,
        action_tokens: torch.Tensor | None = None,
    ) -> PolicyOutput:
        """input_ids/attention_mask [B, L], pixel_values [B, N_img, 6, 224, 224] → :class:`PolicyOutput`.

        ``action_tokens`` is accepted and unused: parallel decoding conditions no action token on another, so
        the logits of all 56 rows come from the prompt alone (the causal family teacher-forces them instead)."""
        hidden = self.sequence_hidden_states(input_ids, attention_mask, pixel_values)
        # a copy, not a view: FSDP2 cannot guard a view the root module returns against in-place ops
        action_hidden = hidden[:, -self.num_action_tokens - 1 : -1].clone()
        logits = self.language_model.lm_head(action_hidden)
        values = self.value_head(action_hidden[:, 0]) if self.value_head is not None else None
        return PolicyOutput(logits=logits, hidden_states=action_hidden, values=values)

    # ------------------------------------------------------------------ rollout and training views
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
    ) -> ActionPrediction:
        """Sample (or argmax) all 56 tokens from one forward and decode them to env-scale actions."""
        out = self(input_ids, attention_mask, pixel_values)
        drawn = sampling.sample_tokens(
            out.logits,
            self.token_begin,
            self.config.tokenizer_vocab_size,
            temperature=temperature,
            top_k=top_k,
            greedy=greedy,
            generator=generator,
        )
        tokens = drawn.tokens.reshape(-1, self.num_action_chunks, self.action_dim)
        actions = self.action_tokenizer.decode(tokens)
        return ActionPrediction(actions, tokens, drawn.logprobs, drawn.logits, out.values)

    def action_logprobs(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        pixel_values: torch.Tensor,
        action_tokens: torch.Tensor,
        *,
        temperature: float = 1.6,
        top_k: int | None = None,
    ) -> dict[str, torch.Tensor]:
        """Training forward: ``logprobs``/``entropy`` [B, N] of ``action_tokens`` ([B, N] or [B, C, D], N = C·D:
        56 here, 7 for the causal family, which teacher-forces them) under the masked tempered distribution,
        ``raw_logits`` [B, N, V], ``processed_logits`` [B, N, 256] (untempered action-id slice, for replay losses)
        and ``values`` when a value head exists."""
        out = self(input_ids, attention_mask, pixel_values, action_tokens)
        tokens = action_tokens.reshape(action_tokens.shape[0], -1)
        vocab = self.config.tokenizer_vocab_size
        logprobs, entropy = sampling.token_logprobs_and_entropy(
            out.logits, tokens, self.token_begin, vocab, temperature=temperature, top_k=top_k
        )
        result = {
            "logprobs": logprobs,
            "entropy": entropy,
            "raw_logits": out.logits,
            "processed_logits": out.logits[..., self.token_begin : vocab],
        }
        if out.values is not None:
            result["values"] = out.values
        return result
