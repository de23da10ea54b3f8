"""The BTF parser, resolver and .BTF.ext reader.

BTF blobs are encoded here by a small writer that follows
Documentation/bpf/btf.rst on its own, so the parser is checked against the
format rather than against itself; real objects from examples/ check what
clang emits.
"""

from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from hypothesis import given
from hypothesis import strategies as st

from ebpfvm.btf import BtfError, CoreReloKind, Kind, parse_btf, parse_btf_ext, skip_modifiers, type_name, type_size
from ebpfvm.btf.fixup import fixup_datasecs
from ebpfvm.btf.types import Array, Datasec, Enum, Func, FuncProto, Int, Struct, Var

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


class BtfWriter:
    """Builds .BTF bytes: ``add_*`` return the new type's id."""

    def __init__(self) -> None:
        self.strings = bytearray(b"\0")
        self.records: list[bytes] = []

    def s(self, text: str) -> int:
        if not text:
            return 0
        off = len(self.strings)
        self.strings += text.encode() + b"\0"
        return off

    def _add(self, name: str, kind: int, vlen: int, size_or_type: int, extra: bytes = b"",
             kind_flag: int = 0) -> int:
        info = (kind_flag << 31) | (kind << 24) | vlen
        self.records.append(struct.pack("<III", self.s(name), info, size_or_type) + extra)
        return len(self.records)

    def int_(self, name: str, size: int, bits: int | None = None, signed: bool = False) -> int:
        encoding = 1 if signed else 0
        return self._add(name, 1, 0, size, struct.pack("<I", (encoding << 24) | (bits or size * 8)))

    def ref(self, kind: int, target: int, name: str = "") -> int:  # PTR, TYPEDEF, VOLATILE, CONST, ...
        return self._add(name, kind, 0, target)

    def array(self, elem: int, index: int, n: int) -> int:
        return self._add("", 3, 0, 0, struct.pack("<III", elem, index, n))

    def struct(self, name: str, size: int, members: list[tuple[str, int, int]], kind: int = 4,
               bitfields: bool = False) -> int:
        extra = b"".join(struct.pack("<III", self.s(n), t, off) for n, t, off in members)
        return self._add(name, kind, len(members), size, extra, int(bitfields))

    def enum(self, name: str, values: list[tuple[str, int]], signed: bool = False) -> int:
        extra = b"".join(struct.pack("<Ii", self.s(n), v) for n, v in values)
        return self._add(name, 6, len(values), 4, extra, int(signed))

    def enum64(self, name: str, values: list[tuple[str, int]]) -> int:
        extra = b"".join(struct.pack("<III", self.s(n), v & 0xFFFFFFFF, v >> 32) for n, v in values)
        return self._add(name, 19, len(values), 8, extra)

    def func_proto(self, ret: int, params: list[tuple[str, int]]) -> int:
        extra = b"".join(struct.pack("<II", self.s(n), t) for n, t in params)
        return self._add("", 13, len(params), ret, extra)

    def func(self, name: str, proto: int, linkage: int = 1) -> int:
        return self._add(name, 12, linkage, proto)

    def var(self, name: str, t: int, linkage: int = 1) -> int:
        return self._add(name, 14, 0, t, struct.pack("<I", linkage))

    def datasec(self, name: str, size: int, vars_: list[tuple[int, int, int]]) -> int:
        extra = b"".join(struct.pack("<III", *v) for v in vars_)
        return self._add(name, 15, len(vars_), size, extra)

    def raw(self, blob: bytes) -> None:
        self.records.append(blob)

    def build(self, strings: bytes | None = None) -> bytes:
        types = b"".join(self.records)
        strs = bytes(self.strings) if strings is None else strings
        return struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strs)) + types + strs


def example_btf(name: str) -> tuple[bytes, bytes]:
    with open(EXAMPLES / f"{name}.o", "rb") as f:
        elf = ELFFile(f)
        return elf.get_section_by_name(".BTF").data(), elf.get_section_by_name(".BTF.ext").data()


# -- every kind --------------------------------------------------------------

