"""TFRecord files and ``tf.train.Example`` records, read and written without TensorFlow.

**TFRecord framing**, per record: ``uint64 length`` (little-endian), ``uint32 masked_crc32c(length bytes)``,
``length`` data bytes, ``uint32 masked_crc32c(data)``; ``masked(c) = ((c >> 15) | (c << 17)) + 0xa282ead8``
(mod 2³²), CRC-32C = the Castagnoli polynomial (reflected 0x82F63B78).

**tf.train.Example** (protobuf wire format): ``Example {1: Features}``, ``Features {1: repeated entry {1: key,
2: Feature}}`` (a map), ``Feature`` = one of ``1: BytesList {1: repeated bytes}``, ``2: FloatList {1: repeated
float}`` (packed), ``3: Int64List {1: repeated int64}`` (packed varints). Unknown fields are skipped, as protobuf
parsers do.

Parsed features: ``{name: list[bytes]}`` for bytes lists, ``np.ndarray`` float32 for float lists and int64 for
int64 lists. Errors are :class:`TFRecordError` (a :class:`ReplayDataError`) naming the file and byte offset.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Union

import numpy as np

from vlacrl.data.errors import ReplayDataError

FeatureValue = Union[list, np.ndarray]
_MASK_DELTA = 0xA282EAD8
_U32 = 0xFFFFFFFF


class TFRecordError(ReplayDataError):
    """A TFRecord file or an Example record that cannot be read (truncated, corrupted, not an Example)."""


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data``; ``crc32c(b"123456789") == 0xE3069283``."""
    crc, table = _U32, _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ _U32


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC of ``data``."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & _U32


# ------------------------------------------------------------------------------------------------ framing
def iter_records(path: str | Path, *, verify_data: bool = True) -> Iterator[bytes]:
    """Every record of one TFRecord file, in order. The length header's CRC is always checked (it catches a
    misaligned or foreign file at once); ``verify_data`` checks each record's own CRC too (pure Python, about
    as slow as reading the file a few times over)."""
    path = Path(path)
    with open(path, "rb") as handle:
        offset = 0
        while True:
            header = handle.read(12)
            if not header:
                return
            if len(header) < 12:
                raise TFRecordError(f"{path}: truncated record header at byte {offset}")
            length_bytes, length_crc = header[:8], struct.unpack("<I", header[8:])[0]
            if masked_crc32c(length_bytes) != length_crc:
                raise TFRecordError(f"{path}: bad length checksum at byte {offset} (not a TFRecord file, or corrupted)")
            (length,) = struct.unpack("<Q", length_bytes)
            data, footer = handle.read(length), handle.read(4)
            if len(data) < length or len(footer) < 4:
                raise TFRecordError(f"{path}: record at byte {offset} is truncated ({len(data)} of {length} bytes)")
            if verify_data and masked_crc32c(data) != struct.unpack("<I", footer)[0]:
                raise TFRecordError(f"{path}: bad data checksum in the record at byte {offset} (corrupted download?)")
            yield data
            offset += 16 + length


def write_records(path: str | Path, records: Iterable[bytes]) -> Path:
    """Write ``records`` as one TFRecord file (the format TensorFlow's writer produces)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        for data in records:
            length = struct.pack("<Q", len(data))
            handle.write(length + struct.pack("<I", masked_crc32c(length)))
            handle.write(data + struct.pack("<I", masked_crc32c(data)))
    return path


# ------------------------------------------------------------------------------------------------ protobuf
def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise TFRecordError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise TFRecordError("varint longer than 10 bytes")


def _fields(buf: bytes) -> Iterator[tuple[int, int, bytes | int]]:
    """(field number, wire type, value) of one message: bytes for wire type 2 and the fixed-width types, int for
    varints."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            value, pos = buf[pos : pos + width], pos + width
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise TFRecordError("truncated length-delimited field")
            value, pos = buf[pos : pos + size], pos + size
        else:
            raise TFRecordError(f"unsupported protobuf wire type {wire}")
        yield number, wire, value


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _feature(buf: bytes) -> FeatureValue:
    for kind, _, body in _fields(buf):
        if kind == 1:
            return [v for n, w, v in _fields(body) if n == 1 and w == 2]
        if kind == 2:
            chunks = [v for n, w, v in _fields(body) if n == 1]  # packed (wire 2) or one float per field (wire 5)
            return np.frombuffer(b"".join(chunks), dtype="<f4").astype(np.float32)
        if kind == 3:
            values: list[int] = []
            for n, wire, v in _fields(body):
                if n != 1:
                    continue
                if wire == 0:
                    values.append(_signed64(v))
                    continue
                pos = 0
                while pos < len(v):
                    item, pos = _varint(v, pos)
                    values.append(_signed64(item))
            return np.asarray(values, dtype=np.int64)
    return []  # a Feature with no kind set: an empty list


def parse_example(raw: bytes) -> dict[str, FeatureValue]:
    """One serialized ``tf.train.Example`` → ``{feature name: values}`` (see the module docstring)."""
    out: dict[str, FeatureValue] = {}
    for number, wire, features in _fields(raw):
        if number != 1 or wire != 2:
            continue
        for entry_number, _, entry in _fields(features):
            if entry_number != 1:
                continue
            key, value = "", b""
            for n, _, v in _fields(entry):
                if n == 1:
                    key = v.decode("utf-8")
                elif n == 2:
                    value = v
            out[key] = _feature(value)
    return out


def _tag(number: int, wire: int) -> bytes:
    return _encode_varint((number << 3) | wire)


def _encode_varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _delimited(number: int, body: bytes) -> bytes:
    return _tag(number, 2) + _encode_varint(len(body)) + body


def encode_example(features: Mapping[str, FeatureValue]) -> bytes:
    """``{name: list of bytes | float array | int array}`` → a serialized ``tf.train.Example`` (the encoding
    TensorFlow writes: packed floats and varints). For test fixtures and users who build their own RLDS files."""
    entries = b""
    for name, values in features.items():
        if isinstance(values, np.ndarray) and values.dtype.kind == "f":
            body = _delimited(1, values.astype("<f4").tobytes())
            feature = _delimited(2, body)
        elif isinstance(values, np.ndarray) and values.dtype.kind in "iub":
            body = _delimited(1, b"".join(_encode_varint(int(v)) for v in values.reshape(-1)))
            feature = _delimited(3, body)
        else:
            body = b"".join(_delimited(1, bytes(v)) for v in values)
            feature = _delimited(1, body)
        entries += _delimited(1, _delimited(1, name.encode("utf-8")) + _delimited(2, feature))
    return _delimited(1, entries)
