"""Verdict differential fuzzing: ``ebpfvm.verifier.verify`` against the kernel's BPF_PROG_LOAD.

Generated programs (``conformance/verifier_fuzz_programs.py``) walk the edges
of what the verifier proves; each is verified by us and loaded by the kernel
in a forked child.  The campaign asserts that we never accept what the kernel
rejects, except where a known kernel defect (``verifier_fuzz_defects``)
explains it.  The agreement table
is printed (``pytest -s``).  ``EBPFVM_FUZZ_SCALE=N`` runs N times as many
programs, ``EBPFVM_FUZZ_SEED=S`` another seed.
"""

from __future__ import annotations

import os
import re

import pytest
from ebpfvm.conformance import verifier_fuzz as vf
from ebpfvm.conformance.verifier_fuzz_defects import KNOWN_KERNEL_DEFECTS, known_defect
from ebpfvm.conformance.verifier_fuzz_programs import FuzzMap, FuzzProgram, and_in_loop
from ebpfvm.verifier import verify
from fuzz_budget import examples
from kernel_support import require_kernel
from test_cli import cli

from ebpfvm import assemble

SEED = int(os.environ.get("EBPFVM_FUZZ_SEED", "0"))

# Minimal reproducers of two bugs the fuzzer found (we accepted both; the
# kernel refuses them): (asm, kernel error line).
RETURN_CALLER_STACK_POINTER = ("mov %r1, %r10\nadd %r1, -8\ncall local f\nmov %r0, 0\nexit\n"
                               "f:\nmov %r0, %r1\nexit\n")
SUB_FROM_STACK_POINTER = "mov %r3, %r10\nsub %r3, 8\nmov %r0, 0\nexit\n"


def _report(title: str, result: vf.CampaignResult) -> None:
    print(f"\n{title}\n{vf.table(result)}")
    for index, finding in enumerate(result.findings):
        if finding.kind in vf.DISAGREEMENTS:
            tag = finding.defect.name if finding.defect else "NEW"
            print(f"  #{index} {finding.kind} [{tag}]: ours {finding.ours.describe()} / "
                  f"kernel {finding.kernel.describe()}")


def _unexplained(result: vf.CampaignResult) -> list[vf.Finding]:
    return list(result.failures)


def _listing(findings: list[vf.Finding]) -> str:
    return "\n\n".join(vf.case_text(f) for f in findings[:3])


# --- the campaigns (live kernel) ----------------------------------------------------


def test_verdicts_agree_with_the_kernel():
    require_kernel()
    result = vf.run_campaign(examples(200), seed=SEED)
    _report(f"verifier vs kernel, {len(result.findings)} programs (seed {SEED})", result)
    counts = result.counts()
    # the generator must produce both verdicts often, or the comparison says little
    assert counts[vf.AGREE_ACCEPT] >= len(result.findings) // 10
    assert counts[vf.AGREE_REJECT_SAME] + counts[vf.AGREE_REJECT_OTHER] >= len(result.findings) // 10
    bad = _unexplained(result)
    assert not bad, f"{len(bad)} unexplained unsafe/raised finding(s):\n{_listing(bad)}"


def test_subprogram_stack_arithmetic_bias():
    """The mode aimed at the known 6.18 defect: every program calls a
    subprogram that adds a scalar to its own frame pointer.  Any disagreement
    the kernel's log shows to be that defect is classified as such; nothing
    else may be unsafe."""
    require_kernel()
    result = vf.run_campaign(examples(60), seed=SEED, bias_subprog_stack=True)
    _report(f"subprogram scalar += r10 bias, {len(result.findings)} programs", result)
    biased = [f for f in result.findings if "subprog_scalar_plus_fp" in f.program.features]
    assert len(biased) == len(result.findings)
    for finding in result.findings:
        if finding.defect is not None:
            assert finding.defect.name == "subprog-scalar-plus-fp-frame"
    bad = _unexplained(result)
    assert not bad, f"{len(bad)} unexplained unsafe/raised finding(s):\n{_listing(bad)}"


# --- fixed bugs the fuzzer found -----------------------------------------------------------


