"""``python -m benchmarks [suite] [options]``; suites: compare (the default:
every workload on interpreter, JIT, kernel and native C), interp, objects, jit, verifier."""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    suites = {"compare": "benchmarks.suite", "interp": "benchmarks.interp_speed",
              "objects": "benchmarks.objects_speed", "jit": "benchmarks.jit_speed",
              "verifier": "benchmarks.verifier_speed"}
    if argv and argv[0] in ("-h", "--help") or argv and argv[0] not in suites and not argv[0].startswith("-"):
        print(f"usage: python -m benchmarks [{{{','.join(suites)}}}] [options]  (default: compare)",
              file=sys.stderr)
        return 0 if argv[0] in ("-h", "--help") else 2
    from importlib import import_module
    if not argv or argv[0].startswith("-"):
        return import_module(suites["compare"]).main(argv)
    return import_module(suites[argv[0]]).main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
