"""Helper functions callable from eBPF programs: ids and names (``ids``), the
registry of implementations and prototypes, and the helpers' environment."""

from .basic import BPF_GET_PRANDOM_U32, BPF_GET_SMP_PROCESSOR_ID, BPF_KTIME_GET_NS
from .defaults import default_registry, shared_default_registry
from .env import HelperEnv, StepClock, Task
from .prototype import UNKNOWN_PROTOTYPE, ArgFlag, ArgKind, Prototype, RetKind
from .registry import Helper, HelperFn, HelperRegistry, helper_name

__all__ = [
    "ArgFlag", "ArgKind", "BPF_GET_PRANDOM_U32", "BPF_GET_SMP_PROCESSOR_ID", "BPF_KTIME_GET_NS", "Helper",
    "HelperEnv", "HelperFn", "HelperRegistry", "Prototype", "RetKind", "StepClock", "Task", "UNKNOWN_PROTOTYPE",
    "default_registry", "helper_name", "shared_default_registry",
]