@pytest.mark.parametrize("asm, error", [
    (RETURN_CALLER_STACK_POINTER, "cannot return stack pointer to the caller"),
    (SUB_FROM_STACK_POINTER, "R3 subtraction from stack pointer prohibited"),
], ids=["return-caller-stack-pointer", "sub-from-stack-pointer"])
def test_stack_pointer_rules_found_by_the_fuzzer(asm, error):
    result = verify(assemble(asm), prog_type="socket_filter")
    assert (result.verdict, result.error and result.error.message) == ("reject", error)


@pytest.mark.parametrize("asm, error", [
    (RETURN_CALLER_STACK_POINTER, "cannot return stack pointer to the caller"),
    (SUB_FROM_STACK_POINTER, "R3 subtraction from stack pointer prohibited"),
])
def test_the_kernel_rejects_the_stack_pointer_reproducers(asm, error):
    require_kernel()
    finding = vf.check_program(FuzzProgram(asm, "socket_filter", ()))
    assert (finding.kernel.verdict, finding.kernel.error) == ("reject", error)
    assert finding.kind not in vf.DISAGREEMENTS


# A variable-offset stack write of part of a pointer: the kernel (root) only
# marks the bytes MISC; "invalid size of register spill" is for fixed offsets.
VAR_OFFSET_PARTIAL_POINTER_WRITE = """
mov %r6, %r1
call 7
mov %r3, %r0
rsh %r3, 63
lsh %r3, 3
add %r3, -16
add %r3, %r10
stxh [%r3+0], %r6
ldxdw %r0, [%r10-16]
ldxw %r0, [%r0+0]
mov %r0, 0
exit
"""


def test_variable_offset_partial_pointer_write_is_accepted():
    result = verify(assemble(VAR_OFFSET_PARTIAL_POINTER_WRITE.replace("ldxw %r0, [%r0+0]\n", "")),
                    prog_type="socket_filter")
    assert result.accepted, result.error


def test_variable_offset_partial_pointer_write_leaves_no_pointer():
    """The bytes it wrote are MISC: what is read back is a scalar, not the pointer."""
    result = verify(assemble(VAR_OFFSET_PARTIAL_POINTER_WRITE), prog_type="socket_filter")
    assert (result.verdict, result.error.message) == ("reject", "R0 invalid mem access 'scalar'")


def test_variable_offset_partial_pointer_write_matches_the_kernel():
    require_kernel()
    for asm in (VAR_OFFSET_PARTIAL_POINTER_WRITE, VAR_OFFSET_PARTIAL_POINTER_WRITE.replace("ldxw %r0, [%r0+0]\n", "")):
        finding = vf.check_program(FuzzProgram(asm, "socket_filter", ()))
        assert finding.kind in (vf.AGREE_ACCEPT, vf.AGREE_REJECT_SAME), (finding.ours, finding.kernel)


def test_fixed_offset_partial_pointer_spill_is_still_refused():
    asm = "mov %r6, %r1\nstxh [%r10-8], %r6\nmov %r0, 0\nexit\n"
    result = verify(assemble(asm), prog_type="socket_filter")
    assert (result.verdict, result.error.message) == ("reject", "invalid size of register spill")


# Reads grow a frame's stack depth as writes do: the main program reads
# fp-512 (512 bytes), the callee writes fp-24 (rounded to 32): 544 in all.
READ_ONLY_DEEP_STACK = ("mov %r3, %r10\nadd %r3, -512\nldxb %r0, [%r3+0]\ncall local f\nmov %r0, 0\nexit\n"
                        "f:\nstdw [%r10-24], 1\nmov %r0, 0\nexit\n")


def test_a_stack_read_counts_towards_the_stack_depth():
    result = verify(assemble("ldxdw %r0, [%r10-64]\nmov %r0, 0\nexit\n"), prog_type="socket_filter", log_level=1)
    assert "stack depth 64" in result.log.splitlines()


def test_read_only_stack_counts_in_the_combined_stack_size():
    result = verify(assemble(READ_ONLY_DEEP_STACK), prog_type="socket_filter")
    assert (result.verdict, result.error.message) == ("reject", "combined stack size of 2 calls is 544. Too large")


def test_read_only_stack_depth_matches_the_kernel():
    require_kernel()
    finding = vf.check_program(FuzzProgram(READ_ONLY_DEEP_STACK, "socket_filter", ()))
    assert finding.kind == vf.AGREE_REJECT_SAME, (finding.ours, finding.kernel)


