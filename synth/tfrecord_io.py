"""TFRecord files without TensorFlow: the framing TensorFlow's TFRecordWriter writes.

Each record is
    uint64 length (little-endian) | uint32 masked_crc32c(length bytes) |
    data | uint32 masked_crc32c(data)
where masked_crc(x) = ((crc >> 15 | crc << 17) + 0xa282ead8) mod 2**32, with CRC-32C
(Castagnoli) from google-crc32c's C implementation. Files written here are byte-identical
to TensorFlow's uncompressed TFRecordWriter (tested), and records can be appended file
after file: a shard may be the concatenation of chunk files.
"""

from __future__ import annotations

import struct

import google_crc32c

_MASK_DELTA = 0xA282EAD8


def masked_crc(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def frame(data: bytes) -> bytes:
    """One record's bytes as they appear in a TFRecord file."""
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", masked_crc(header)) + data + struct.pack("<I", masked_crc(data))


class RecordWriter:
    """Appends framed records to a binary file; a context manager like tf.io.TFRecordWriter."""

    def __init__(self, path: str):
        self.path = path
        self._f = open(path, "wb")

    def write(self, data: bytes) -> None:
        self._f.write(frame(data))

    def close(self) -> None:
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class CorruptRecordError(ValueError):
    pass


def read_records(path: str):
    """Yields each record's data, checking both CRCs; raises CorruptRecordError naming the
    file and byte offset of a damaged or truncated record."""
    with open(path, "rb") as f:
        offset = 0
        while True:
            header = f.read(12)
            if not header:
                return
            if len(header) < 12:
                raise CorruptRecordError(f"{path}: truncated record header at byte {offset}")
            (length,), (crc,) = struct.unpack("<Q", header[:8]), struct.unpack("<I", header[8:])
            if masked_crc(header[:8]) != crc:
                raise CorruptRecordError(f"{path}: bad length checksum at byte {offset}")
            body = f.read(length + 4)
            if len(body) < length + 4:
                raise CorruptRecordError(f"{path}: record at byte {offset} is truncated")
            data = body[:length]
            if masked_crc(data) != struct.unpack("<I", body[length:])[0]:
                raise CorruptRecordError(f"{path}: bad data checksum in the record at byte {offset}")
            yield data
            offset += 12 + length + 4
