#!/usr/bin/env python3
"""Every quant type of the table (src/kernels/qtype.c) is where the docs say it is.

The type lines of `mixq convert --help` and `mixq plan --help` come from the
table; this checks that they list every row, that the "unknown type" error
lists the same names, that docs/CLI.md and docs/mixq.1 hold exactly those
lines between their "types: begin/end" markers, that FORMAT.md §4 has a row
for every type, and that the Python reader (python/mixq/_format.py) has the
same group sizes, planes and code biases as the C rows.

usage: check_type_docs.py MIXQ SOURCE_ROOT
"""
import os, re, subprocess, sys

failures = []


def fail(msg):
    failures.append(msg)


def table_rows(root):
    """name -> {field: value} of the designated initializers in qtype.c (plain rows via PLAIN())."""
    text = open(os.path.join(root, "src/kernels/qtype.c"), encoding="utf-8").read()
    body = text[text.index("mx_qtypes[MIXQ_QT_COUNT] = {"):]
    body = body[:body.index("\n};")]
    rows = {}
    for m in re.finditer(r'PLAIN\((MIXQ_QT_\w+), "(\w+)", (\w+), (\d+), "([^"]*)"\)', body):
        rows[m.group(2)] = {"id": m.group(1), "plain": True, "help": m.group(5)}
    for m in re.finditer(r'\[(MIXQ_QT_\w+)\] = \{(.*?)\}(?:,\n|,?\s*$)', body, re.S):
        fields = {}
        for f in re.finditer(r'\.(\w+) = ("[^"]*"|\{[^}]*\}|[-\w]+)', m.group(2)):
            v = f.group(2)
            if v.startswith('"'):
                v = v[1:-1]
            elif v.startswith("{"):
                v = tuple(int(x) for x in v[1:-1].split(",") if x.strip())
            elif re.fullmatch(r"-?\d+", v):
                v = int(v)
            fields[f.group(1)] = v
        if "name" in fields:
            fields["id"] = m.group(1)
            rows[fields["name"]] = fields
    return rows


def run(mixq, *args):
    p = subprocess.run([mixq, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return p.returncode, p.stdout, p.stderr


def types_block(help_text, what):
    """The lines after 'Types (' up to the first empty line."""
    lines = help_text.split("\n")
    for i, line in enumerate(lines):
        if line.startswith("Types ("):
            block = []
            for l in lines[i + 1:]:
                if not l.strip():
                    break
                block.append(l)
            return block
    fail("%s: no 'Types (' block" % what)
    return []


def marked(text, what):
    m = re.search(r"types: begin.*?\n(.*?)\n[^\n]*types: end", text, re.S)
    if not m:
        fail("%s: no 'types: begin' ... 'types: end' block" % what)
        return []
    return m.group(1).split("\n")


def main():
    mixq, root = sys.argv[1], sys.argv[2]
    rows = table_rows(root)
    if len(rows) < 10:
        fail("parsed only %d rows from src/kernels/qtype.c" % len(rows))
    selectable = [n for n in rows if n != "raw"]

    # --help of convert and plan: one line per selectable type, in table order, with its help text
    blocks = {}
    for cmd in ("convert", "plan"):
        rc, out, err = run(mixq, cmd, "--help")
        if rc != 0:
            fail("mixq %s --help exits %d: %s" % (cmd, rc, err))
        blocks[cmd] = types_block(out, "mixq %s --help" % cmd)
        names = [l.split()[0] for l in blocks[cmd]]
        if names != selectable:
            fail("mixq %s --help lists %s, the table %s" % (cmd, names, selectable))
        for l in blocks[cmd]:
            n = l.split()[0]
            if n in rows and rows[n].get("help", "") not in l:
                fail("mixq %s --help: line of %s lacks its help text %r" % (cmd, n, rows[n].get("help")))
    if blocks.get("convert") != blocks.get("plan"):
        fail("convert --help and plan --help list the types differently")

    # the unknown-type error of both commands names every selectable type
    for args in (["convert", "x", "-o", "y", "--type", "nosuch"], ["plan", "x", "--type", "nosuch"]):
        rc, out, err = run(mixq, *args)
        if rc != 2:
            fail("%s: exit %d, expected 2" % (" ".join(args), rc))
        listed = re.findall(r"[a-z0-9_]+", err[err.find("(choose"):])
        for n in selectable:
            if n not in listed:
                fail("mixq %s: the unknown-type error does not list %s: %s" % (args[0], n, err.strip()))

    # docs/CLI.md and docs/mixq.1 hold exactly the --help lines
    cli_md = open(os.path.join(root, "docs/CLI.md"), encoding="utf-8").read()
    md = [l for l in marked(cli_md, "docs/CLI.md") if not l.startswith("```")]
    if md[1:] != blocks.get("convert") or not md[:1] or not md[0].startswith("Types ("):
        fail("docs/CLI.md: the types block differs from 'mixq convert --help'; paste its 'Types' lines")
    man = open(os.path.join(root, "docs/mixq.1"), encoding="utf-8").read()
    mb = [l.replace("\\-", "-") for l in marked(man, "docs/mixq.1") if not l.startswith(".")]
    if mb != blocks.get("convert"):
        fail("docs/mixq.1: the types block differs from 'mixq convert --help' (with '-' written '\\-')")

    # FORMAT.md §4: a table row for every type, and a subsection for every quantized one
    fmt = open(os.path.join(root, "format/FORMAT.md"), encoding="utf-8").read()
    sec4 = fmt[fmt.index("## 4. Quant types"):fmt.index("## 5.")]
    table = [l for l in sec4.split("\n") if l.startswith("| `")]
    for n in rows:
        if not any("`%s`" % n in l.split("|")[1] for l in table):
            fail("FORMAT.md §4: no table row for %s" % n)
        if rows[n].get("quantized") == "true" and not re.search(r"^### 4\.\d+ .*\b%s\b" % n, sec4, re.M):
            fail("FORMAT.md §4: no subsection for %s" % n)

    # the header schema names every type in its quant_type description
    schema = open(os.path.join(root, "format/header.schema.json"), encoding="utf-8").read()
    m = re.search(r'"quant_type":\s*\{\s*"description":\s*"([^"]*)"', schema)
    for n in rows:
        if not m or not re.search(r"\b%s\b" % n, m.group(1)):
            fail("format/header.schema.json: the quant_type description does not name %s" % n)

    # the Python reader's table
    sys.path.insert(0, os.path.join(root, "python"))
    try:
        from mixq import _format
    except Exception as e:  # noqa: BLE001 - numpy may be missing; _format itself needs nothing
        sys.path.insert(0, os.path.join(root, "python", "mixq"))
        try:
            import _format  # type: ignore
        except Exception:
            fail("cannot import python/mixq/_format.py: %s" % e)
            _format = None
    if _format is not None:
        for n, r in rows.items():
            q = _format.QTYPES.get(n)
            if q is None:
                fail("python/mixq/_format.py: no QType for %s" % n)
                continue
            if r.get("quantized") != "true":
                continue
            want = {"group_min": r.get("group_min"), "group_max": r.get("group_max"),
                    "group_default": r.get("group_default"), "code_planes": r.get("code_planes"),
                    "scale_planes": r.get("scale_planes"), "qbias": r.get("code_bias", 0),
                    "cbias": r.get("scale_code_bias", 0)}
            for k, v in want.items():
                if getattr(q, k) != v:
                    fail("python/mixq/_format.py: %s.%s is %r, the C table says %r" % (n, k, getattr(q, k), v))

    for f in failures:
        print("FAIL:", f)
    print("%d types checked, %d failures" % (len(rows), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
