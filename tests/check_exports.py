#!/usr/bin/env python3
"""The closed library surface: every symbol libmixq.so defines in its dynamic
symbol table must start with "mixq_" (the MIXQ_API functions of include/mixq.h
and include/mixq_tools.h); the linker's own symbols are ignored.

Reads the ELF .dynsym section directly (no binutils needed).  Exit 0 when the
surface is closed, 1 with the offending names otherwise, 77 (skipped) when the
file is not ELF.

usage: check_exports.py LIBRARY
"""
import struct
import sys

PREFIX = "mixq_"
LINKER_SYMBOLS = {"_init", "_fini", "_edata", "_end", "__bss_start",
                  "_DYNAMIC", "_GLOBAL_OFFSET_TABLE_", "__data_start", "data_start",
                  "_IO_stdin_used", "__dso_handle", "__end__", "__bss_start__",
                  "_bss_end__", "__bss_end__"}
SHT_DYNSYM = 11
SHN_UNDEF = 0
STB_LOCAL = 0


def dynamic_symbols(data):
    """(name, binding, type, section index) of each entry of .dynsym."""
    if data[:4] != b"\x7fELF":
        return None
    is64 = data[4] == 2
    end = "<" if data[5] == 1 else ">"
    if is64:
        shoff, = struct.unpack_from(end + "Q", data, 0x28)
        shentsize, shnum = struct.unpack_from(end + "HH", data, 0x3A)
        shdr = end + "IIQQQQIIQQ"
        sym, symsize = end + "IBBHQQ", 24
    else:
        shoff, = struct.unpack_from(end + "I", data, 0x20)
        shentsize, shnum = struct.unpack_from(end + "HH", data, 0x2E)
        shdr = end + "IIIIIIIIII"
        sym, symsize = end + "IIIBBH", 16
    sections = [struct.unpack_from(shdr, data, shoff + i * shentsize) for i in range(shnum)]
    out = []
    for sh in sections:
        if sh[1] != SHT_DYNSYM:
            continue
        offset, size, link = sh[4], sh[5], sh[6]
        stroff = sections[link][4]
        for i in range(size // symsize):
            f = struct.unpack_from(sym, data, offset + i * symsize)
            if is64:
                name_off, info, shndx = f[0], f[1], f[3]
            else:
                name_off, info, shndx = f[0], f[3], f[5]
            nul = data.index(b"\0", stroff + name_off)
            name = data[stroff + name_off:nul].decode("utf-8", "replace")
            out.append((name, info >> 4, info & 0xF, shndx))
    return out


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    with open(sys.argv[1], "rb") as f:
        syms = dynamic_symbols(f.read())
    if syms is None:
        print("%s: not an ELF file; skipped" % sys.argv[1])
        return 77
    defined = sorted({n for n, bind, _, shndx in syms
                      if n and shndx != SHN_UNDEF and bind != STB_LOCAL})
    exported = [n for n in defined if n not in LINKER_SYMBOLS]
    bad = [n for n in exported if not n.startswith(PREFIX)]
    ours = len(exported) - len(bad)
    print("%s: %d defined dynamic symbols, %d %s" % (sys.argv[1], len(exported), ours, PREFIX))
    if bad:
        print("exported without the %s prefix (%d):" % (PREFIX, len(bad)))
        for n in bad:
            print("  " + n)
        return 1
    if ours == 0:
        print("no %s symbol exported at all" % PREFIX)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
