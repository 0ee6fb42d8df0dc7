"""Simple CNN baseline: shapes, reference parameter names, checkpoint format, bins and task ids."""

from __future__ import annotations

import math

import torch

from vlacrl.models.openvla_oft.action_tokenizer import ActionTokenizer
from vlacrl.models.simple_cnn import (
    CHECKPOINT_KEYS,
    SimpleCNNPolicy,
    bin_logprobs_and_entropy,
    build_task_id_map,
    decode_bins,
    encode_actions,
    load_checkpoint,
    preprocess_images,
    save_checkpoint,
    task_id_for,
)

TASKS = ["put the bowl on the plate", "open the drawer", "pick up the black bowl"]
STATS = {"libero_spatial_no_noops": {"action": {"q01": [-1.0] * 7, "q99": [1.0] * 7}}}


def test_output_shapes_and_parameter_names():
    torch.manual_seed(0)
    model = SimpleCNNPolicy(num_tasks=3).eval()
    pixels = preprocess_images(torch.randint(0, 256, (2, 256, 256, 3), dtype=torch.uint8))
    assert pixels.shape == (2, 3, 224, 224)
    with torch.no_grad():
        logits = model(pixels, torch.tensor([0, 2]))
        assert logits.shape == (2, 56, 256)
        assert model.features(pixels, torch.tensor([0, 2])).shape == (2, 640)
        assert model.values(pixels, torch.tensor([0, 2])).shape == (2, 1)
        assert model(pixels.unsqueeze(1), torch.tensor([[0], [2]])).shape == (2, 56, 256)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["image_encoder.0.weight"] == (64, 3, 7, 7)
    assert shapes["image_encoder.4.0.0.weight"] == (128, 64, 3, 3)
    assert shapes["image_encoder.6.1.1.running_mean"] == (512,)
    assert shapes["task_embedding.weight"] == (3, 128)
    assert shapes["action_head.6.weight"] == (56 * 256, 512)
    assert shapes["value_head.2.weight"] == (1, 512)
    assert "image_encoder.4.0.0.bias" not in shapes  # 3×3 convs have no bias


def test_logprobs_and_entropy_of_uniform_logits():
    logits = torch.zeros(1, 56, 256)
    logprobs, entropy = bin_logprobs_and_entropy(logits, torch.full((1, 56), 300))  # clamped to bin 255
    assert torch.allclose(logprobs, torch.full((1, 56), -math.log(256)))
    assert torch.allclose(entropy, torch.full((1, 56), math.log(256)))


def test_bins_decode_and_encode():
    tok = ActionTokenizer.from_norm_stats(STATS, "libero_spatial")
    actions = decode_bins(torch.tensor([[0, 127, 254, 255, 3, 200, 100]]), tok)
    centers = [-254 / 255, 0.0, 254 / 255, 254 / 255, -1 + 7 / 255, -1 + 401 / 255, -1 + 201 / 255]
    expected = torch.tensor([[0.5 * (c + 1) * (2 + 1e-8) - 1 for c in centers]], dtype=torch.float64)
    torch.testing.assert_close(actions, expected, rtol=0, atol=1e-12)  # every dim normalised (no mask)
    assert encode_actions(actions, tok).tolist() == [[0, 127, 254, 254, 3, 200, 100]]


def test_task_ids():
    mapping = build_task_id_map(TASKS + TASKS[:1])
    assert mapping == {"open the drawer": 0, "pick up the black bowl": 1, "put the bowl on the plate": 2}
    assert task_id_for("pick up the black bowl", mapping) == 1
    assert task_id_for("Open the drawer of the cabinet", mapping) == 0  # substring fallback
    assert task_id_for("turn on the stove", mapping) == 0


def test_checkpoint_round_trip_in_both_formats(tmp_path):
    torch.manual_seed(0)
    model = SimpleCNNPolicy(num_tasks=3).eval()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-5)
    path = save_checkpoint(
        tmp_path / "best_checkpoint.pt",
        model,
        task_id_map=build_task_id_map(TASKS),
        norm_stats=STATS,
        unnorm_key="libero_spatial_no_noops",
        epoch=3,
        optimizer=optimizer,
        train_loss=1.5,
        val_loss=1.7,
    )
    payload = torch.load(path, weights_only=False)
    assert set(payload) == set(CHECKPOINT_KEYS) and payload["num_tasks"] == 3
    loaded, meta = load_checkpoint(path)
    assert meta["unnorm_key"] == "libero_spatial_no_noops" and meta["epoch"] == 3
    pixels, ids = torch.randn(1, 3, 224, 224), torch.tensor([1])
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(pixels, ids), model(pixels, ids), rtol=0, atol=0)
    torch.save(model.state_dict(), tmp_path / "model.pt")  # the RL actor's format
    bare, meta = load_checkpoint(tmp_path / "model.pt")
    assert meta == {} and bare.task_embedding.num_embeddings == 3
