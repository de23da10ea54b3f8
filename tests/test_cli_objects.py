"""The command line on ELF objects: run, inspect, disasm."""

from __future__ import annotations

from pathlib import Path

from example_runs import EXAMPLE_RUNS
from test_cli import cli

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
RUNS = {run.id: run for run in EXAMPLE_RUNS}


def _packet_file(tmp_path: Path, run_id: str) -> Path:
    path = tmp_path / f"{run_id}.bin"
    path.write_bytes(RUNS[run_id].packet)
    return path


def test_run_xdp_object_reports_action_and_map_changes(tmp_path):
    status, out, _ = cli("run", EXAMPLES / "xdp_firewall.o", "--packet", _packet_file(tmp_path, "firewall-pass"))
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == "r0 = 0x2 (2) XDP_PASS"
    assert "map verdicts [02000000]: 0000000000000000 -> 0100000000000000" in lines


def test_run_tc_object_prints_the_rewritten_packet(tmp_path):
    run = RUNS["rewrite-match"]
    status, out, _ = cli("run", EXAMPLES / "tc_rewrite.o", "--packet", _packet_file(tmp_path, "rewrite-match"))
    assert status == 0 and out.startswith("r0 = 0x0 (0) TC_ACT_OK\n")
    assert f"packet ({len(run.packet_out)} bytes): {run.packet_out.hex()}" in out


def test_run_object_needs_a_program_choice_when_ambiguous(tmp_path):
    packet = _packet_file(tmp_path, "firewall-pass")
    status, _, err = cli("run", EXAMPLES / "tail_calls.o", "--packet", packet)
    assert status == 2 and "--program" in err and err.count("\n") == 1
    status, out, _ = cli("run", EXAMPLES / "tail_calls.o", "--program", "dispatch", "--packet", packet)
    assert status == 0 and "tail calls: 1" in out


def test_run_object_without_its_packet_is_a_user_error():
    status, _, err = cli("run", EXAMPLES / "xdp_firewall.o")
    assert status == 2 and "needs a packet" in err


def test_mem_options_are_for_bytecode_and_packet_options_for_objects(tmp_path):
    assert cli("run", EXAMPLES / "xdp_firewall.o", "--mem", "00")[0] == 2
    assert cli("run", EXAMPLES / "asm" / "primes.asm", "--packet", tmp_path / "x")[0] == 2


def test_inspect_lists_programs_and_maps_with_btf_types():
    status, out, _ = cli("inspect", EXAMPLES / "xdp_firewall.o")
    assert status == 0
    assert "blocked_nets" in out and "struct ipv4_lpm_key" in out and "lpm_trie" in out


def test_inspect_of_a_non_elf_file_is_one_line_exit_2():
    status, _, err = cli("inspect", EXAMPLES / "README.md")
    assert status == 2 and err.count("\n") == 1 and "not an ELF file" in err


def test_disasm_of_an_object_prints_each_program():
    status, out, _ = cli("disasm", EXAMPLES / "tail_calls.o", "--style", "kernel")
    assert status == 0
    headers = [line for line in out.splitlines() if line.startswith("; ")]
    assert headers == ["; handle_ipv4 (section xdp)", "; handle_ipv6 (section xdp)", "; dispatch (section xdp)"]
    status, out, _ = cli("disasm", EXAMPLES / "tail_calls.o", "--program", "dispatch")
    assert status == 0 and out.count("; ") == 1
