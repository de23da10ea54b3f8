"""`ebpfvm verify`: verdicts of bytecode, asm and ELF objects; text and JSON output; exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from test_cli import cli

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

OK = "mov %r0, 0\nexit\n"
BAD = "mov %r1, 0\nldxdw %r0, [%r1+0]\nexit\n"
MAP = "lddw %r1, map_fd 0\nmov %r2, %r10\nadd %r2, -4\nstw [%r10-4], 0\ncall 1\nmov %r0, 0\nexit\n"
# xdp: a 4-byte packet load at offset 1, misaligned only under BPF_F_STRICT_ALIGNMENT.
PKT = ("ldxw %r2, [%r1+0]\nldxw %r3, [%r1+4]\nmov %r4, %r2\nadd %r4, 8\njgt %r4, %r3, out\n"
       "ldxw %r0, [%r2+1]\nout:\nmov %r0, 2\nexit\n")
HASH = "fd=0,type=hash,key=4,value=8,max_entries=16"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_accept_prints_one_line_and_exits_0(tmp_path):
    status, out, err = cli("verify", _write(tmp_path, "ok.s", OK))
    assert status == 0 and err == ""
    assert out.count("\n") == 1 and ": accept, 2 insns processed, 0 states, " in out and out.endswith(" us\n")


def test_raw_bytecode_is_verified(tmp_path):
    from ebpfvm.asm import assemble

    path = tmp_path / "ok.bin"
    path.write_bytes(assemble(OK).to_bytes())
    status, out, _ = cli("verify", path)
    assert status == 0 and ": accept," in out


def test_reject_shows_the_error_with_its_instruction_and_exits_1(tmp_path):
    status, out, _ = cli("verify", _write(tmp_path, "ok.s", OK), _write(tmp_path, "bad.s", BAD))
    assert status == 1
    lines = out.splitlines()
    assert ": accept," in lines[0] and ": reject," in lines[1]
    assert lines[2].strip() == "insn 1: (79) r0 = *(u64 *)(r1 +0): R1 invalid mem access 'scalar'"


def test_log_level_adds_the_verifier_log(tmp_path):
    status, out, _ = cli("verify", _write(tmp_path, "bad.s", BAD), "--log-level", "1")
    assert status == 1 and "processed 2 insns (limit 1000000)" in out
    status, out, _ = cli("verify", _write(tmp_path, "bad.s", BAD))
    assert "limit 1000000" not in out


def test_json_document(tmp_path):
    status, out, _ = cli("verify", _write(tmp_path, "ok.s", OK), _write(tmp_path, "bad.s", BAD), "--format", "json")
    assert status == 1
    doc = json.loads(out)
    assert [d["verdict"] for d in doc] == ["accept", "reject"]
    assert doc[0]["error"] is None and doc[0]["prog_type"] == "socket_filter"
    assert doc[1]["error"] == {"insn": 1, "message": "R1 invalid mem access 'scalar'"}
    for d in doc:
        assert set(d) == {"file", "section", "program", "prog_type", "verdict", "error", "stats"}
        assert set(d["stats"]) == {"processed_insns", "total_states", "peak_states", "max_states_per_insn", "time_us"}
    assert doc[1]["stats"]["processed_insns"] == 2


def test_maps_are_declared_with_options(tmp_path):
    path = _write(tmp_path, "map.s", MAP)
    status, out, err = cli("verify", path)
    assert status == 2 and "map fd 0" in err and "--map" in err and err.count("\n") == 1
    status, out, _ = cli("verify", path, "--map", HASH)
    assert status == 0 and ": accept, 7 insns processed" in out
    status, out, _ = cli("verify", path, "--map", "fd=0,type=array,key=4,value=8,max_entries=4")
    assert status == 0


@pytest.mark.parametrize("spec, expect", [
    ("fd=0,type=nosuch,key=4,value=8,max_entries=1", "unknown map type"),
    ("fd=0,type=hash,key=4,value=8", "missing max_entries"),
    ("fd=0,type=hash,key=x,value=8,max_entries=1", "not an integer"),
    ("fd=0,type=hash,key=4,value=8,max_entries=1,colour=red", "unknown key"),
    ("fd=1,type=hash,key=4,value=8,max_entries=1", "missing fd 0"),
    ("fd=0,type=hash,key=4,value=8,max_entries=0", "max_entries must be positive"),
])
def test_bad_map_specs_are_one_line_errors(tmp_path, spec, expect):
    status, _, err = cli("verify", _write(tmp_path, "map.s", MAP), "--map", spec)
    assert status == 2 and expect in err and err.count("\n") == 1


def test_prog_flags_change_verdicts_like_the_kernel(tmp_path):
    path = _write(tmp_path, "pkt.s", PKT)
    assert cli("verify", path, "--prog-type", "xdp")[0] == 0
    status, out, _ = cli("verify", path, "--prog-type", "xdp", "--prog-flag", "BPF_F_STRICT_ALIGNMENT")
    assert status == 1 and "insn 5: (61) r0 = *(u32 *)(r2 +1): misaligned packet access" in out
    status, _, _ = cli("verify", path, "--prog-type", "xdp", "--prog-flag", "strict_alignment",
                       "--prog-flag", "BPF_F_ANY_ALIGNMENT")
    assert status == 0


def test_elf_objects_verify_every_program():
    status, out, _ = cli("verify", EXAMPLES / "tail_calls.o", "--format", "json")
    doc = json.loads(out)
    assert {d["program"] for d in doc} == {"dispatch", "handle_ipv4", "handle_ipv6"}
    assert all(d["section"] and d["prog_type"] == "xdp" for d in doc)
    assert status == (0 if all(d["verdict"] == "accept" for d in doc) else 1)
    status, out, _ = cli("verify", EXAMPLES / "tail_calls.o", "--program", "dispatch")
    assert status == 0 and out.count("\n") == 1 and "dispatch: accept" in out


@pytest.mark.parametrize("extra, expect", [
    (["--prog-type", "nonsense"], "unknown --prog-type"),
    (["--prog-flag", "bogus"], "unknown --prog-flag"),
    (["--attach-type", "bogus"], "unknown --attach-type"),
    (["--section", "xdp"], "for ELF objects"),
])
def test_bad_options_are_one_line_errors(tmp_path, extra, expect):
    status, out, err = cli("verify", _write(tmp_path, "ok.s", OK), *extra)
    assert status == 2 and expect in err and err.count("\n") == 1 and out == ""


def test_bad_input_files(tmp_path):
    status, _, err = cli("verify", tmp_path / "missing.s")
    assert status == 2 and err.count("\n") == 1
    status, _, err = cli("verify", _write(tmp_path, "junk.s", "frobnicate %r0\n"))
    assert status == 2 and err.count("\n") == 1
    status, _, err = cli("verify", EXAMPLES / "tail_calls.o", "--program", "nope")
    assert status == 2 and "nope" in err
    status, _, err = cli("verify", EXAMPLES / "tail_calls.o", "--map", HASH)
    assert status == 2 and "--map" in err
