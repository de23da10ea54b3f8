"""The ELF loader on the example objects and the loader fixtures, and its
errors on targeted corruptions of them.

Expected values come from the C sources (examples/*.c,
tests/fixtures/*.c) and from llvm-objdump of the committed objects; the
corruptions are made with pyelftools' own view of the file, independently
of ebpfvm's reader.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from ebpfvm.btf import CoreReloKind, Kind, parse_btf, type_name
from ebpfvm.elf import (
    BtfError,
    ElfError,
    ElfFormatError,
    MapDefinitionError,
    ProgramNotFound,
    RelocationError,
    classify,
    load_object,
)
from ebpfvm.elf.inspect import inspect_command
from ebpfvm.elf.sections import SECTION_DEFS
from ebpfvm.errors import UserInputError
from ebpfvm.isa.instruction import Instruction
from ebpfvm.kernel.constants import ATTACH_TYPE_NAMES, PROG_TYPE_NAMES

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
FIXTURES = ROOT / "tests" / "fixtures"

LDDW, CALL = 0x18, 0x85


def example(name: str):  # type: ignore[no-untyped-def]
    return load_object(EXAMPLES / f"{name}.o")


def fixture(name: str):  # type: ignore[no-untyped-def]
    return load_object(FIXTURES / f"{name}.o")


# -- what the examples hold ----------------------------------------------------

EXAMPLE_SHAPES = {
    # example: [(program, section, prog_type, expected_attach_type)], [(map, type, key, value, max_entries)]
    "xdp_firewall": ([("xdp_firewall", "xdp", "xdp", "xdp")],
                     [("blocked_nets", "lpm_trie", 8, 4, 64), ("blocked_ports", "hash", 2, 8, 128),
                      ("verdicts", "array", 4, 8, 4)]),
    "tc_rewrite": ([("tc_rewrite", "tc", "sched_cls", None)], [("rewrites", "array", 4, 8, 1)]),
    "socket_filter": ([("dns_only", "socket", "socket_filter", None)], [("counts", "array", 4, 8, 2)]),
    "kprobe_counter": ([("count_unlinkat", "kprobe/do_unlinkat", "kprobe", None)],
                       [("calls", "percpu_array", 4, 8, 1), ("events", "ringbuf", 0, 0, 16384)]),
    "global_data": ([("score_packet", "socket", "socket_filter", None)],
                    [(".rodata", "array", 4, 8, 1), (".data", "array", 4, 8, 1), (".bss", "array", 4, 12, 1)]),
    "tail_calls": ([("handle_ipv4", "xdp", "xdp", "xdp"), ("handle_ipv6", "xdp", "xdp", "xdp"),
                    ("dispatch", "xdp", "xdp", "xdp")],
                   [("jump_table", "prog_array", 4, 4, 3), ("hits", "array", 4, 8, 4)]),
    "loop_sum": ([("sum_squares", "socket", "socket_filter", None)],
                 [("result", "array", 4, 8, 2), (".rodata", "array", 4, 16, 1)]),
    "map_in_map": ([("count_by_protocol", "xdp", "xdp", "xdp")],
                   [("tcp_counts", "array", 4, 8, 1), ("udp_counts", "array", 4, 8, 1),
                    ("by_slot", "array_of_maps", 4, 4, 3), ("by_proto", "hash_of_maps", 4, 4, 8)]),
}


@pytest.mark.parametrize("name", sorted(EXAMPLE_SHAPES))
def test_example_programs_and_maps(name: str) -> None:
    obj = example(name)
    programs, maps = EXAMPLE_SHAPES[name]
    assert [(p.name, p.section, p.prog_type, p.expected_attach_type) for p in obj.programs] == programs
    assert [(m.name, m.map_type, m.key_size, m.value_size, m.max_entries) for m in obj.maps] == maps
    assert obj.license == "GPL" and obj.kern_version == 0
    assert obj.btf is not None and obj.btf_ext is not None and obj.core_relocations == ()
    for program in obj.programs:
        assert program.maps is obj.maps  # one tuple shared by every program
        assert program.license == "GPL" and program.source == str(EXAMPLES / f"{name}.o")
        assert program.issues() == []
        assert program.line_info and program.line_info[0].insn == 0
    assert obj.kernel_btf is not None


def test_btf_map_key_and_value_types_are_nameable() -> None:
    obj = example("xdp_firewall")
    names = [(type_name(obj.btf, m.btf_key_type_id), type_name(obj.btf, m.btf_value_type_id)) for m in obj.maps]
    assert names == [("struct ipv4_lpm_key", "__u32"), ("__u16", "__u64"), ("__u32", "__u64")]
    assert obj.map("blocked_nets").flags == 1  # BPF_F_NO_PREALLOC


def test_map_references_become_indices() -> None:
    """Every lddw the firewall relocates names map 0, 1 or 2 (src 1, imm = index)."""
    program = example("xdp_firewall").program("xdp_firewall")
    refs = [(pc, insn.imm) for pc, insn in enumerate(program.instructions) if insn.opcode == LDDW]
    assert {imm for _, imm in refs} == {0, 1, 2}
    assert all(program[pc].src == 1 and program[pc + 1].imm == 0 for pc, _ in refs)
    # objdump: insn 49 loads blocked_nets, insn 115 blocked_ports.
    assert program[49].imm == 0 and program[115].imm == 1


def test_global_data_and_subprogram_linking() -> None:
    obj = example("global_data")
    rodata, data, bss = obj.maps
    assert rodata.read_only and rodata.initial_value == struct.pack("<II", 3, 7)  # weight, bias
    assert not data.read_only and data.initial_value == struct.pack("<Q", 100)  # runs
    assert bss.initial_value == bytes(12)  # total_len, last_score
    assert all(m.extra.get("global_data") for m in obj.maps)
    assert obj.btf[rodata.btf_value_type_id].kind is Kind.DATASEC

    program = obj.program("score_packet")
    # libbpf's order: shift at its first call, scale (called by shift) right after it, then clamp.
    assert program.labels == {0: "score_packet", 19: "shift", 26: "scale", 31: "clamp"}
    assert obj.program_details("score_packet").functions == (
        ("score_packet", 0), ("shift", 19), ("scale", 26), ("clamp", 31))
    assert len(program) == 35 and program.subprogram_entries() == (0, 19, 26, 31)
    # insn 11: call shift; 14: call clamp; 19 (first of shift): call scale.
    for pc, target in ((11, 19), (14, 31), (19, 26)):
        assert program[pc].opcode == CALL and program[pc].src == 1
        assert pc + 1 + program[pc].imm == target
    # runs is .data (map 1) + 0, total_len .bss (map 2) + 0, last_score .bss + 8, bias .rodata + 4.
    assert (program[1].src, program[1].imm, program[2].imm) == (2, 1, 0)
    assert (program[6].src, program[6].imm, program[7].imm) == (2, 2, 0)
    assert (program[15].src, program[15].imm, program[16].imm) == (2, 2, 8)
    assert (program[20].src, program[20].imm, program[21].imm) == (2, 0, 4)


def test_callback_address_is_a_pseudo_func_lddw() -> None:
    program = example("loop_sum").program("sum_squares")
    assert program.labels == {0: "sum_squares", 37: "add_square"}
    head = program[7]
    assert (head.opcode, head.src) == (LDDW, 4) and 7 + 1 + head.imm == 37
    assert program[10] == Instruction(CALL, 0, 0, 0, 181)  # bpf_loop
    assert 37 in program.subprogram_entries()


def test_prog_array_and_map_in_map_initial_slots() -> None:
    tails = example("tail_calls")
    assert tails.map("jump_table").initial_slots == ((0, "handle_ipv4"), (1, "handle_ipv6"))
    mim = example("map_in_map")
    by_slot, by_proto = mim.map("by_slot"), mim.map("by_proto")
    assert by_slot.initial_slots == ((0, "tcp_counts"), (1, "udp_counts"))
    assert by_proto.initial_slots == ()
    for outer in (by_slot, by_proto):
        inner = outer.inner
        assert (inner.name, inner.map_type, inner.key_size, inner.value_size, inner.max_entries) == (
            f"{outer.name}.inner", "array", 4, 8, 1)


def test_line_info_quotes_the_source() -> None:
    program = example("global_data").program("score_packet")
    source = (EXAMPLES / "global_data.c").read_text().splitlines()
    assert program.line_info[0].text == "\t__u32 len = skb->len;"
    slots = [li.insn for li in program.line_info]
    assert slots == sorted(slots) and len(set(slots)) == len(slots)
    for li in program.line_info:
        assert li.file == "./global_data.c" and 0 <= li.insn < len(program)
        assert not li.text or source[li.line - 1] == li.text
    # The subprograms' lines moved with them: scale's body is at slots 26.. .
    assert any(li.insn >= 26 and "weight" in li.text for li in program.line_info)


def test_program_lookup() -> None:
    obj = example("tail_calls")
    assert obj.program("dispatch").name == "dispatch"
    assert obj.program("xdp").name == "handle_ipv4"  # by section: the first program in it
    with pytest.raises(ProgramNotFound, match="handle_ipv4, handle_ipv6, dispatch") as info:
        obj.program("nope")
    assert isinstance(info.value, UserInputError)


# -- fixtures --------------------------------------------------------------------

def test_legacy_maps_section_without_btf() -> None:
    obj = fixture("legacy_maps")
    assert obj.btf is None and obj.kernel_btf is None
    assert obj.kern_version == 0x050A00
    assert [(m.name, m.map_type, m.key_size, m.value_size, m.max_entries, m.flags) for m in obj.maps] == [
        ("pkt_count", "array", 4, 8, 1, 0), ("lookup", "hash", 4, 4, 16, 1)]
    program = obj.program("legacy_counter")
    assert program.line_info == ()
    assert sorted({insn.imm for insn in program.instructions if insn.opcode == LDDW}) == [0, 1]


def test_many_programs_shared_subprograms_and_custom_data_sections() -> None:
    obj = fixture("multi_prog")
    assert [(p.name, p.section, p.prog_type, p.expected_attach_type) for p in obj.programs] == [
        ("xdp_first", "xdp", "xdp", "xdp"), ("xdp_second", "xdp", "xdp", "xdp"),
        ("tc_shared", "tc", "sched_cls", None), ("probe_message", "kprobe/do_unlinkat", "kprobe", None),
        ("optional_ingress", "cgroup_skb/ingress", "cgroup_skb", "cgroup_inet_ingress")]
    # `twice` is linked into two programs of two sections, at different places.
    assert obj.program_details("xdp_first").functions == (
        ("xdp_first", 0), ("twice_plus_threshold", 7), ("twice", 13))
    assert obj.program_details("tc_shared").functions == (("tc_shared", 0), ("twice", 11))
    # Two callbacks in one program.
    second = obj.program("xdp_second")
    assert obj.program_details("xdp_second").functions == (
        ("xdp_second", 0), ("sum_entry", 23), ("count_up", 29))
    funcs = [(pc, pc + 1 + insn.imm) for pc, insn in enumerate(second.instructions)
             if insn.opcode == LDDW and insn.src == 4]
    assert funcs == [(6, 23), (12, 29)]  # section offsets 0x68 and 0x98, the program starting at 0x38
    maps = {m.name: m for m in obj.maps}
    assert list(maps) == ["table", ".rodata.config", ".data.counters", ".rodata.str1.1"]
    assert maps[".rodata.config"].read_only and maps[".rodata.config"].initial_value == struct.pack("<I", 5)
    assert maps[".data.counters"].initial_value == struct.pack("<QQ", 1, 2)
    assert maps[".rodata.str1.1"].read_only and maps[".rodata.str1.1"].initial_value == b"unlink\n\0"


def test_core_relocations_are_reported() -> None:
    obj = fixture("core_read")
    assert [(c.kind, c.target) for c in obj.core_relocations] == [
        (CoreReloKind.FIELD_BYTE_OFFSET, "struct task_struct.tgid"),
        (CoreReloKind.FIELD_EXISTS, "struct task_struct.pid")]
    details = obj.program_details("read_task")
    assert details.needs_core and [slot for slot, _ in details.core_relocations] == [3, 10]
    out = io.StringIO()
    assert inspect_command(str(FIXTURES / "core_read.o"), out) == 0
    assert "NEEDS CO-RE: 2 relocations" in out.getvalue()
    assert "byte_off struct task_struct.tgid" in out.getvalue()


# -- section names ------------------------------------------------------------------

@pytest.mark.parametrize("section, prog_type, attach", [
    ("xdp", "xdp", "xdp"), ("xdp.frags", "xdp", "xdp"), ("xdp/devmap", "xdp", "xdp_devmap"),
    ("tc", "sched_cls", None), ("classifier", "sched_cls", None), ("action", "sched_act", None),
    ("tc/ingress", "sched_cls", "tcx_ingress"), ("socket", "socket_filter", None),
    ("kprobe/do_sys_open", "kprobe", None), ("kretprobe/do_sys_open", "kprobe", None), ("kprobe", "kprobe", None),
    ("uprobe/bin:func", "kprobe", None), ("tracepoint/syscalls/sys_enter_open", "tracepoint", None),
    ("tp/sched/sched_switch", "tracepoint", None), ("raw_tracepoint/sys_enter", "raw_tracepoint", None),
    ("raw_tp/sys_enter", "raw_tracepoint", None), ("raw_tp.w/x", "raw_tracepoint_writable", None),
    ("cgroup_skb/ingress", "cgroup_skb", "cgroup_inet_ingress"),
    ("cgroup_skb/egress", "cgroup_skb", "cgroup_inet_egress"), ("cgroup/skb", "cgroup_skb", None),
    ("cgroup/sock", "cgroup_sock", "cgroup_inet_sock_create"),
    ("cgroup/connect4", "cgroup_sock_addr", "cgroup_inet4_connect"),
    ("fentry/do_unlinkat", "tracing", "trace_fentry"), ("fexit/do_unlinkat", "tracing", "trace_fexit"),
    ("lsm/file_open", "lsm", "lsm_mac"), ("perf_event", "perf_event", None),
    ("sk_skb/stream_parser", "sk_skb", "sk_skb_stream_parser"), ("sk_skb", "sk_skb", None),
    ("sk_msg", "sk_msg", "sk_msg_verdict"), ("lwt_in", "lwt_in", None), ("lwt_xmit", "lwt_xmit", None),
    ("flow_dissector", "flow_dissector", "flow_dissector"), ("syscall", "syscall", None),
    ("sockops", "sock_ops", "cgroup_sock_ops"), ("?xdp", "xdp", "xdp"),
])
def test_section_names_follow_libbpf(section: str, prog_type: str, attach: str | None) -> None:
    found = classify(section)
    assert found is not None and (found.prog_type, found.expected_attach_type) == (prog_type, attach)


@pytest.mark.parametrize("section", ["tc/foo", "socketx", "xdpfoo", "kprobex/a", "maps", ".text", ""])
def test_unknown_section_names(section: str) -> None:
    assert classify(section) is None


def test_section_table_names_are_kernel_names() -> None:
    for d in SECTION_DEFS:
        assert d.prog_type in PROG_TYPE_NAMES
        assert d.expected_attach_type is None or d.expected_attach_type in ATTACH_TYPE_NAMES


# -- inspect ------------------------------------------------------------------------

def test_inspect_output() -> None:
    out = io.StringIO()
    assert inspect_command(str(EXAMPLES / "xdp_firewall.o"), out) == 0
    text = out.getvalue()
    assert 'license "GPL", 1 program, 3 maps, BTF 40 types' in text
    assert "xdp_firewall  xdp      xdp   xdp            144" in text
    assert "0  blocked_nets   lpm_trie  8 (struct ipv4_lpm_key)  4 (__u32)           64  0x1 (no_prealloc)" in text
    assert "xdp      0x188     49  R_BPF_64_64  blocked_nets   map blocked_nets (map 0)" in text
    assert "BTF.ext: 1 func_info record, 60 line_info records, 0 CO-RE relocations" in text


def test_inspect_global_data_and_slots() -> None:
    out = io.StringIO()
    inspect_command(str(EXAMPLES / "global_data.o"), out)
    text = out.getvalue()
    assert "score_packet  socket   socket_filter  -               35  shift@19, scale@26, clamp@31" in text
    assert ".rodata: read-only (frozen), initial value 0300000007000000" in text
    out = io.StringIO()
    inspect_command(str(EXAMPLES / "tail_calls.o"), out)
    assert "jump_table: initial slots [0]=handle_ipv4 [1]=handle_ipv6" in out.getvalue()


def test_inspect_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.o"
    bad.write_bytes(b"\x7fELF" + bytes(10))
    assert inspect_command(str(bad), io.StringIO()) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.o" in err and "truncated" in err


# -- hostile objects ------------------------------------------------------------------

def _elf(name: str = "global_data", base: Path = EXAMPLES) -> tuple[bytes, ELFFile]:
    data = (base / f"{name}.o").read_bytes()
    return data, ELFFile(io.BytesIO(data))


def _patch(data: bytes, offset: int, value: bytes) -> bytes:
    return data[:offset] + value + data[offset + len(value):]


def _section_header(elf: ELFFile, name: str) -> int:
    for i, sec in enumerate(elf.iter_sections()):
        if sec.name == name:
            return elf["e_shoff"] + i * elf["e_shentsize"]
    raise KeyError(name)


def _expect(data: bytes, cls: type, message: str, section: str | None = "any") -> ElfError | BtfError:
    with pytest.raises(cls, match=message) as info:
        load_object(data, path="evil.o")
    err = info.value
    assert isinstance(err, UserInputError) and err.path == "evil.o"
    assert hasattr(err, "section") and hasattr(err, "offset")
    if section != "any":
        assert err.section == section
    assert "\n" not in str(err) and str(err).startswith("evil.o: ")
    return err


def test_truncated_file() -> None:
    data, _ = _elf()
    _expect(data[:40], ElfFormatError, "truncated")
    _expect(data[:1000], ElfFormatError, "do not fit|past the end|outside the file")
    _expect(b"", ElfFormatError, "truncated")


def test_wrong_machine_class_endianness_and_type() -> None:
    data, _ = _elf()
    _expect(_patch(data, 18, struct.pack("<H", 62)), ElfFormatError, "not EM_BPF")
    _expect(_patch(data, 4, b"\x01"), ElfFormatError, "ELFCLASS64")
    _expect(_patch(data, 5, b"\x02"), ElfFormatError, "big-endian")
    _expect(_patch(data, 16, struct.pack("<H", 2)), ElfFormatError, "relocatable")
    _expect(_patch(data, 0, b"\x7fELG"), ElfFormatError, "not an ELF")


def test_bad_section_indices() -> None:
    data, elf = _elf()
    _expect(_patch(data, 62, struct.pack("<H", 999)), ElfFormatError, "section name table index")
    # The symbol table's link to its string table points nowhere.
    symtab = _section_header(elf, ".symtab")
    _expect(_patch(data, symtab + 40, struct.pack("<I", 999)), ElfFormatError, "section index 999", ".symtab")
    # A section whose data lies beyond the end of the file.
    text = _section_header(elf, ".text")
    _expect(_patch(data, text + 24, struct.pack("<Q", 1 << 40)), ElfFormatError, "past the end", ".text")


def test_symbol_in_a_section_that_does_not_exist() -> None:
    data, elf = _elf()
    symtab = elf.get_section_by_name(".symtab")
    index = next(i for i, s in enumerate(symtab.iter_symbols()) if s.name == "runs")
    at = symtab["sh_offset"] + index * 24 + 6  # st_shndx
    _expect(_patch(data, at, struct.pack("<H", 500)), ElfFormatError, "section 500", ".symtab")


def _relocation_entry(elf: ELFFile, rel_section: str, n: int) -> int:
    return elf.get_section_by_name(rel_section)["sh_offset"] + 16 * n


def test_relocation_outside_the_section() -> None:
    data, elf = _elf()
    at = _relocation_entry(elf, ".relsocket", 0)
    err = _expect(_patch(data, at, struct.pack("<Q", 0x10000)), RelocationError, "not an instruction", "socket")
    assert err.offset == 0x10000


def test_relocation_on_a_non_lddw_instruction() -> None:
    data, elf = _elf()
    at = _relocation_entry(elf, ".relsocket", 0)  # insn 1 (lddw runs) -> insn 3 (a load)
    err = _expect(_patch(data, at, struct.pack("<Q", 24)), RelocationError, "neither lddw nor call", "socket")
    assert err.offset == 24


def test_relocation_with_symbol_out_of_range() -> None:
    data, elf = _elf()
    at = _relocation_entry(elf, ".relsocket", 0) + 8  # r_info: type 1, symbol 9999
    _expect(_patch(data, at, struct.pack("<Q", (9999 << 32) | 1)), ElfFormatError, "symbol index 9999")


def test_call_into_the_middle_of_a_function() -> None:
    data, elf = _elf()
    code = elf.get_section_by_name("socket")["sh_offset"]
    # insn 11 `call shift` (imm 3 from .text): make it imm 4, one slot into shift.
    _expect(_patch(data, code + 11 * 8 + 4, struct.pack("<i", 4)), RelocationError, "not the start of a function")


def _btf_section(elf: ELFFile) -> tuple[int, bytes]:
    sec = elf.get_section_by_name(".BTF")
    return sec["sh_offset"], sec.data()


def test_btf_strings_without_terminator() -> None:
    data, elf = _elf()
    start, blob = _btf_section(elf)
    _expect(_patch(data, start + len(blob) - 1, b"x"), BtfError, "NUL", ".BTF")


def test_btf_with_huge_counts() -> None:
    data, elf = _elf()
    start, blob = _btf_section(elf)
    _expect(_patch(data, start + 12, struct.pack("<I", 0x7FFFFFFF)), BtfError, "outside", ".BTF")


def test_btf_with_a_loop_in_a_map_key() -> None:
    """Point typedef __u32 at itself: the map key's size can no longer be
    resolved, and the loader says so instead of spinning."""
    data, elf = _elf("xdp_firewall")
    start, blob = _btf_section(elf)
    btf = parse_btf(blob)
    target = btf.find("__u32", Kind.TYPEDEF).id
    pos = btf.positions[target]  # the record's name_off, info, type: patch type
    err = _expect(_patch(data, start + pos + 8, struct.pack("<I", target)), MapDefinitionError, "loop", ".maps")
    assert err.offset == 0  # blocked_nets, the first map


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ElfFormatError, match="cannot read"):
        load_object(tmp_path / "missing.o")