# A callee spilling a stack pointer into its caller's frame (fixed offset).
SPILL_STACK_POINTER_INTO_CALLER = ("stdw [%r10-16], 2\nmov %r1, %r10\nadd %r1, -16\ncall local f\nmov %r0, 0\nexit\n"
                                   "f:\nstxdw [%r1+0], %r1\nmov %r0, 0\nexit\n")


def test_spilling_a_stack_pointer_into_the_callers_frame_is_refused():
    result = verify(assemble(SPILL_STACK_POINTER_INTO_CALLER), prog_type="socket_filter")
    assert (result.verdict, result.error.message, result.error.errno) == (
        "reject", "cannot spill pointers to stack into stack frame of the caller", "EINVAL")
    # a scalar may go there, and a stack pointer into the callee's own frame
    for ok in ("stdw [%r1+0], 5\n", "stxdw [%r10-8], %r1\n"):
        asm = SPILL_STACK_POINTER_INTO_CALLER.replace("stxdw [%r1+0], %r1\n", ok)
        assert verify(assemble(asm), prog_type="socket_filter").accepted, ok


def test_spilling_a_stack_pointer_into_the_callers_frame_matches_the_kernel():
    require_kernel()
    finding = vf.check_program(FuzzProgram(SPILL_STACK_POINTER_INTO_CALLER, "socket_filter", ()))
    assert finding.kind == vf.AGREE_REJECT_SAME, (finding.ours, finding.kernel)


# Variable-offset stack accesses: the kernel's message includes the pointer's
# fixed offset, names a helper's access as a read or write, and has its own
# line for offsets too large to track.
_VAR_FP = "call 7\nmov %r4, %r0\nand %r4, 127\nmov %r3, %r10\nadd %r3, -64\nadd %r3, %r4\n"
VAR_OFFSET_MESSAGES = [
    (_VAR_FP + "ldxb %r0, [%r3+0]\nmov %r0, 0\nexit\n",
     "invalid variable-offset read from stack R3 var_off=(0x0; 0x7f) off=-64 size=1"),
    (_VAR_FP + "stb [%r3-8], 1\nmov %r0, 0\nexit\n",
     "invalid variable-offset write to stack R3 var_off=(0x0; 0x7f) off=-72 size=1"),
    (_VAR_FP + "mov %r1, %r3\nmov %r2, 8\ncall 6\nmov %r0, 0\nexit\n",
     "invalid variable-offset read from stack R1 var_off=(0x0; 0x7f) off=-64 size=8"),
    ("call 7\nmov %r4, %r0\nrsh %r4, 1\n" + _VAR_FP.split("\n", 3)[3] + "ldxb %r0, [%r3+0]\nmov %r0, 0\nexit\n",
     "invalid unbounded variable-offset read from stack R3"),
]


@pytest.mark.parametrize("asm, message", VAR_OFFSET_MESSAGES)
def test_variable_offset_stack_messages(asm, message):
    result = verify(assemble(asm), prog_type="socket_filter")
    assert (result.verdict, result.error.message) == ("reject", message)


@pytest.mark.parametrize("asm, message", VAR_OFFSET_MESSAGES)
def test_variable_offset_stack_messages_match_the_kernel(asm, message):
    require_kernel()
    finding = vf.check_program(FuzzProgram(asm, "socket_filter", ()))
    assert (finding.kind, finding.kernel.error) == (vf.AGREE_REJECT_SAME, message)


# --- the known-defect recogniser -------------------------------------------------------------

SCALAR_PLUS_FP_IN_SUBPROGRAM = "call local f\nmov %r0, 0\nexit\nf:\nmov %r1, -8\nadd %r1, %r10\nstdw [%r1+0], 7\n" \
                               "mov %r0, 0\nexit\n"


