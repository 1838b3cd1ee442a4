"""Read the parts of a 32-bit little-endian ELF file that a firmware report needs: sections and symbols.

Only the section header table and the symbol table are read (System V ABI, "ELF Object Files"); no
program headers, no relocations, no debug information.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ElfFile", "ElfSection", "read_elf"]

_SECTION_HEADER = struct.Struct("<10I")  # name, type, flags, address, offset, size, link, info, align, entry size
_SYMBOL = struct.Struct("<IIIBBH")  # name, value, size, info, other, section index
_SYMTAB = 2
_NOBITS = 8  # occupies memory but no bytes in the file (.bss, .noinit, .stack)
_ALLOC = 0x2  # the section takes memory at run time


@dataclass(frozen=True)
class ElfSection:
    name: str
    address: int
    size: int
    load_address: int  # where its bytes sit in flash: differs from address for .data
    file_offset: int
    has_bytes: bool  # False for NOBITS sections, which the reset handler or nobody fills


@dataclass(frozen=True)
class ElfFile:
    entry: int
    sections: dict[str, ElfSection]  # allocated sections only, by name
    symbols: dict[str, int]  # global and local data/function symbols -> address
    data: bytes

    def section_bytes(self, name: str) -> bytes:
        section = self.sections[name]
        return self.data[section.file_offset:section.file_offset + section.size] if section.has_bytes else b""


def _string(table: bytes, offset: int) -> str:
    return table[offset:table.index(b"\0", offset)].decode("ascii", "replace")


def read_elf(path: str | os.PathLike) -> ElfFile:
    """Sections (with their load addresses, from the program headers) and symbols of an ELF32 LE file."""
    data = Path(path).read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 1 or data[5] != 1:
        raise ValueError(f"{path} is not a 32-bit little-endian ELF file")
    entry, program_offset, section_offset = struct.unpack_from("<III", data, 24)
    program_size, program_count, section_size, section_count, names_index = struct.unpack_from("<HHHHH", data, 42)
    headers = [_SECTION_HEADER.unpack_from(data, section_offset + i * section_size) for i in range(section_count)]
    names = data[headers[names_index][4]:headers[names_index][4] + headers[names_index][5]]
    # Program headers map a file offset to a physical (load) address: that is how .data's flash copy is found.
    segments = [struct.unpack_from("<8I", data, program_offset + i * program_size) for i in range(program_count)]

    def load_address(address: int, offset: int, size: int, has_bytes: bool) -> int:
        for kind, segment_offset, virtual, physical, file_size, _, _, _ in segments:
            if kind == 1 and has_bytes and segment_offset <= offset < segment_offset + max(file_size, 1):
                return physical + (offset - segment_offset)
        return address

    sections = {}
    for name, kind, flags, address, offset, size, _, _, _, _ in headers:
        if flags & _ALLOC:
            has_bytes = kind != _NOBITS
            sections[_string(names, name)] = ElfSection(_string(names, name), address, size,
                                                        load_address(address, offset, size, has_bytes), offset, has_bytes)
    symbols = {}
    for _, kind, _, _, offset, size, link, _, _, entry_size in headers:
        if kind != _SYMTAB:
            continue
        strings = data[headers[link][4]:headers[link][4] + headers[link][5]]
        for position in range(offset, offset + size, entry_size):
            name, value, _, _, _, _ = _SYMBOL.unpack_from(data, position)
            if name:
                symbols[_string(strings, name)] = value
    return ElfFile(entry, sections, symbols, data)