def test_all_kinds_parse() -> None:
    w = BtfWriter()
    u32 = w.int_("unsigned int", 4)                                     # 1
    s8 = w.int_("signed char", 1, signed=True)                          # 2
    ptr = w.ref(2, u32)                                                 # 3
    arr = w.array(u32, u32, 4)                                          # 4
    st_ = w.struct("pair", 8, [("a", u32, 0), ("b", u32, 32)])          # 5
    un = w.struct("either", 4, [("x", u32, 0), ("y", s8, 0)], kind=5)  # 6
    en = w.enum("color", [("RED", 0), ("BLUE", -1)], signed=True)       # 7
    fwd = w._add("later", 7, 0, 0, kind_flag=1)                         # 8
    td = w.ref(8, u32, "u32_t")                                         # 9
    vol = w.ref(9, td)                                                  # 10
    cst = w.ref(10, vol)                                                # 11
    rst = w.ref(11, ptr)                                                # 12
    proto = w.func_proto(u32, [("x", u32), ("p", ptr)])                 # 13
    fn = w.func("add", proto, linkage=1)                                # 14
    var = w.var("counter", u32)                                         # 15
    sec = w.datasec(".data", 4, [(var, 0, 4)])                          # 16
    flt = w._add("double", 16, 0, 8)                                    # 17
    tag = w._add("tag", 17, 0, st_, struct.pack("<i", 1))               # 18
    ttag = w._add("user", 18, 0, u32)                                   # 19
    e64 = w.enum64("big", [("HUGE", 1 << 40)])                          # 20
    bits = w.struct("flags", 4, [("lo", u32, (3 << 24) | 0), ("hi", u32, (5 << 24) | 3)], bitfields=True)  # 21
    btf = parse_btf(w.build())

    assert len(btf) == 22 and btf[0].kind is Kind.VOID
    assert isinstance(btf[u32], Int) and btf[u32].size == 4 and not btf[u32].signed and btf[u32].bits == 32
    assert btf[s8].signed
    assert btf[ptr].kind is Kind.PTR and btf[ptr].type == u32
    assert isinstance(btf[arr], Array) and (btf[arr].type, btf[arr].nelems) == (u32, 4)
    assert isinstance(btf[st_], Struct) and [m.name for m in btf[st_].members] == ["a", "b"]
    assert btf[st_].members[1].bit_offset == 32
    assert btf[un].kind is Kind.UNION
    assert isinstance(btf[en], Enum) and btf[en].signed and btf[en].values[1].value == -1
    assert btf[fwd].kind is Kind.FWD and btf[fwd].is_union
    assert (btf[td].kind, btf[vol].kind, btf[cst].kind, btf[rst].kind) == (
        Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT)
    assert isinstance(btf[proto], FuncProto) and [p.name for p in btf[proto].params] == ["x", "p"]
    assert isinstance(btf[fn], Func) and btf[fn].type == proto and btf[fn].linkage == 1
    assert isinstance(btf[var], Var) and btf[var].linkage == 1
    assert isinstance(btf[sec], Datasec) and btf[sec].vars[0].type == var
    assert btf[flt].kind is Kind.FLOAT and btf[flt].size == 8
    assert btf[tag].kind is Kind.DECL_TAG and btf[tag].component_idx == 1
    assert btf[ttag].kind is Kind.TYPE_TAG
    assert btf[e64].kind is Kind.ENUM64 and btf[e64].values[0].value == 1 << 40
    lo, hi = btf[bits].members
    assert (lo.bitfield_size, lo.bit_offset, hi.bitfield_size, hi.bit_offset) == (3, 0, 5, 3)
    assert btf.find("pair", Kind.STRUCT) is btf[st_]

    assert type_size(btf, cst) == 4 and type_size(btf, ptr) == 8 and type_size(btf, arr) == 16
    assert type_size(btf, var) == 4 and type_size(btf, en) == 4
    assert skip_modifiers(btf, cst) is btf[u32]
    assert type_name(btf, st_) == "struct pair"
    assert type_name(btf, un) == "union either"
    assert type_name(btf, cst) == "const volatile u32_t"
    assert type_name(btf, ptr) == "unsigned int *"
    assert type_name(btf, arr) == "unsigned int[4]"
    assert type_name(btf, proto) == "unsigned int (*)(unsigned int, unsigned int *)"
    for no_size in (0, fn, proto, fwd):
        with pytest.raises(BtfError, match="has no size"):
            type_size(btf, no_size)


@given(st.lists(st.integers(0, 6), max_size=6), st.lists(st.sampled_from([8, 9, 10, 11, 18]), max_size=6),
       st.sampled_from([1, 2, 4, 8]))
def test_size_of_nested_arrays_is_the_product(dims: list[int], modifiers: list[int], base: int) -> None:
    """Arrays of arrays behind typedef/const/volatile/... chains: the size is
    the element size times every dimension."""
    w = BtfWriter()
    current = w.int_("int_t", base)
    index = current
    for i, n in enumerate(dims):
        current = w.array(current, index, n)
        if i < len(modifiers):
            current = w.ref(modifiers[i], current, "alias" if modifiers[i] in (8, 18) else "")
    btf = parse_btf(w.build())
    expected = base
    for n in dims:
        expected *= n
    assert type_size(btf, current) == expected


# -- hostile BTF -------------------------------------------------------------

