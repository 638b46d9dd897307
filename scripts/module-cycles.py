#!/usr/bin/env python3
"""Checks that the modules of a crate use each other in one direction only.

For each top-level module of `CRATE/src` (a file `x.rs` or a folder `x/`), it
collects the other top-level modules its code names (`crate::x`, or `crate::Y`
for a name the crate root re-exports from `x`), and reports every cycle in
that graph. The crate root (`lib.rs`) declares and assembles every module, so
it counts as using them all: a module that names an item defined in the root
itself makes a cycle. Exit status 1 when there is a cycle.

    scripts/module-cycles.py domain server
"""
import re
import sys
from pathlib import Path

USE_GROUP = re.compile(r"pub\s+use\s+(\w+)::(\{[^}]*\}|\w+)", re.S)


def top_modules(src: Path) -> dict[str, list[Path]]:
    mods: dict[str, list[Path]] = {}
    for p in sorted(src.rglob("*.rs")):
        rel = p.relative_to(src)
        if rel.parts[0] == "bin" or rel.name in ("lib.rs", "main.rs") and len(rel.parts) == 1:
            continue
        name = rel.parts[0].removesuffix(".rs")
        mods.setdefault(name, []).append(p)
    return mods


def reexports(src: Path, mods) -> dict[str, str]:
    """Names the root re-exports, mapped to the module they come from."""
    out = {}
    root = src / "lib.rs"
    if not root.exists():
        return out
    for m in USE_GROUP.finditer(root.read_text()):
        module, names = m.group(1), m.group(2)
        if module not in mods:
            continue
        for n in re.findall(r"\w+", names):
            out[n] = module
    return out


def referenced(text: str) -> list[str]:
    """The first path segments after `crate::`, grouped imports included
    (`use crate::{a::X, b};` names `a` and `b`)."""
    names = re.findall(r"\bcrate::(\w+)", text)
    for group in re.findall(r"\bcrate::\{([^;]*)\}", text):
        # Top-level items of the group: what follows `{` or a `,` at depth 0.
        depth, item = 0, ""
        for ch in group + ",":
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                m = re.match(r"\s*(\w+)", item)
                if m:
                    names.append(m.group(1))
                item = ""
                continue
            item += ch
    return names


ROOT = "(crate root)"
ROOT_ITEM = re.compile(r"^pub\s+(?:async\s+)?(?:struct|enum|fn|type|trait|const|static)\s+(\w+)", re.M)


def graph(src: Path) -> dict[str, set[str]]:
    mods = top_modules(src)
    names = reexports(src, mods)
    root = src / "lib.rs"
    root_items = set(ROOT_ITEM.findall(root.read_text())) if root.exists() else set()
    edges: dict[str, set[str]] = {m: set() for m in mods}
    if root_items:
        edges[ROOT] = set(mods)
    for module, files in mods.items():
        for f in files:
            # Comments name modules without using them.
            text = re.sub(r"//[^\n]*", "", f.read_text())
            for target in referenced(text):
                target = names.get(target, target)
                if target in mods and target != module:
                    edges[module].add(target)
                elif target in root_items:
                    edges[module].add(ROOT)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main() -> int:
    bad = False
    for crate in sys.argv[1:] or ["domain", "server"]:
        edges = graph(Path(crate) / "src")
        found = cycles(edges)
        for comp in found:
            bad = True
            detail = "; ".join(f"{m} -> {', '.join(sorted(edges[m] & set(comp)))}" for m in comp)
            print(f"{crate}: module cycle among {', '.join(comp)} ({detail})")
        if not found:
            print(f"{crate}: {len(edges)} modules, no cycle")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
