"""``run_object_command``: what ``ebpfvm run OBJ.o`` prints for the example
objects (the lead wires it into the CLI)."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest

from ebpfvm.errors import InputFileError, UserInputError
from ebpfvm.runtime.cli_run import run_object_command

from example_runs import EXAMPLES, eth, tcp, udp

CLIENT, SERVICE = "192.168.1.10", "10.0.0.1"


def run(tmp_path: Path, obj: str, *, packet: bytes | None = None, ctx: bytes | None = None,
        maps: dict[str, bytes] | None = None, **kwargs) -> str:  # type: ignore[no-untyped-def]
    out = io.StringIO()
    packet_file = ctx_file = None
    if packet is not None:
        packet_file = tmp_path / "packet.bin"
        packet_file.write_bytes(packet)
    if ctx is not None:
        ctx_file = tmp_path / "ctx.bin"
        ctx_file.write_bytes(ctx)
    specs = []
    for name, data in (maps or {}).items():
        path = tmp_path / f"{name}.bin"
        path.write_bytes(data)
        specs.append(f"{name}={path}")
    status = run_object_command(str(EXAMPLES / f"{obj}.o"), packet=str(packet_file) if packet_file else None,
                                ctx=str(ctx_file) if ctx_file else None, maps=specs, out=out, **kwargs)
    assert status == 0
    return out.getvalue()


def test_tc_rewrite_prints_verdict_packet_and_map_change(tmp_path: Path) -> None:
    text = run(tmp_path, "tc_rewrite", packet=tcp(CLIENT, SERVICE, 12345, 80))
    lines = text.splitlines()
    assert lines[0] == "r0 = 0x0 (0) TC_ACT_OK"
    assert lines[1] == f"packet (54 bytes): {tcp(CLIENT, '10.0.0.2', 12345, 8080).hex()}"
    assert lines[2] == "map rewrites [00000000]: 0000000000000000 -> 0100000000000000"
    assert len(lines) == 3


def test_unchanged_packet_is_not_printed(tmp_path: Path) -> None:
    text = run(tmp_path, "tc_rewrite", packet=tcp(CLIENT, SERVICE, 12345, 443))
    assert text == "r0 = 0x0 (0) TC_ACT_OK\n"


def test_map_files_fill_maps_before_the_run(tmp_path: Path) -> None:
    blocked = struct.pack("<H", 53) + struct.pack("<Q", 5)  # key+value record of blocked_ports
    text = run(tmp_path, "xdp_firewall", packet=udp(CLIENT, SERVICE, 5353, 53, b"abcd"),
               maps={"blocked_ports": blocked})
    assert text.splitlines() == [
        "r0 = 0x1 (1) XDP_DROP",
        "map blocked_ports [3500]: 0500000000000000 -> 0600000000000000",
        "map verdicts [01000000]: 0000000000000000 -> 0100000000000000",
    ]


def test_program_choice_and_tail_calls(tmp_path: Path) -> None:
    text = run(tmp_path, "tail_calls", packet=eth(0x0800, bytes(46)), program="dispatch")
    assert text.splitlines()[:2] == ["r0 = 0x1 (1) XDP_DROP", "tail calls: 1 (returned from handle_ipv4)"]
    with pytest.raises(InputFileError, match="3 programs match; choose one with --program"):
        run(tmp_path, "tail_calls", packet=eth(0x0800, bytes(46)), section="xdp")
    with pytest.raises(InputFileError, match="3 programs match"):
        run(tmp_path, "tail_calls", packet=eth(0x0800, bytes(46)))
    with pytest.raises(InputFileError, match=r"no program 'nope' in the object \(programs: handle_ipv4 \(xdp\)"):
        run(tmp_path, "tail_calls", packet=eth(0x0800, bytes(46)), program="nope")


def test_section_choice_and_ringbuf_output(tmp_path: Path) -> None:
    text = run(tmp_path, "kprobe_counter", section="kprobe/do_unlinkat", ctx=bytes(168))
    assert text.splitlines() == [
        "r0 = 0x0 (0)",
        "map calls [00000000]: cpu0=0000000000000000 cpu1=0000000000000000 -> "
        "cpu0=0100000000000000 cpu1=0000000000000000",
        "ringbuf events: " + struct.pack("<IIQ", 4242, 4242, 1).hex(),  # the default task's pid and tgid
    ]


def test_trace_option_prints_each_instruction(tmp_path: Path) -> None:
    text = run(tmp_path, "tail_calls", packet=eth(0x86DD, bytes(46)), program="dispatch", trace=True)
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["0", "0:"]
    assert any("exit" in line for line in lines)
    verdict = lines.index("r0 = 0x3 (3) XDP_TX")
    assert lines[verdict + 1:] == ["tail calls: 1 (returned from handle_ipv6)",
                                   "map hits [01000000]: 0000000000000000 -> 0100000000000000",
                                   "map hits [03000000]: 0000000000000000 -> 0100000000000000"]
    assert all(line[:7].strip().isdigit() for line in lines[:verdict])


def test_bad_map_specs(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="--map wants NAME=FILE"):
        run_object_command(str(EXAMPLES / "xdp_firewall.o"), maps=["verdicts"], out=io.StringIO())
    with pytest.raises(UserInputError, match="no such map"):
        run(tmp_path, "xdp_firewall", packet=eth(0x0800, bytes(46)), maps={"nope": b""})
    with pytest.raises(InputFileError, match="not a whole number of 8-byte values"):
        run(tmp_path, "xdp_firewall", packet=eth(0x0800, bytes(46)), maps={"verdicts": bytes(7)})


def test_packet_the_type_refuses_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="at least 14 bytes"):
        run(tmp_path, "xdp_firewall", packet=bytes(10))
