"""Fuzz the ELF/BTF loader with mutated copies of real objects.

Mutations (byte flips, 32-bit overwrites with boundary values, truncations,
splices of bytes from another object) are aimed mostly at the structures a
loader trusts: the ELF header, section headers, symbol and relocation
tables, .BTF, .BTF.ext, .maps and code.  Whatever the input, ``load_object``
must return or raise a ``UserInputError`` subclass, quickly, and whatever it
returns must be printable by ``inspect``.
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

from elftools.elf.elffile import ELFFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ebpfvm.elf import load_object
from ebpfvm.elf.inspect import describe
from ebpfvm.errors import UserInputError

ROOT = Path(__file__).resolve().parent.parent
OBJECTS = sorted((ROOT / "examples").glob("*.o")) + sorted((ROOT / "tests" / "fixtures").glob("*.o"))
SOURCES = [p.read_bytes() for p in OBJECTS]
INTERESTING = (".symtab", ".BTF", ".BTF.ext", ".maps", "maps", ".rel", ".text", "xdp", "socket", "tc", "kprobe",
               ".data", ".rodata", ".bss", "license", "version", ".strtab")
BOUNDARY = (0, 1, 2, 7, 8, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0xFFFF_FFF8)
PER_CALL_LIMIT = 10.0  # seconds: a hang guard, not a speed check (a normal load takes a few ms; CI may be loaded)
MAX_EXAMPLES = 5000 if os.environ.get("EBPFVM_HYPOTHESIS_PROFILE") == "deep" else 1000


def _regions(data: bytes) -> list[tuple[int, int]]:
    """Byte ranges worth mutating: the ELF header, the section header table
    and the sections a loader reads."""
    elf = ELFFile(io.BytesIO(data))
    regions = [(0, 64), (elf["e_shoff"], elf["e_shoff"] + elf["e_shnum"] * elf["e_shentsize"])]
    for sec in elf.iter_sections():
        if sec["sh_type"] != "SHT_NOBITS" and sec["sh_size"] and sec.name.startswith(INTERESTING):
            regions.append((sec["sh_offset"], sec["sh_offset"] + sec["sh_size"]))
    return regions


REGIONS = [_regions(data) for data in SOURCES]


@st.composite
def position(draw: st.DrawFn, source: int) -> int:
    if draw(st.integers(0, 9)) == 0:  # now and then anywhere at all
        return draw(st.integers(0, len(SOURCES[source]) - 1))
    lo, hi = draw(st.sampled_from(REGIONS[source]))
    return draw(st.integers(lo, max(lo, hi - 1)))


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    source = draw(st.integers(0, len(SOURCES) - 1))
    data = bytearray(SOURCES[source])
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "flip", "word", "word", "truncate", "splice"]))
        at = draw(position(source))
        if kind == "flip":
            data[at % len(data)] ^= draw(st.integers(1, 255))
        elif kind == "word":
            value = draw(st.sampled_from(BOUNDARY)).to_bytes(4, "little")
            at = at % len(data) & ~3
            data[at:at + 4] = value[: len(data) - at]
        elif kind == "truncate":
            del data[at:]
            if not data:
                break
        else:  # copy a chunk of another object over this one
            other = SOURCES[draw(st.integers(0, len(SOURCES) - 1))]
            start = draw(st.integers(0, len(other) - 1))
            chunk = other[start:start + draw(st.integers(1, 256))]
            data[at:at + len(chunk)] = chunk
    return bytes(data)


@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_objects_load_or_fail_cleanly(data: bytes) -> None:
    start = time.perf_counter()
    try:
        obj = load_object(data, path="fuzz.o")
    except UserInputError as e:
        message = str(e)
        assert message.startswith("fuzz.o") and "\n" not in message
        assert hasattr(e, "section") and hasattr(e, "offset")
    else:
        text = describe(obj)
        assert text.startswith("fuzz.o: eBPF object")
        for program in obj.programs:
            assert len(program.to_bytes()) == 8 * len(program)
    assert time.perf_counter() - start < PER_CALL_LIMIT


def test_every_prefix_of_an_object() -> None:
    """Truncation at every 8th byte of the smallest object."""
    data = min(SOURCES, key=len)
    for cut in range(0, len(data), 8):
        try:
            load_object(data[:cut], path="cut.o")
        except UserInputError:
            pass


@settings(max_examples=MAX_EXAMPLES // 5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_programs_of_mutated_objects_get_a_verdict(data: bytes) -> None:
    """Whatever a damaged object decodes to (BTF prototypes of global
    functions, registers beyond r10, jumps anywhere), ``verify`` returns a
    verdict; it does not raise.  (The instruction limit is lowered: a
    mutated loop may never end, and the limit itself is tested elsewhere.)"""
    from ebpfvm.verifier import explore, verify
    try:
        obj = load_object(data, path="fuzz.o")
    except UserInputError:
        return
    limit, explore.COMPLEXITY_LIMIT = explore.COMPLEXITY_LIMIT, 20_000
    try:
        for program in obj.programs:
            assert verify(program, log_level=1).verdict in ("accept", "reject")
    finally:
        explore.COMPLEXITY_LIMIT = limit
