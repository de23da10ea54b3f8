"""``python -m benchmarks <suite> [options]``; suites: interp, objects, jit."""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    suites = {"interp": "benchmarks.interp_speed", "objects": "benchmarks.objects_speed",
              "jit": "benchmarks.jit_speed"}
    if not argv or argv[0] not in suites:
        print(f"usage: python -m benchmarks {{{','.join(suites)}}} [options]", file=sys.stderr)
        return 2
    from importlib import import_module
    return import_module(suites[argv[0]]).main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
