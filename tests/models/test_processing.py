"""Prompt tokenisation (layout of the reference processor) and per-backbone image normalisation."""

from __future__ import annotations

import pytest
import torch
import torchvision.transforms.functional as TVF
from tokenizers import normalizers
from torchvision.transforms import InterpolationMode
from transformers import PreTrainedTokenizerFast

from vlacrl.models.openvla_oft.processing import PromptTokenizer, build_prompt
from vlacrl.models.openvla_oft.tiny_tokenizer import build_tiny_tokenizer

DINO_MEAN, DINO_STD = [0.484375, 0.455078125, 0.40625], [0.228515625, 0.2236328125, 0.224609375]


def test_prompt_text():
    assert build_prompt("Pick up the BLACK bowl") == (
        "In: What action should the robot take to pick up the black bowl?\nOut: "
    )


def test_tokenizer_special_ids(processor):
    tokenizer = processor.prompts.tokenizer
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id) == (1, 2, 32000)
    assert len(tokenizer) == 32001 and tokenizer.convert_ids_to_tokens(29871) == "▁"
    assert tokenizer("Out: ")["input_ids"][-1] == 29871  # the trailing space is its own token


def test_prompt_layout_matches_the_reference_processor(processor, batch, instructions):
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert ids.shape == mask.shape == (2, 128) and mask.dtype == torch.bool
    # The reference: tokenizer(padding="max_length", left) then the BOS after the pads becomes PAD and
    # position 0 becomes BOS.
    tokenizer = processor.prompts.tokenizer
    ref = tokenizer([build_prompt(t) for t in instructions], padding="max_length", max_length=128, return_tensors="pt")
    ref_ids, ref_mask = ref["input_ids"].clone(), ref["attention_mask"].clone()
    first = ref_mask.argmax(dim=1, keepdim=True)
    assert (ref_ids.gather(1, first) == 1).all()
    ref_ids.scatter_(1, first, 32000)
    ref_mask.scatter_(1, first, 0)
    ref_ids[:, 0], ref_mask[:, 0] = 1, 1
    assert torch.equal(ids, ref_ids) and torch.equal(mask, ref_mask.bool())
    assert (ids[:, 0] == 1).all() and (ids[:, -1] == 29871).all()
    n_real = mask.sum(1)
    for row in range(2):
        pads = 128 - int(n_real[row])
        assert (ids[row, 1 : 1 + pads] == 32000).all() and not mask[row, 1 : 1 + pads].any()


def test_final_space_token_is_appended_when_the_tokenizer_drops_it():
    backend = build_tiny_tokenizer()
    backend.normalizer = normalizers.Sequence([normalizers.Strip(left=False, right=True), backend.normalizer])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<PAD>",
        unk_token="<unk>",
        padding_side="left",
    )
    raw = tokenizer(build_prompt("open the drawer"))["input_ids"]
    assert raw[-1] != 29871
    out = PromptTokenizer(tokenizer)(["open the drawer"])
    assert int(out["input_ids"][0, -1]) == 29871
    assert int(out["attention_mask"][0].sum()) == len(raw) + 1
    assert out["input_ids"][0, -len(raw) : -1].tolist() == raw[1:]


def test_too_long_prompts_are_rejected(processor):
    with pytest.raises(ValueError, match="max_length"):
        processor.prompts(["pick up the bowl " * 40])


def test_uniform_grey_image_gives_hand_computed_pixels(batch):
    pixels = batch["pixel_values"]
    assert pixels.shape == (2, 1, 6, 224, 224) and pixels.dtype == torch.float32
    grey = pixels[0, 0]
    for c in range(3):
        assert torch.allclose(grey[c], torch.tensor((128 / 255 - DINO_MEAN[c]) / DINO_STD[c]), atol=1e-6)
        assert torch.allclose(grey[3 + c], torch.tensor((128 / 255 - 0.5) / 0.5), atol=1e-6)
    assert abs(grey[0, 0, 0].item() - 0.0769567) < 1e-6  # (128/255 - 0.484375) / 0.228515625


def test_images_are_resized_bicubic_antialiased_per_backbone(processor, images, batch):
    chw = images[1].permute(2, 0, 1)
    resized = TVF.resize(chw, [224, 224], interpolation=InterpolationMode.BICUBIC, antialias=True)
    assert resized.dtype == torch.uint8
    scaled = resized.float() / 255.0
    dino = TVF.normalize(scaled, DINO_MEAN, DINO_STD)
    siglip = (scaled - 0.5) / 0.5
    torch.testing.assert_close(batch["pixel_values"][1, 0, :3], dino, rtol=0, atol=1e-6)
    torch.testing.assert_close(batch["pixel_values"][1, 0, 3:], siglip, rtol=0, atol=1e-6)
    from_chw = processor.images(images.permute(0, 3, 1, 2))
    assert torch.equal(from_chw, batch["pixel_values"])


def test_float_images_skip_the_uint8_rounding(processor, images):
    as_uint8 = processor.images(images)
    as_float = processor.images(images.float())
    difference = (as_uint8 - as_float).abs()
    assert difference.amax() > 0  # no rounding to integers after the resize
    siglip = as_float[:, :, 3:]
    in_range = (siglip >= -1) & (siglip <= 1)  # bicubic overshoot is clamped only on the uint8 path
    assert difference[:, :, 3:][in_range].amax() <= (0.5 / 255) / 0.5 + 1e-6  # at most half a grey level