def test_recogniser_reads_a_pointer_into_another_frame_from_the_log():
    """Kernel level-2 log lines in 6.18's format: the state before insn 5 in
    frame 1 shows R1, just computed by ``r1 += r10``, as fp[0]-8."""
    insns = assemble(SCALAR_PLUS_FP_IN_SUBPROGRAM).instructions
    wrong = "4: (0f) r1 += r10\n5: frame1: R1=fp[0]-8 R10=fp0\n"
    right = "4: (0f) r1 += r10\n5: frame1: R1=fp-8 R10=fp0\n"
    defect = known_defect(vf.UNSAFE, insns, wrong)
    assert defect is not None and defect.name == "subprog-scalar-plus-fp-frame"
    assert known_defect(vf.UNSAFE, insns, right) is None
    assert known_defect(vf.AGREE_ACCEPT, insns, wrong) is None
    # the same log line about a main-program addition is not the defect
    main_only = assemble("mov %r1, -8\nadd %r1, %r10\nstdw [%r1+0], 7\nmov %r0, 0\nexit\n").instructions
    assert known_defect(vf.UNSAFE, main_only, "2: frame1: R1=fp[0]-8\n") is None


def test_recogniser_finds_nothing_in_the_kernels_real_log_of_a_correct_case():
    """On this kernel the addition in the subprogram lands in the subprogram's
    own frame (fp-8, no [N]): the real level-2 log does not match."""
    require_kernel()
    program = FuzzProgram(SCALAR_PLUS_FP_IN_SUBPROGRAM, "socket_filter", ())
    built = vf.build(program)
    log = vf.kernel_verdict(built, program, log_level=2).log
    assert re.search(r"^5: frame1: R1=fp-8", log, re.MULTILINE), log
    assert all(known_defect(kind, built.instructions, log) is None for kind in (vf.UNSAFE, vf.IMPRECISE))


def test_known_defect_table_is_described():
    for defect in KNOWN_KERNEL_DEFECTS:
        assert defect.name and defect.kernel and defect.kinds and defect.description


# --- the AND-in-loop guard (no kernel involved) ---------------------------------------------------


def test_guard_finds_an_and_in_a_loop_body():
    insns = assemble("mov %r1, 4\nloop:\nand %r2, 1\nsub %r1, 1\njne %r1, 0, loop\nmov %r0, 0\nexit\n").instructions
    assert and_in_loop(insns) == 1


def test_guard_finds_an_and_in_a_subprogram_called_from_a_loop():
    insns = assemble("mov %r6, 4\nloop:\ncall local f\nsub %r6, 1\njne %r6, 0, loop\nmov %r0, 0\nexit\n"
                     "f:\nmov %r0, 3\nand32 %r0, 1\nexit\n").instructions
    assert and_in_loop(insns) == 7


def test_guard_allows_an_and_outside_loops():
    insns = assemble("and %r1, 1\nmov %r6, 4\nloop:\nsub %r6, 1\njne %r6, 0, loop\nmov %r0, 0\nexit\n").instructions
    assert and_in_loop(insns) is None


def test_a_program_with_an_and_in_a_loop_never_reaches_the_kernel(monkeypatch):
    def no_kernel(*args, **kwargs):
        raise AssertionError("the kernel was asked")

    monkeypatch.setattr(vf, "kernel_verdict", no_kernel)
    program = FuzzProgram("mov %r1, 4\nloop:\nand %r2, 1\nsub %r1, 1\njne %r1, 0, loop\nmov %r0, 0\nexit\n",
                          "socket_filter", ())
    with pytest.raises(vf.RefusedProgram) as info:
        vf.check_program(program)
    assert info.value.slot == 1


def test_generated_programs_have_no_and_in_a_loop():
    from ebpfvm.conformance.verifier_fuzz_programs import verifier_programs
    from hypothesis import given, settings

    @settings(max_examples=examples(100), deadline=None, database=None)
    @given(verifier_programs())
    def check(program):
        built = vf.build(program)  # assembles: every generated program is well formed
        assert and_in_loop(built.instructions) is None, program.asm

    check()


# --- classification and the command --------------------------------------------------------------


def test_classification_of_verdict_pairs():
    accept, crashed = vf.Verdict("accept"), vf.Verdict("crashed")
    reject_a, reject_b = vf.Verdict("reject", "R0 !read_ok"), vf.Verdict("reject", "R1 !read_ok")
    assert vf.classify(accept, accept) == vf.AGREE_ACCEPT
    assert vf.classify(reject_a, reject_a) == vf.AGREE_REJECT_SAME
    assert vf.classify(reject_a, reject_b) == vf.AGREE_REJECT_OTHER
    assert vf.classify(accept, reject_a) == vf.UNSAFE
    assert vf.classify(reject_a, accept) == vf.IMPRECISE
    assert vf.classify(accept, crashed) == vf.KERNEL_CRASHED
    assert vf.classify(vf.Verdict("raised", "boom"), accept) == vf.OURS_RAISED


