"""The ebpfvm command line: outputs, exit statuses and one-line errors."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ebpfvm.cli import main

REPO = Path(__file__).resolve().parents[1]
PRIMES = REPO / "examples" / "asm" / "primes.asm"


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main([str(a) for a in argv], out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def test_run_prints_r0_in_hex_and_decimal():
    status, out, _ = cli("run", PRIMES)
    assert (status, out) == (0, "r0 = 0x4e (78)\n")  # 78 primes below 400


def test_run_stats_and_trace(tmp_path):
    src = tmp_path / "p.asm"
    src.write_text("mov %r0, -1\nadd %r0, 3\nexit\n")
    status, out, _ = cli("run", src, "--stats", "--trace")
    lines = out.splitlines()
    assert status == 0
    assert lines[-2] == "r0 = 0x2 (2)"
    assert lines[-1].startswith("executed 3 instructions in ")
    assert "mov %r0, -1" in lines[0] and "add %r0, 3" in lines[1]


def test_run_uses_mem_from_options_and_data_files(tmp_path):
    src = tmp_path / "p.asm"
    src.write_text("ldxh %r0, [%r1+1]\nexit\n")
    assert cli("run", src, "--mem", "11 22 33")[1] == "r0 = 0x3322 (13090)\n"
    memfile = tmp_path / "m.bin"
    memfile.write_bytes(b"\x00\xff\x7f")
    assert cli("run", src, "--mem-file", memfile)[1] == "r0 = 0x7fff (32767)\n"
    case = tmp_path / "c.data"
    case.write_text("-- asm\nldxb %r0, [%r1+2]\nexit\n-- mem\n01 02 03\n-- result\n0x3\n")
    assert cli("run", case)[1] == "r0 = 0x3 (3)\n"


def test_negative_r0_prints_signed_decimal(tmp_path):
    src = tmp_path / "p.asm"
    src.write_text("mov %r0, -5\nexit\n")
    assert cli("run", src)[1] == "r0 = 0xfffffffffffffffb (-5)\n"


def test_asm_then_disasm_round_trips(tmp_path):
    out_file = tmp_path / "primes.bin"
    status, _, _ = cli("asm", PRIMES, "-o", out_file)
    assert status == 0 and out_file.stat().st_size % 8 == 0
    status, listing, _ = cli("disasm", out_file)
    again = tmp_path / "again.asm"
    again.write_text(listing)
    cli("asm", again, "-o", tmp_path / "again.bin")
    assert (tmp_path / "again.bin").read_bytes() == out_file.read_bytes()
    assert cli("run", out_file)[1] == "r0 = 0x4e (78)\n"


def test_asm_without_output_prints_hex_slots(tmp_path):
    src = tmp_path / "p.asm"
    src.write_text("mov %r0, 42\nexit\n")
    assert cli("asm", src)[1] == "b7 00 00 00 2a 00 00 00\n95 00 00 00 00 00 00 00\n"


def test_asm_refuses_to_overwrite_its_input(tmp_path):
    src = tmp_path / "p.asm"
    src.write_text("mov %r0, 1\nexit\n")
    status, _, err = cli("asm", src, "-o", src)
    assert status == 2 and "refusing to overwrite" in err
    assert src.read_text() == "mov %r0, 1\nexit\n"


def test_disasm_kernel_style(tmp_path):
    src = tmp_path / "p.asm"
    src.write_text("ldxw %r0, [%r1+4]\njgt %r0, 5, +1\nexit\nexit\n")
    status, out, _ = cli("disasm", src, "--style", "kernel")
    assert out.splitlines()[:2] == ["0: (61) r0 = *(u32 *)(r1 +4)", "1: (25) if r0 > 0x5 goto pc+1"]


@pytest.mark.parametrize("content, fragment", [
    ("mov %r0, 1\nfrob %r1\nexit\n", ":2:1:"),                     # bad mnemonic: file:line:col
    ("mov %r0, %r11\nexit\n", ":1:"),
])
def test_bad_assembly_is_one_line_with_position_and_exit_2(tmp_path, content, fragment):
    src = tmp_path / "bad.asm"
    src.write_text(content)
    status, out, err = cli("run", src)
    assert status == 2 and out == ""
    assert len(err.splitlines()) == 1 and f"bad.asm{fragment}" in err


def test_malformed_bytecode_names_the_instruction(tmp_path):
    raw = tmp_path / "bad.bin"
    raw.write_bytes(bytes.fromhex("ff00000000000000 9500000000000000".replace(" ", "")) + b"\x01\x02")
    status, _, err = cli("disasm", raw)
    assert status == 2 and "bad.bin: insn 2: truncated" in err


def test_missing_file_and_bad_options_exit_2(tmp_path):
    assert cli("run", tmp_path / "absent.asm")[0] == 2
    assert cli("run", PRIMES, "--budget", "0")[0] == 2
    assert cli("run", PRIMES, "--mem", "zz")[0] == 2
    assert cli("conformance", tmp_path / "absent")[0] == 2
    assert cli("conformance", PRIMES, "--engine", "nonsense")[0] == 2


def test_program_faults_exit_1_with_one_line(tmp_path):
    src = tmp_path / "loop.asm"
    src.write_text("mov %r0, 0\nloop:\nadd %r0, 1\nja loop\n")
    status, _, err = cli("run", src, "--budget", "100")
    assert status == 1 and err.count("\n") == 1 and "budget of 100 exhausted" in err
    src.write_text("mov %r1, 0\nldxdw %r0, [%r1+0]\nexit\n")
    status, _, err = cli("run", src)
    assert status == 1 and "insn 1: invalid read of 8 bytes at 0x0" in err


def test_conformance_command_on_the_bundled_corpus():
    status, out, _ = cli("conformance", REPO / "conformance" / "cases")
    assert status == 0
    assert out.splitlines()[-1].endswith(" passed, 0 failed")


@settings(max_examples=150)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_no_input_file_makes_the_cli_crash(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("fuzz") / "input"
    path.write_bytes(content)
    for command in (["run", path, "--budget", "1000"], ["disasm", path], ["asm", path], ["verify", path],
                    ["inspect", path], ["jit", path, "--emit", "llvm"]):
        status, _, err = cli(*command)
        assert status in (0, 1, 2)
        assert err.count("\n") <= 1, err


def test_console_script_entry_point_runs_as_a_module():
    done = subprocess.run([sys.executable, "-m", "ebpfvm.cli", "run", str(PRIMES)], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert done.returncode == 0 and done.stdout == "r0 = 0x4e (78)\n"
