"""The multimodal forward: sequence layout, bidirectional attention, padding, action-row positions."""

from __future__ import annotations

import pytest
import torch

from vlacrl.models.openvla_oft import load_policy
from vlacrl.models.openvla_oft.llm import set_causal
from vlacrl.models.openvla_oft.policy import PROMPT_END_TOKEN_ID


def _hidden(policy, batch, **overrides):
    inputs = {k: overrides.get(k, v) for k, v in batch.items()}
    with torch.no_grad():
        return policy.sequence_hidden_states(**inputs)


def test_a_128_token_prompt_gives_a_440_position_sequence(policy, batch):
    embeds, mask = policy.build_inputs(**batch)
    assert embeds.shape == (2, 440, 64) and mask.shape == (2, 440)
    assert policy.sequence_length(128) == 440
    # [BOS, 256 patches, prompt tokens 1..127, 56 placeholders]: patches and placeholders are attended.
    assert mask[:, 1:257].all() and mask[:, -56:].all() and mask[:, 0].all()
    assert int(mask[0].sum()) == int(batch["attention_mask"][0].sum()) + 256 + 56
    assert torch.count_nonzero(embeds[:, -56:]) == 0  # placeholder embeddings are zeroed
    assert _hidden(policy, batch).shape == (2, 440, 64)


def test_action_rows_are_read_one_position_left_of_each_placeholder(policy, batch):
    with torch.no_grad():
        out = policy(**batch)
        full_logits = policy.language_model.lm_head(policy.sequence_hidden_states(**batch))
    assert out.logits.shape == (2, 56, 32064)
    start = 256 + 127  # the prompt's final token 29871
    torch.testing.assert_close(out.logits, full_logits[:, start : start + 56], rtol=0, atol=0)
    torch.testing.assert_close(out.logits, full_logits[:, -57:-1], rtol=0, atol=0)


def test_attention_is_bidirectional_over_the_whole_sequence(tiny_dir, policy, batch):
    ids = batch["input_ids"].clone()
    assert int(ids[0, -1]) == PROMPT_END_TOKEN_ID
    ids[:, -2] = 31000  # the last word token before the final space: position 256 + 126
    before, after = _hidden(policy, batch), _hidden(policy, batch, input_ids=ids)
    earlier = slice(0, 256 + 126)  # BOS, image patches, earlier prompt tokens
    assert (before[:, earlier] - after[:, earlier]).abs().amax() > 1e-3
    with torch.no_grad():
        rows_before, rows_after = (
            policy(**batch).logits,
            policy(input_ids=ids, **{k: v for k, v in batch.items() if k != "input_ids"}).logits,
        )
    assert (rows_before - rows_after).abs().amax() > 1e-3  # every action row sees the change

    causal = load_policy(tiny_dir, dtype=torch.float32)
    set_causal(causal.language_model, True)
    c_before, c_after = _hidden(causal, batch), _hidden(causal, batch, input_ids=ids)
    torch.testing.assert_close(c_before[:, earlier], c_after[:, earlier], rtol=0, atol=0)


def test_sdpa_and_eager_attention_agree(tiny_dir, policy, batch):
    eager = load_policy(tiny_dir, dtype=torch.float32, attn_implementation="eager")
    with torch.no_grad():
        torch.testing.assert_close(eager(**batch).logits, policy(**batch).logits, rtol=1e-4, atol=1e-4)


def test_padded_positions_are_masked_out(policy, batch):
    ids = batch["input_ids"].clone()
    pads = ~batch["attention_mask"]
    assert pads.any()
    ids[pads] = 29900  # arbitrary real tokens where the mask is 0
    with torch.no_grad():
        ref = policy(**batch).logits
        changed = policy(
            input_ids=ids, attention_mask=batch["attention_mask"], pixel_values=batch["pixel_values"]
        ).logits
    torch.testing.assert_close(changed, ref, rtol=1e-5, atol=1e-5)


def test_batch_rows_are_independent(policy, batch):
    with torch.no_grad():
        both = policy(**batch).logits
        single = policy(**{k: v[1:] for k, v in batch.items()}).logits
    torch.testing.assert_close(single[0], both[1], rtol=1e-4, atol=1e-4)


def test_value_head_reads_the_prompts_final_token(policy, batch):
    with torch.no_grad():
        out = policy(**batch)
        hidden = policy.sequence_hidden_states(**batch)
        expected = policy.value_head(hidden[:, -57])
    assert out.values.shape == (2, 8)  # step-level values, one per chunk step
    torch.testing.assert_close(out.values, expected, rtol=0, atol=0)


def test_prompts_must_start_with_bos_and_end_with_the_space_token(policy, batch):
    ids = batch["input_ids"].clone()
    ids[:, -1] = 29900
    with pytest.raises(ValueError, match="29871"):
        policy(input_ids=ids, attention_mask=batch["attention_mask"], pixel_values=batch["pixel_values"])


def test_image_content_changes_the_action_logits(policy, batch):
    pixels = batch["pixel_values"].clone()
    pixels[0] = pixels[1]
    with torch.no_grad():
        ref = policy(**batch).logits
        swapped = policy(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], pixel_values=pixels
        ).logits
    assert (ref[0] - swapped[0]).abs().amax() > 1e-3
    torch.testing.assert_close(ref[1], swapped[1], rtol=0, atol=0)
