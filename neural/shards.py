"""Token shards: many tokenized examples in one file (uint16 or uint32 ids, optionally zstd-compressed).

Layout, little-endian: a 24-byte header (magic b"RTOK", version, bytes per token, compression, one spare
byte, example count, token count as two uint64), then the payload, zstd-compressed when the header says so:
example offsets (uint64, count + 1 of them), one split byte per example (0 train, 1 validation), tokens.
No numpy: `array` does the packing, so a shard reads wherever the standard library runs.
"""

from __future__ import annotations

import hashlib
import os
import struct
import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

MAGIC = b"RTOK"
VERSION = 1  # 1: first version
_HEADER = struct.Struct("<4sBBBxQQ")
TRAIN, VAL = 0, 1
_COMPRESSIONS = {"none": 0, "zstd": 1}


class ShardError(Exception):
    """A shard file is missing, truncated or not a shard."""


@dataclass(slots=True)
class Shard:
    """The examples of one shard: token rows (arrays of ids) and their splits."""

    rows: list[array]
    splits: bytes

    def split_rows(self, split: int) -> list[array]:
        return [row for row, s in zip(self.rows, self.splits) if s == split]


def _little(values: array) -> bytes:
    if sys.byteorder == "big":  # pragma: no cover - no big-endian machine here
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


def _from_little(typecode: str, data: bytes) -> array:
    values = array(typecode)
    values.frombytes(data)
    if sys.byteorder == "big":  # pragma: no cover
        values.byteswap()
    return values


def zstd_available() -> bool:
    try:
        import zstandard  # noqa: F401
    except ImportError:
        return False
    return True


def write_shard(path: str, rows: Sequence[Sequence[int]], splits: Sequence[int], vocab_size: int,
                compression: str = "none") -> str:
    """Write the rows atomically (temporary file, then rename); returns the file's sha256."""
    if len(rows) != len(splits):
        raise ValueError("one split per row")
    typecode = "H" if vocab_size <= 1 << 16 else "I"
    if array(typecode).itemsize not in (2, 4):  # pragma: no cover - exotic platforms
        raise ShardError("this platform has no 2- or 4-byte array type")
    offsets = array("Q", [0])
    tokens = array(typecode)
    for row in rows:
        tokens.extend(row)
        offsets.append(len(tokens))
    payload = _little(offsets) + bytes(splits) + _little(tokens)
    code = _COMPRESSIONS[compression]
    if code == 1:
        import zstandard

        payload = zstandard.ZstdCompressor(level=10).compress(payload)
    data = _HEADER.pack(MAGIC, VERSION, tokens.itemsize, code, len(rows), len(tokens)) + payload
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)
    return hashlib.sha256(data).hexdigest()


def read_shard(path: str) -> Shard:
    """The examples of a shard file."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise ShardError(f"cannot read shard {path}: {exc.strerror}") from None
    if len(data) < _HEADER.size:
        raise ShardError(f"{path} is not a token shard (too short)")
    magic, version, itemsize, code, count, total = _HEADER.unpack_from(data)
    if magic != MAGIC or version != VERSION or itemsize not in (2, 4) or code not in (0, 1):
        raise ShardError(f"{path} is not a token shard of version {VERSION}")
    payload = data[_HEADER.size:]
    if code == 1:
        try:
            import zstandard
        except ImportError:
            raise ShardError(f"{path} is zstd-compressed: install the 'zstandard' package") from None
        try:
            payload = zstandard.ZstdDecompressor().decompress(payload)
        except zstandard.ZstdError as exc:
            raise ShardError(f"{path} is damaged ({exc})") from None
    typecode = "H" if itemsize == 2 else "I"
    offsets_end = 8 * (count + 1)
    if len(payload) != offsets_end + count + itemsize * total:
        raise ShardError(f"{path} is truncated or damaged")
    offsets = _from_little("Q", payload[:offsets_end])
    splits = payload[offsets_end:offsets_end + count]
    tokens = _from_little(typecode, payload[offsets_end + count:])
    rows = [tokens[offsets[i]:offsets[i + 1]] for i in range(count)]
    return Shard(rows, bytes(splits))
