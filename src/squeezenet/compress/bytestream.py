"""Checked reading and compact writing of the small integers that compressed files are made of.

Every read states how many bytes it needs and fails with one clear ValueError when fewer remain, so
a truncated or lying file is caught before anything is allocated from its declared sizes.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ByteReader", "varint"]

_MAX_VARINT_BYTES = 5  # enough for any count below 2**35; longer runs are malformed


def varint(value: int) -> bytes:
    """Unsigned LEB128: seven bits per byte, low bits first, high bit set on all but the last byte."""
    if value < 0:
        raise ValueError(f"varint of a negative number {value}")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


class ByteReader:
    """Reads a bytes object front to back; ``what`` names the field in every error message."""

    def __init__(self, data: bytes, offset: int = 0, end: int | None = None) -> None:
        self.data = data
        self.offset = offset
        self.end = len(data) if end is None else end

    @property
    def remaining(self) -> int:
        return self.end - self.offset

    def take(self, count: int, what: str) -> memoryview:
        if count < 0 or count > self.remaining:
            raise ValueError(f"{what} needs {count} bytes but only {self.remaining} remain (truncated or corrupt file)")
        start = self.offset
        self.offset += count
        return memoryview(self.data)[start : start + count]

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def u32(self, what: str) -> int:
        return int.from_bytes(self.take(4, what), "little")

    def varint(self, what: str, maximum: int) -> int:
        """A LEB128 count, rejected when above ``maximum`` (the bound the caller can justify)."""
        value = 0
        for index in range(_MAX_VARINT_BYTES):
            byte = self.u8(what)
            value |= (byte & 0x7F) << (7 * index)
            if not byte & 0x80:
                if value > maximum:
                    raise ValueError(f"{what} is {value}, more than the {maximum} allowed here (corrupt file)")
                return value
        raise ValueError(f"{what} is not a valid count (corrupt file)")

    def array(self, dtype: str, count: int, what: str) -> np.ndarray:
        itemsize = np.dtype(dtype).itemsize
        return np.frombuffer(self.take(itemsize * count, what), dtype=dtype).copy()
