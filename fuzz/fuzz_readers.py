"""Coverage-guided fuzzing (atheris/libFuzzer) of every parser of untrusted bytes: parse_net,
decode_sqz and the NumPy runtime's read_compressed.

Run with ``make fuzz``. Seeds are the real published .net file and a real .sqz made from it. Every
input must either parse or raise ValueError; any other exception, a hang past -timeout or memory
past -rss_limit_mb is a finding. Findings are fixed and kept as tests in tests/test_forged_files.py.
"""

from __future__ import annotations

import os
import sys
import tempfile
import zlib

import atheris
import numpy  # noqa: F401  (loaded before instrumentation: only our parsers are instrumented)
import torch  # noqa: F401

import squeezenet.models  # noqa: F401

with atheris.instrument_imports(include=["squeezenet"]):
    from squeezenet.compress.caffe_net import parse_net
    from squeezenet.compress.sqz import decode_sqz
    from squeezenet.runtime_numpy import read_compressed

# The NumPy runtime's reader takes a path: each input goes through one scratch file.
_SCRATCH = os.path.join(tempfile.mkdtemp(prefix="fuzz-readers-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None),
                        "input.sqz")


def runtime_numpy_reader(body: bytes) -> None:
    with open(_SCRATCH, "wb") as handle:
        handle.write(body)
    read_compressed(_SCRATCH)


def one_input(data: bytes) -> None:
    # The first byte picks the parser so one corpus exercises all three; the rest is the file.
    if not data:
        return
    body = data[1:]
    if data[0] & 1:
        if data[0] & 2 and len(body) > 4:
            # Re-seal the CRC so mutations reach the parser behind the checksum.
            body = body[:-4] + zlib.crc32(body[:-4]).to_bytes(4, "little")
        # Bit 2 sends .sqz inputs to the NumPy runtime's own reader instead.
        parser = runtime_numpy_reader if data[0] & 4 else decode_sqz
    else:
        parser = parse_net
    try:
        parser(body)
    except ValueError:
        pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
