#!/usr/bin/env python3
"""The import graph of the crate's top-level modules, and its cycles.

usage: scripts/module_graph.py [CRATE_DIR]

Reads every `crate::` path in src/ (comments, doc comments, strings and
`#[cfg(test)]` items left out), maps each to the top-level module it names
(a name re-exported by `lib.rs` maps to the module it comes from), and
prints one line per module with the modules it imports. Then each cycle
(a strongly connected set of two or more modules). Exits 1 if there is one.
"""
import os
import re
import sys

ROOT = os.path.join(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."), "src")


def strip(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    out, at = [], 0
    for found in re.finditer(r"#\[cfg\(test\)\]", text):
        if found.start() < at:
            continue
        out.append(text[at:found.start()])
        j = found.end()
        while j < len(text) and text[j] not in "{;":
            j += 1
        if j < len(text) and text[j] == "{":
            depth = 0
            while j < len(text):
                depth += (text[j] == "{") - (text[j] == "}")
                j += 1
                if depth == 0:
                    break
        else:
            j += 1
        at = j
    out.append(text[at:])
    return "".join(out)


def top_module(path):
    rel = os.path.relpath(path, ROOT)[:-3].split(os.sep)
    return None if rel in (["lib"], ["main"]) else rel[0]


def paths(text):
    """Every `crate::a::b` path, with `use crate::{a, b::c}` trees expanded."""
    for tree in re.finditer(r"\bcrate::\{", text):
        depth, j = 1, tree.end()
        while j < len(text) and depth:
            depth += (text[j] == "{") - (text[j] == "}")
            j += 1
        for part in re.split(r"[,{}\s]+", text[tree.end():j - 1]):
            if part:
                yield part
    for simple in re.finditer(r"\bcrate::((?:\w+::)*\w+)", text):
        yield simple.group(1)


def main():
    files = []
    for folder, _, names in os.walk(ROOT):
        files += [os.path.join(folder, n) for n in names if n.endswith(".rs")]
    modules = sorted({m for m in map(top_module, files) if m})
    lib = strip(open(os.path.join(ROOT, "lib.rs")).read())
    reexport = {}
    for use in re.finditer(r"pub use (\w+)::([^;]+);", lib):
        for name in re.findall(r"\w+", use.group(2)):
            reexport.setdefault(name, use.group(1))
    edges = {m: set() for m in modules}
    for path in files:
        module = top_module(path)
        if module is None:
            continue
        for used in paths(strip(open(path).read())):
            first = used.split("::")[0]
            target = first if first in edges else reexport.get(first)
            if target and target != module:
                edges[module].add(target)
    for module in modules:
        print(f"{module} -> {', '.join(sorted(edges[module])) or '(nothing)'}")
    cycles = strongly_connected(edges)
    for cycle in cycles:
        print("cycle:", ", ".join(sorted(cycle)))
    print(f"modules={len(modules)} cycles={len(cycles)}")
    return 1 if cycles else 0


def strongly_connected(edges):
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(group)

    for v in edges:
        if v not in index:
            visit(v)
    return found


if __name__ == "__main__":
    sys.exit(main())