def test_reference_loop_is_an_error_not_a_hang() -> None:
    w = BtfWriter()
    w.ref(8, 2, "a")  # 1: typedef a -> 2
    w.ref(10, 1)      # 2: const -> 1
    w.array(1, 1, 3)  # 3: array of the loop
    w.ref(10, 5)      # 4: const -> 5
    w.ref(9, 4)       # 5: volatile -> 4 (a loop without names)
    btf = parse_btf(w.build())
    start = time.monotonic()
    for type_id in (1, 2, 3):
        with pytest.raises(BtfError, match="loop"):
            type_size(btf, type_id)
    with pytest.raises(BtfError, match="loop"):
        skip_modifiers(btf, 1)
    assert type_name(btf, 1) == "a"  # a typedef is printed by name
    assert type_name(btf, 4).startswith("const volatile const") and type_name(btf, 4).endswith("...")
    assert time.monotonic() - start < 1


def _corrupt(blob: bytes, offset: int, value: bytes) -> bytes:
    return blob[:offset] + value + blob[offset + len(value):]


def _good_blob() -> bytes:
    w = BtfWriter()
    u32 = w.int_("unsigned int", 4)
    w.struct("pair", 8, [("a", u32, 0), ("b", u32, 32)])
    return w.build()


HOSTILE = {
    "empty": (b"", "too short"),
    "bad magic": (_corrupt(_good_blob(), 0, b"\x00\x00"), "bad magic"),
    "big endian": (_corrupt(_good_blob(), 0, b"\xeb\x9f"), "big-endian"),
    "version": (_corrupt(_good_blob(), 2, b"\x02"), "version"),
    "header length": (_corrupt(_good_blob(), 4, struct.pack("<I", 1 << 30)), "header length"),
    "huge type section": (_corrupt(_good_blob(), 12, struct.pack("<I", 0xFFFFFFF0)), "outside"),
    "huge string section": (_corrupt(_good_blob(), 20, struct.pack("<I", 0xFFFFFFF0)), "outside"),
    "unterminated strings": (_good_blob()[:-1] + b"x", "NUL"),
    "unknown kind": (_corrupt(_good_blob(), 24 + 4, struct.pack("<I", 31 << 24)), "unknown kind"),
    "name offset": (_corrupt(_good_blob(), 24, struct.pack("<I", 0xFFFF)), "outside the string table"),
    # The struct claims 0xffff members; the section holds two.
    "huge vlen": (_corrupt(_good_blob(), 24 + 16 + 4, struct.pack("<I", (4 << 24) | 0xFFFF)), "needs"),
    # A member refers to type 77 of 3.
    "dangling type": (_corrupt(_good_blob(), 24 + 16 + 12 + 4, struct.pack("<I", 77)), "refers to type"),
    "int bits": (_corrupt(_good_blob(), 24 + 12, struct.pack("<I", 200)), "does not fit"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_btf_gives_one_clear_error(case: str) -> None:
    blob, message = HOSTILE[case]
    with pytest.raises(BtfError, match=message) as info:
        parse_btf(blob)
    err = info.value
    assert err.section == ".BTF" and isinstance(err.offset, int)
    assert "\n" not in str(err)


def test_truncations_of_a_real_btf_never_escape() -> None:
    blob, _ = example_btf("xdp_firewall")
    for cut in range(0, len(blob), 7):
        try:
            parse_btf(blob[:cut])
        except BtfError:
            pass


# -- real objects -------------------------------------------------------------

def test_clang_btf_of_the_firewall() -> None:
    blob, ext_blob = example_btf("xdp_firewall")
    btf = parse_btf(blob)
    key = btf.find("ipv4_lpm_key", Kind.STRUCT)
    assert isinstance(key, Struct) and type_size(btf, key.id) == 8
    assert [(m.name, m.bit_offset, type_name(btf, m.type)) for m in key.members] == [
        ("prefixlen", 0, "__u32"), ("addr", 32, "__u32")]
    func = btf.find("xdp_firewall", Kind.FUNC)
    assert type_name(btf, btf[func.type].params[0].type) == "struct xdp_md *"
    maps = btf.find(".maps", Kind.DATASEC)
    assert [btf[v.type].name for v in maps.vars] == ["blocked_nets", "blocked_ports", "verdicts"]

    ext = parse_btf_ext(ext_blob, btf)
    assert [(f.section, f.insn_off, f.name) for f in ext.func_info] == [("xdp", 0, "xdp_firewall")]
    source = (EXAMPLES / "xdp_firewall.c").read_text().splitlines()
    assert len(ext.line_info) > 20
    for rec in ext.line_info:  # every record points at the source line it quotes
        assert rec.file == "./xdp_firewall.c"
        assert not rec.text or source[rec.line - 1] == rec.text  # clang leaves some text empty
    assert ext.core_relocations == ()


def test_fixup_fills_datasec_sizes_and_sorted_offsets() -> None:
    blob, _ = example_btf("global_data")
    btf = parse_btf(blob)
    rodata = btf.find(".rodata", Kind.DATASEC)
    assert rodata.size == 0 and all(v.offset == 0 for v in rodata.vars)  # as clang leaves them
    sizes = {".rodata": 8, ".data": 8, ".bss": 12, "license": 4}
    offsets = {(".rodata", "weight"): 0, (".rodata", "bias"): 4, (".data", "runs"): 0,
               (".bss", "total_len"): 0, (".bss", "last_score"): 8, ("license", "LICENSE"): 0}
    fixed = parse_btf(fixup_datasecs(blob, btf, sizes, offsets))
    got = fixed.find(".rodata", Kind.DATASEC)
    assert got.size == 8
    assert [(fixed[v.type].name, v.offset, v.size) for v in got.vars] == [("weight", 0, 4), ("bias", 4, 4)]
    bss = fixed.find(".bss", Kind.DATASEC)
    assert [(fixed[v.type].name, v.offset) for v in bss.vars] == [("total_len", 0), ("last_score", 8)]
    with pytest.raises(BtfError, match="no symbol"):
        fixup_datasecs(blob, btf, sizes, {})


# -- .BTF.ext ------------------------------------------------------------------

def _ext_blob(w: BtfWriter, func_rec: int = 8, func_count: int = 1, line_rec: int = 16,
              core: bool = True) -> bytes:
    sec = w.s("xdp")
    file_off, line_off, access = w.s("a.c"), w.s("return 0;"), w.s("0:1")
    func = struct.pack("<I", func_rec) + struct.pack("<II", sec, func_count) + \
        struct.pack("<II", 0, 4).ljust(func_rec, b"\0")
    line = struct.pack("<I", line_rec) + struct.pack("<II", sec, 1) + \
        struct.pack("<IIII", 8, file_off, line_off, (12 << 10) | 5).ljust(line_rec, b"\0")
    relo = struct.pack("<I", 16) + struct.pack("<II", sec, 1) + struct.pack("<IIII", 16, 2, access, 0)
    body = func + line + (relo if core else b"")
    header = struct.pack("<HBBIIIIIII", 0xEB9F, 1, 0, 32, 0, len(func), len(func), len(line),
                         len(func) + len(line), len(relo) if core else 0)
    return header + body


def _ext_btf() -> BtfWriter:
    w = BtfWriter()
    u32 = w.int_("int", 4, signed=True)                           # 1
    w.struct("task", 8, [("pid", u32, 0), ("tgid", u32, 32)])     # 2
    proto = w.func_proto(u32, [])                                 # 3
    w.func("prog", proto)                                         # 4
    return w


def test_btf_ext_records() -> None:
    w = _ext_btf()
    ext_blob = _ext_blob(w)
    btf = parse_btf(w.build())
    ext = parse_btf_ext(ext_blob, btf)
    assert [(f.section, f.insn_off, f.type_id, f.name) for f in ext.func_info] == [("xdp", 0, 4, "prog")]
    (line,) = ext.line_info
    assert (line.section, line.insn_off, line.file, line.line, line.column, line.text) == (
        "xdp", 8, "a.c", 12, 5, "return 0;")
    (core,) = ext.core_relocations
    assert core.kind is CoreReloKind.FIELD_BYTE_OFFSET and core.target == "struct task.tgid"
    assert core.describe() == "xdp+0x10: byte_off struct task.tgid (access 0:1)"


def test_btf_ext_larger_records_are_skipped_over() -> None:
    w = _ext_btf()
    ext_blob = _ext_blob(w, func_rec=12, line_rec=20)
    ext = parse_btf_ext(ext_blob, parse_btf(w.build()))
    assert len(ext.func_info) == 1 and ext.line_info[0].line == 12


@pytest.mark.parametrize("kwargs, message", [
    ({"func_rec": 4}, "record size"),
    ({"func_rec": 10}, "record size"),
    ({"func_count": 1000}, "do not fit"),
    ({"func_count": 0}, "no records"),
])
def test_hostile_btf_ext(kwargs: dict, message: str) -> None:  # type: ignore[type-arg]
    w = _ext_btf()
    ext_blob = _ext_blob(w, **kwargs)
    with pytest.raises(BtfError, match=message) as info:
        parse_btf_ext(ext_blob, parse_btf(w.build()))
    assert info.value.section == ".BTF.ext"


def test_btf_ext_names_must_be_strings_of_the_btf() -> None:
    w = _ext_btf()
    ext_blob = _ext_blob(w)
    short = BtfWriter()
    short.int_("int", 4)
    with pytest.raises(BtfError, match="outside the string table|type id"):
        parse_btf_ext(ext_blob, parse_btf(short.build()))
