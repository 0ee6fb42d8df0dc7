"""The RLDS release read without TensorFlow: TFRecord framing and ``tf.train.Example`` decoding checked against
independent implementations (TensorBoard's record writer/reader, protobuf's own parser on a descriptor built
from the Example schema), and ``vlacrl-precompute-logits`` on a tiny RLDS suite folder the test writes."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from PIL import Image

from vlacrl.cli.precompute_logits import main
from vlacrl.data import default_rlds_dir, read_cache_file
from vlacrl.data.rlds import iter_rlds_tasks
from vlacrl.data.tfrecord import TFRecordError, crc32c, encode_example, iter_records, parse_example, write_records

SUITE_DIR = ("modified_libero_rlds", "libero_spatial_no_noops", "1.0.0")
TASK_A, TASK_B = "pick up the black bowl", "open the top drawer"


# ------------------------------------------------------------------------------------------------ framing
def test_crc32c_matches_the_standard_vector_and_tensorboard():
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c as tb_masked

    from vlacrl.data.tfrecord import masked_crc32c

    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    data = os.urandom(3000)
    assert masked_crc32c(data) == tb_masked(data)


def test_records_round_trip_with_tensorboards_writer_and_reader(tmp_path):
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import PyRecordReader_New
    from tensorboard.summary.writer.record_writer import RecordWriter

    records = [b"", b"a", os.urandom(70000), b"last"]
    theirs = tmp_path / "theirs.tfrecord"
    with open(theirs, "wb") as handle:
        writer = RecordWriter(handle)
        for record in records:
            writer.write(record)
        writer.flush()
    assert list(iter_records(theirs)) == records
    ours = write_records(tmp_path / "ours.tfrecord", records)
    reader, read = PyRecordReader_New(str(ours)), []
    while True:
        try:
            reader.GetNext()
        except Exception:  # tensorboard's stub raises at the end of the file
            break
        read.append(reader.record())
    assert read == records and ours.read_bytes() == theirs.read_bytes()


def test_corrupted_and_truncated_files_are_named(tmp_path):
    path = write_records(tmp_path / "x.tfrecord", [b"first record", b"second record"])
    data = bytearray(path.read_bytes())
    data[28 + 12 + 3] ^= 0xFF  # a byte of the second record's data (the first record takes 12 + 12 + 4 bytes)
    path.write_bytes(bytes(data))
    with pytest.raises(TFRecordError, match=r"bad data checksum in the record at byte 28"):
        list(iter_records(path))
    assert len(list(iter_records(path, verify_data=False))) == 2
    path.write_bytes(bytes(data[:-6]))
    with pytest.raises(TFRecordError, match="truncated"):
        list(iter_records(path, verify_data=False))
    path.write_bytes(b"not a tfrecord file at all")
    with pytest.raises(TFRecordError, match="bad length checksum at byte 0"):
        list(iter_records(path))


# ------------------------------------------------------------------------------------------------ Example
def _example_class():
    """tf.train.Example built from its schema (example.proto / feature.proto) with protobuf's own runtime."""
    T = descriptor_pb2.FieldDescriptorProto
    f = descriptor_pb2.FileDescriptorProto(name="fixture_example.proto", package="fixture", syntax="proto3")
    f.message_type.add(name="BytesList").field.add(name="value", number=1, type=T.TYPE_BYTES, label=T.LABEL_REPEATED)
    f.message_type.add(name="FloatList").field.add(name="value", number=1, type=T.TYPE_FLOAT, label=T.LABEL_REPEATED)
    f.message_type.add(name="Int64List").field.add(name="value", number=1, type=T.TYPE_INT64, label=T.LABEL_REPEATED)
    feature = f.message_type.add(name="Feature")
    feature.oneof_decl.add(name="kind")
    for number, name, kind in ((1, "bytes_list", "BytesList"), (2, "float_list", "FloatList"),
                               (3, "int64_list", "Int64List")):  # fmt: skip
        feature.field.add(name=name, number=number, type=T.TYPE_MESSAGE, type_name=f".fixture.{kind}",
                          label=T.LABEL_OPTIONAL, oneof_index=0)  # fmt: skip
    features = f.message_type.add(name="Features")
    entry = features.nested_type.add(name="FeatureEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=T.TYPE_STRING, label=T.LABEL_OPTIONAL)
    entry.field.add(name="value", number=2, type=T.TYPE_MESSAGE, type_name=".fixture.Feature", label=T.LABEL_OPTIONAL)
    features.field.add(name="feature", number=1, type=T.TYPE_MESSAGE, type_name=".fixture.Features.FeatureEntry",
                       label=T.LABEL_REPEATED)  # fmt: skip
    f.message_type.add(name="Example").field.add(name="features", number=1, type=T.TYPE_MESSAGE,
                                                 type_name=".fixture.Features", label=T.LABEL_OPTIONAL)  # fmt: skip
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("fixture.Example"))


