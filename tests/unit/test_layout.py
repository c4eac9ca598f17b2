#!/usr/bin/env python3
"""The layout docs/ARCHITECTURE.md promises ("Layout"), checked on the tree.

- Each folder includes only the folders its row allows (by the headers its
  .c and .h files include), so the arrows point one way.
- No include circle between files.
- No non-test C file is over 1,000 lines.

Usage: test_layout.py SOURCE_DIR
"""
import collections
import os
import re
import subprocess
import sys

ALLOWED = {
    "vmnic": set(),
    "jumbo": set(),
    "hv-core": set(),
    "nettap": {"jumbo"},
    "vswitch": {"jumbo", "nettap"},
    "netvsp": {"vmnic", "hv-core", "vswitch", "jumbo"},
    "netvsc": {"vmnic", "hv-core", "nettap", "jumbo"},
    "hostd": {"vmnic", "hv-core", "nettap", "vswitch", "netvsp", "jumbo"},
    "vmq": set(),
    "pktgen": {"netvsc", "hv-core", "jumbo"},
}
MAX_LINES = 1000


def main():
    root = sys.argv[1]
    try:
        files = subprocess.check_output(["git", "-C", root, "ls-files", "*.c", "*.h"],
                                        text=True, stderr=subprocess.DEVNULL).split()
    except (OSError, subprocess.CalledProcessError):
        # Not a git checkout (a release tarball): every source file there.
        files = [os.path.relpath(os.path.join(d, n), root)
                 for d, _, names in os.walk(root) for n in names if n.endswith((".c", ".h"))]
    files = [f for f in files if f.split("/")[0] in ALLOWED]
    by_name = collections.defaultdict(list)
    for f in files:
        by_name[os.path.basename(f)].append(f)
    problems = []
    edges = collections.defaultdict(set)
    for f in files:
        text = open(os.path.join(root, f), encoding="utf-8").read()
        lines = text.count("\n")
        if f.endswith(".c") and lines > MAX_LINES:
            problems.append(f"{f}: {lines} lines (more than {MAX_LINES})")
        folder = f.split("/")[0]
        for inc in re.findall(r'^#include "([^"]+)"', text, re.M):
            targets = by_name.get(os.path.basename(inc), [])
            if len(targets) > 1:
                # Prefer the header of the including folder.
                own = [t for t in targets if t.split("/")[0] == folder]
                targets = own or targets
            for t in targets[:1]:
                edges[f].add(t)
                tf = t.split("/")[0]
                if tf != folder and tf not in ALLOWED[folder]:
                    problems.append(f"{f} includes {t}: {folder}/ may not include {tf}/")
    state = {}

    def visit(u, stack):
        state[u] = 1
        stack.append(u)
        for v in sorted(edges.get(u, ())):
            if state.get(v) == 1:
                problems.append("include circle: " + " -> ".join(stack[stack.index(v):] + [v]))
            elif not state.get(v):
                visit(v, stack)
        stack.pop()
        state[u] = 2

    for u in sorted(edges):
        if not state.get(u):
            visit(u, [])
    for p in problems:
        print("FAIL:", p)
    if problems:
        return 1
    print(f"PASS: {len(files)} files, folders include only what their rows allow, "
          f"no include circle, no .c file over {MAX_LINES} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
