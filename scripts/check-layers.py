#!/usr/bin/python3
"""check-layers.py - the include graph of src/ against the folder order.

Usage: check-layers.py [SOURCE_ROOT]   (default: the parent of this script's folder)

Reads every `#include "..."` of every .c and .h file under src/ and fails
(exit 1, one line per problem) when
  - a folder includes a header of a folder it may not use (table below);
  - an included header exists neither under src/ (by its folder path, or
    next to the including file) nor under include/ (nor is generated);
  - src/ holds a folder that is not in the table, or a source file outside
    every folder.
A folder's subfolders (kernels/avx2, kernels/neon) belong to it.
Run by `meson test` as check_layers; src/README.md explains the order.
"""
import os
import re
import sys

# The layers, in the order calls flow: each row names a folder of src/ and
# the folders it may include besides itself.  "*" = any folder.
LAYERS = [
    ("common", []),
    ("kernels", ["common"]),
    ("format", ["common", "kernels"]),
    ("reader", ["common", "kernels", "format"]),
    ("container", ["common", "kernels", "format", "reader"]),
    ("plan", ["common", "kernels", "format", "reader", "container"]),
    ("convert", ["common", "kernels", "format", "reader", "container", "plan"]),
    # future folders
    ("tokenizer", ["common"]),
    ("runtime", ["common", "kernels", "format", "reader", "container", "plan", "tokenizer"]),
    ("cli", ["*"]),
]

# Headers made by the build (meson.build configure_file), found in the build directory.
GENERATED = {"mixq_config.h"}

INCLUDE_RE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
    src = os.path.join(root, "src")
    public = os.path.join(root, "include")
    allowed = {name: list(uses) for name, uses in LAYERS}
    problems = []

    for entry in sorted(os.listdir(src)):
        path = os.path.join(src, entry)
        if os.path.isdir(path):
            if entry not in allowed:
                problems.append(f"src/{entry}/: folder not in the layer table of scripts/check-layers.py")
        elif entry.endswith((".c", ".h")):
            problems.append(f"src/{entry}: source file outside every folder")

    count = 0
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, src)
        if rel_dir == ".":
            continue
        folder = rel_dir.split(os.sep)[0]
        for fn in sorted(filenames):
            if not fn.endswith((".c", ".h")):
                continue
            rel = os.path.join("src", rel_dir, fn)
            with open(os.path.join(dirpath, fn), encoding="utf-8", errors="replace") as f:
                for lineno, line in enumerate(f, 1):
                    m = INCLUDE_RE.match(line)
                    if not m:
                        continue
                    count += 1
                    inc = m.group(1)
                    where = f"{rel}:{lineno}: #include \"{inc}\""
                    if "/" in inc:
                        target = inc.split("/")[0]
                        if not os.path.isfile(os.path.join(src, inc)):
                            problems.append(f"{where}: no such header under src/")
                            continue
                        if folder not in allowed:
                            continue  # reported above
                        uses = allowed[folder]
                        if target != folder and "*" not in uses and target not in uses:
                            problems.append(f"{where}: {folder}/ may not include {target}/ "
                                            f"(it may use: {', '.join(uses) or 'only itself'})")
                    elif os.path.isfile(os.path.join(dirpath, inc)):
                        pass  # a header of the same folder
                    elif os.path.isfile(os.path.join(public, inc)) or inc in GENERATED:
                        pass  # the public API (include/) or a generated header
                    else:
                        problems.append(f"{where}: no such header under src/ or include/")

    for p in problems:
        print(p)
    if problems:
        print(f"check-layers: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"check-layers: {count} includes checked, the layers hold")
    return 0


if __name__ == "__main__":
    sys.exit(main())