def test_examples_agree_with_protobufs_own_encoder_and_parser():
    Example = _example_class()
    theirs = Example()
    feature = theirs.features.feature
    feature["steps/language_instruction"].bytes_list.value.extend([b"open it", b"open it"])
    feature["steps/action"].float_list.value.extend([0.5, -1.25, 3.0e-7])
    feature["steps/is_first"].int64_list.value.extend([1, 0, -5, 2**40])
    feature["empty"].int64_list.SetInParent()
    parsed = parse_example(theirs.SerializeToString())
    assert parsed["steps/language_instruction"] == [b"open it", b"open it"]
    np.testing.assert_array_equal(parsed["steps/action"], np.float32([0.5, -1.25, 3.0e-7]))
    assert parsed["steps/is_first"].tolist() == [1, 0, -5, 2**40] and parsed["empty"].tolist() == []

    ours = encode_example({
        "steps/language_instruction": [b"open it"],
        "steps/action": np.float32([[0.5, -1.25], [2.0, 0.0]]),
        "steps/is_first": np.array([1, 0, -5]),
    })  # fmt: skip
    back = Example()
    back.ParseFromString(ours)
    assert list(back.features.feature["steps/language_instruction"].bytes_list.value) == [b"open it"]
    assert list(back.features.feature["steps/action"].float_list.value) == [0.5, -1.25, 2.0, 0.0]
    assert list(back.features.feature["steps/is_first"].int64_list.value) == [1, 0, -5]


# ------------------------------------------------------------------------------------------------ RLDS suite
def _png(frame: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="PNG")
    return buffer.getvalue()


def _episode(rng, instruction: str, steps: int):
    actions = rng.uniform(-0.9, 0.9, (steps, 7)).astype(np.float32)
    actions[:, -1] = np.where(rng.random(steps) < 0.5, -1.0, 1.0)  # LIBERO gripper: -1 open, +1 close
    frames = rng.integers(0, 256, (steps, 16, 16, 3), dtype=np.uint8)
    raw = encode_example({
        "steps/language_instruction": [instruction.encode()] * steps,
        "steps/is_first": np.array([1] + [0] * (steps - 1)),
        "steps/action": actions,
        "steps/observation/image": [_png(f) for f in frames],
        "episode_metadata/file_path": [b"/data/libero_spatial/x_demo.hdf5"],
    })  # fmt: skip
    return raw, actions, frames


@pytest.fixture()
def rlds_suite(tmp_path):
    """<LIBERO>/datasets/modified_libero_rlds/libero_spatial_no_noops/1.0.0 with two shards: task A's episodes
    are records 0 and 2 of shard 0 and record 0 of shard 1, task B's record 1 of shard 0."""
    rng = np.random.default_rng(0)
    root = tmp_path.joinpath("LIBERO", "datasets", *SUITE_DIR)
    episodes = [_episode(rng, t, n) for t, n in ((TASK_A, 9), (TASK_B, 8), (TASK_A, 10), (TASK_A, 11))]
    write_records(root / "libero_spatial-train.tfrecord-00000-of-00002", [e[0] for e in episodes[:3]])
    write_records(root / "libero_spatial-train.tfrecord-00001-of-00002", [episodes[3][0]])
    return root, {TASK_A: [episodes[0], episodes[2], episodes[3]], TASK_B: [episodes[1]]}


def test_precompute_reads_the_release_by_default_every_episode_in_record_order(rlds_suite, tmp_path, monkeypatch,
                                                                               capsys):  # fmt: skip
    """As the reference: the default source is the suite's RLDS release, every episode, demo_<i> = the task's
    i-th episode (shards in order); actions get the OpenVLA gripper, frames are kept as decoded (256² in the
    release; the policy's orientation already)."""
    root, expected = rlds_suite
    monkeypatch.setenv("LIBERO_CONFIG_PATH", str(tmp_path / "LIBERO"))
    assert default_rlds_dir("libero_spatial") == root
    out = tmp_path / "cache"
    assert main(["--no-logits", "--suite", "libero_spatial", "--output-dir", str(out)]) == 0
    assert f"demos: RLDS release {root}" in capsys.readouterr().out
    for instruction, episodes in expected.items():
        cache = dict(read_cache_file(out / f"{instruction.replace(' ', '_')}.hdf5"))
        assert sorted(cache) == [f"demo_{i}" for i in range(len(episodes))]
        for i, (_, actions, frames) in enumerate(episodes):
            demo = cache[f"demo_{i}"]
            np.testing.assert_array_equal(demo.images, frames)
            np.testing.assert_allclose(demo.actions[:, :6], actions[:, :6])
            np.testing.assert_array_equal(demo.actions[:, -1], (1 - actions[:, -1]) / 2)
    limited = [t for t in iter_rlds_tasks(root, demos_per_task=1, first_demo=1)]
    assert [t.instruction for t in limited] == [TASK_B, TASK_A] and len(limited[0].demos) == 0
    np.testing.assert_array_equal(limited[1].demos[0][1].images, expected[TASK_A][1][2])


def test_a_missing_or_damaged_release_is_one_line(rlds_suite, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LIBERO_CONFIG_PATH", str(tmp_path / "elsewhere"))
    assert main(["--no-logits", "--suite", "libero_spatial"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "huggingface-cli download openvla/modified_libero_rlds" in err and "--input" in err
    root, _ = rlds_suite
    shard = next(root.glob("*00001-of-00002"))
    shard.write_bytes(shard.read_bytes()[:-100])
    assert main(["--no-logits", "--rlds", str(root), "--output-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "truncated" in err and shard.name in err
    with pytest.raises(SystemExit):
        main(["--no-logits", "--rlds", str(root), "--input", str(tmp_path)])