def test_cli_rejects_bad_arguments(capsys):
    assert cli("fuzz-verifier", "--count", "0")[0] == 2
    assert "must be positive" in capsys.readouterr().err
    assert cli("fuzz-verifier", "--prog-type", "kprobe")[0] == 2
    assert "invalid choice" in capsys.readouterr().err


def test_cli_writes_disagreements_and_exits_1_on_an_unsafe_one(monkeypatch, tmp_path):
    """The command's bookkeeping, with the two verdicts stubbed: one unsafe
    disagreement (exit 1, a .case file written), the rest agreeing."""
    import ebpfvm.kernel

    calls = []

    def fake_check(program):
        calls.append(program)
        if len(calls) == 2:
            return vf.Finding(program, vf.UNSAFE, vf.Verdict("accept"),
                              vf.Verdict("reject", "R3 invalid mem access 'scalar'", "EACCES", "3: (79) ...\n"))
        return vf.Finding(program, vf.AGREE_ACCEPT, vf.Verdict("accept"), vf.Verdict("accept"))

    monkeypatch.setattr(vf, "check_program", fake_check)
    monkeypatch.setattr(ebpfvm.kernel, "available", lambda: True)
    status, out, err = cli("fuzz-verifier", "--count", "5", "--seed", "1", "--out", tmp_path / "found")
    assert status == 1, err
    assert re.search(r"^ours-accepts-kernel-rejects +1 ", out, re.MULTILINE) and "FAIL: 1 unexplained" in out
    written = sorted((tmp_path / "found").iterdir())
    assert [p.name for p in written] == ["00001-ours-accepts-kernel-rejects.case"]
    from ebpfvm.conformance.verdicts import parse_case

    case = parse_case(written[0].read_text())
    assert (case.verdict, case.error, case.errno) == ("reject", "R3 invalid mem access 'scalar'", "EACCES")
    assert case.asm == calls[1].asm and "ours:   accept" in case.description


def test_cli_campaign_against_the_kernel(tmp_path):
    require_kernel()
    status, out, err = cli("fuzz-verifier", "--count", "8", "--seed", "5", "--out", tmp_path)
    assert status in (0, 1), err
    assert out.count("\n") >= 9 and "agree-accept" in out and "total" in out
    assert (status == 1) == ("FAIL:" in out)
    assert len(list(tmp_path.iterdir())) == len(re.findall(r"^#\d+: ", out, re.MULTILINE))


def test_written_case_reproduces_with_conformance_check(tmp_path):
    """A written disagreement is a verdict-corpus case: ``conformance check``
    gets the kernel's recorded verdict again."""
    require_kernel()
    finding = vf.check_program(FuzzProgram(SUB_FROM_STACK_POINTER, "socket_filter",
                                           (FuzzMap("array", 4, 8, 1),)))
    path = tmp_path / "found.case"
    path.write_text(vf.case_text(finding))
    status, out, _ = cli("conformance", "check", path)
    assert status == 0 and "1 match the kernel" in out


# The combined stack of a call chain counts each frame rounded up to 16 bytes
# (the JIT's granularity): 496 + 16 fits in 512, 504 + 16 rounds to 528.
COMBINED_STACK = "stdw [%r10-{main}], 1\ncall local f\nmov %r0, 0\nexit\nf:\nstdw [%r10-16], 1\nmov %r0, 0\nexit\n"


@pytest.mark.parametrize("main, error", [
    (496, None),
    (504, "combined stack size of 2 calls is 528. Too large"),
])
def test_combined_stack_rounds_frames_to_16_bytes(main, error):
    program = assemble(COMBINED_STACK.format(main=main))
    result = verify(program, prog_type="socket_filter")
    assert (result.error and result.error.message) == error


@pytest.mark.parametrize("main", [496, 504])
def test_the_kernel_agrees_on_combined_stack_rounding(main):
    require_kernel()
    finding = vf.check_program(FuzzProgram(COMBINED_STACK.format(main=main), "socket_filter", ()))
    assert finding.kind not in vf.DISAGREEMENTS
    assert finding.kernel.verdict == ("accept" if main == 496 else "reject")
