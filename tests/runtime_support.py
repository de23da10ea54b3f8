"""Shared pieces of the runtime tests: typed programs from assembler text,
maps from definitions, Ethernet frames."""

from __future__ import annotations

import struct
from typing import Sequence

from ebpfvm.asm import assemble
from ebpfvm.maps import MapDefinition
from ebpfvm.program import Program

from example_runs import checksum, eth, ipv4, tcp, udp

__all__ = ["array", "checksum", "eth", "frame", "hash_map", "ipv4", "prog_array", "tcp", "typed", "u32", "u64", "udp"]


def typed(text: str, prog_type: str | None, *, name: str = "", maps: Sequence[MapDefinition] = (),
          expected_attach_type: str | None = None) -> Program:
    """Assemble ``text`` into a program of ``prog_type`` with ``maps``."""
    program = assemble(text)
    return Program(program.instructions, labels=program.labels, name=name, prog_type=prog_type,
                   expected_attach_type=expected_attach_type, maps=maps)


def array(name: str, max_entries: int = 4, value_size: int = 8) -> MapDefinition:
    return MapDefinition(name, "array", 4, value_size, max_entries)


def hash_map(name: str, max_entries: int = 16, key_size: int = 4, value_size: int = 8) -> MapDefinition:
    return MapDefinition(name, "hash", key_size, value_size, max_entries)


def prog_array(name: str, max_entries: int, slots: Sequence[tuple[int, str]] = ()) -> MapDefinition:
    return MapDefinition(name, "prog_array", 4, 4, max_entries, initial_slots=tuple(slots))


def u32(n: int) -> bytes:
    return struct.pack("<I", n)


def u64(n: int) -> bytes:
    return struct.pack("<Q", n)


def frame(size: int = 64, ethertype: int = 0x0800, dest: bytes = bytes(6)) -> bytes:
    """An Ethernet frame of ``size`` bytes whose payload counts up from 0."""
    payload = bytes(i & 0xFF for i in range(size - 14))
    return dest + bytes.fromhex("020000000001") + struct.pack("!H", ethertype) + payload
