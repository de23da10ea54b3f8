"""Loading BTF into the kernel (BPF_BTF_LOAD), so programs can carry
func_info and line_info: the kernel needs func_info for programs with
callbacks (bpf_loop and friends) and prints source lines in its log with
line_info."""

from __future__ import annotations

import ctypes
import errno as _errno

from ebpfvm.kernel import syscall as sc
from ebpfvm.kernel.errors import KernelError
from ebpfvm.kernel.fd import OwnedFd
from ebpfvm.kernel.log import last_error_line

_LOG_SIZE = 1 << 16


class BtfLoadAttr(ctypes.Structure):
    """BPF_BTF_LOAD; through btf_token_fd (6.9+)."""

    _fields_ = [
        ("btf", sc.u64),
        ("btf_log_buf", sc.u64),
        ("btf_size", sc.u32),
        ("btf_log_size", sc.u32),
        ("btf_log_level", sc.u32),
        ("btf_log_true_size", sc.u32),
        ("btf_flags", sc.u32),
        ("btf_token_fd", sc.s32),
    ]


class LoadedBtf(OwnedFd):
    """A BTF object the kernel accepted; owns its fd."""

    _what = "btf"


def load_btf(blob: bytes) -> LoadedBtf:
    """BPF_BTF_LOAD ``blob`` (a whole .BTF section).  On refusal the first
    attempt is repeated with a log so the KernelError says why."""
    data = ctypes.create_string_buffer(bytes(blob), len(blob))
    attr = BtfLoadAttr(btf=ctypes.addressof(data), btf_size=len(blob))
    fd, err = _load(attr)
    if not err:
        return LoadedBtf(fd)
    log = ctypes.create_string_buffer(_LOG_SIZE)
    attr = BtfLoadAttr(btf=ctypes.addressof(data), btf_size=len(blob), btf_log_buf=ctypes.addressof(log),
                       btf_log_size=_LOG_SIZE, btf_log_level=1)
    fd, err2 = _load(attr)
    if not err2:  # accepted the second time: keep it
        return LoadedBtf(fd)
    text = log.value.decode(errors="replace")
    raise KernelError(err2, "BPF_BTF_LOAD", last_error_line(text) or "")


def _load(attr: BtfLoadAttr) -> tuple[int, int]:
    while True:
        fd, err = sc.bpf_raw(sc.BPF_BTF_LOAD, attr)
        if err != _errno.EINTR:
            return fd, err
