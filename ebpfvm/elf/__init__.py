"""The ELF/BTF loader: eBPF object files (clang -target bpf) as ``BpfObject``.

``load_object(path) -> BpfObject`` with ``.programs`` (one ``Program`` per
entry function, subprograms linked in), ``.maps`` (``MapDefinition`` tuple
shared by all programs: BTF-defined, legacy and global data maps), ``.license``,
``.kern_version``, ``.btf``; ``obj.program(name)``.  Every problem with the
file raises an ``ElfError`` (or ``BtfError``) naming path, section and offset.
"""

from ebpfvm.btf import BtfError

from .errors import (
    ElfError,
    ElfFormatError,
    MapDefinitionError,
    ProgramNotFound,
    RelocationError,
    UnsupportedFeatureError,
)
from .object import BpfObject, ProgramDetails, SectionSummary, load_object
from .sections import SECTION_DEFS, SectionDef, classify

__all__ = [
    "SECTION_DEFS",
    "BpfObject",
    "BtfError",
    "ElfError",
    "ElfFormatError",
    "MapDefinitionError",
    "ProgramDetails",
    "ProgramNotFound",
    "RelocationError",
    "SectionDef",
    "SectionSummary",
    "UnsupportedFeatureError",
    "classify",
    "load_object",
]
