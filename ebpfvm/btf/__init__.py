"""BTF: the type information clang puts in eBPF objects (.BTF) and the
per-instruction records that go with it (.BTF.ext).

``parse_btf(bytes) -> Btf`` gives the type table (``btf[id]``, one frozen
dataclass per kind); ``parse_btf_ext(bytes, btf) -> BtfExt`` the func_info,
line_info and CO-RE relocation records; ``type_size``/``type_name``/
``skip_modifiers`` answer questions that follow references, with a depth
bound so looping BTF fails cleanly.
"""

from .errors import BtfError
from .ext import BtfExt, CoreRelocation, CoreReloKind, FuncInfo, LineRecord, parse_btf_ext
from .parser import parse_btf
from .resolve import skip_modifiers, type_name, type_size
from .types import Btf, BtfType, Kind

__all__ = [
    "Btf",
    "BtfError",
    "BtfExt",
    "BtfType",
    "CoreRelocation",
    "CoreReloKind",
    "FuncInfo",
    "Kind",
    "LineRecord",
    "parse_btf",
    "parse_btf_ext",
    "skip_modifiers",
    "type_name",
    "type_size",
]
