"""What is read back from a generator's reply: the code of `merge`, as the sandbox should see it.

A reply is free text. Its code block is taken, and what only a script would run (example usage, a test cut off
at the token limit, a `merge` a later one replaces) is dropped, so the sandbox judges the algorithm itself.
Nothing here runs the code: it is parsed, never executed. `compact` is the other direction: a scored parent's
code as an `evolve` prompt shows it.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize

from sandbox.api import MODULES

# Where a reply's code block ends: generation stops there (selfdev.generator.sampler). What the seed writes after the
# block (an explanation, example usage) is never run, and was 27% of the plain prompt's reply tokens in
# bench_generator (2026-12-02). The prompt asks for a ```python block, whose opening fence does not match; a reply
# that opened a bare ``` fence after some prose would stop there and read as no code (none of 72 replies did).
CODE_END = "\n```\n"

_FENCE = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)


def code_reply(code: str) -> str:
    """A reply as the prompt asks for it: `code` in one python block (for scored code that has no reply)."""
    return f"```python\n{code.rstrip()}\n```"


def extract_code(reply: str) -> str | None:
    """The code block that defines `merge`; else the reply itself if it parses and defines `merge`;
    else a block (or the reply) whose one entry point has another name, with a `merge` that calls it.

    A reply cut off at the token limit leaves an unclosed fence: its content is still taken, without the unfinished
    statement after `merge` (`without_cut_tail`); a cut inside `merge` is left for the sandbox to diagnose.
    """
    blocks = [b.strip() for b in _FENCE.findall(reply)]
    unclosed = reply.count("```") % 2 == 1  # the last block runs to the end of the reply: cut at the token limit
    for i, block in enumerate(blocks):
        if re.search(r"^\s*def\s+merge\s*\(", block, re.MULTILINE):
            cut = unclosed and i == len(blocks) - 1
            return without_demo(without_cut_tail(block + "\n") if cut else block + "\n")
    try:
        tree = ast.parse(reply)
    except SyntaxError:
        tree = None
    if tree is not None and any(isinstance(n, ast.FunctionDef) and n.name == "merge" for n in tree.body):
        return without_demo(reply.strip() + "\n")
    for source in blocks or [reply.strip()]:
        aliased = _alias_entry_point(without_demo(source + "\n"))
        if aliased is not None:
            return aliased
    return None


def _alias_entry_point(source: str) -> str | None:
    """`source` plus `def merge(task_vectors)` calling its last top-level function of one required argument.

    The seed model often names its function `merge_task_vectors` or `merge_models`;
    the algorithm is the same, so it is kept rather than archived as "no code".
    Only parsed here, never run: the sandbox checks the result like any other.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    functions = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    if not functions:
        return None
    entry = functions[-1]  # helpers come first, the entry point last
    args = entry.args
    required = len(args.posonlyargs) + len(args.args) - len(args.defaults)
    if required != 1 or any(default is None for default in args.kw_defaults):
        return None
    return f"{source}\n\n\ndef merge(task_vectors):\n    return {entry.name}(task_vectors)\n"


def without_cut_tail(source: str) -> str:
    """`source` up to the last top-level statement before which it parses and defines `merge`, if it does not parse.

    A reply that hits the token limit is cut mid-statement. When the cut falls after `merge` (in a test function
    or an example call the seed writes after it: 3 of 8 cut `evolve` replies in bench_generator, 2026-12-02), the
    algorithm itself is whole, and only the unfinished tail is dropped. Code whose own `merge` does not parse is
    returned unchanged, for the sandbox to diagnose.
    """
    try:
        ast.parse(source)
        return source
    except SyntaxError:
        pass
    lines = source.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line[:1] not in ("", " ", "\t", "\n", "#", ")", "]", "}")]
    for start in reversed(starts):
        head = "".join(lines[:start])
        try:
            tree = ast.parse(head)
        except SyntaxError:
            continue
        if any(isinstance(n, ast.FunctionDef) and n.name == "merge" for n in tree.body):
            while start > 0 and lines[start - 1].lstrip()[:1] in ("#", ""):
                start -= 1  # the comment that introduces the cut statement ("# Test it")
            return "".join(lines[:start]).rstrip() + "\n"
    return source


# Top-level statements that only a script runs: an example call, a printout, a `__main__` block, a loop.
_DEMO = (ast.Expr, ast.If, ast.For, ast.While, ast.With, ast.Try)


def without_demo(source: str) -> str:
    """`source` without the script around the algorithm: what `merge` cannot reach is dropped.

    The seed often follows its function with example usage (`task_vectors = [torch.randn(4)]`,
    `print(merge(task_vectors))`, an `if __name__ == "__main__":` block). The sandbox would run it when
    it loads the module, on made-up inputs, and report that script's failure as the algorithm's
    (in two control runs 20 of 43 failures carried such a script; without it 5 of them ran). Kept: imports, functions,
    classes (so the policy still refuses them by name), the module docstring, the top-level
    assignments a function reads, and the imports of modules the sandbox has or whose names are read.
    A `merge` that a later `merge` replaces is dropped as well: Python runs the last one. Asked to combine the
    algorithms it was shown, the seed often writes them out again and then its own (3 of 48 `evolve` replies in
    bench_generator, 2026-12-02), which the sandbox refuses as a second definition.
    Code that does not parse is returned unchanged, for the sandbox to diagnose.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    read = set().union(*(_globals_read(fn) for fn in tree.body if isinstance(fn, (ast.FunctionDef, ast.ClassDef))))
    merges = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "merge"]
    # Unless module-level code reads an earlier `merge` (`base = merge`): then the sandbox's refusal stands.
    at_load = [node for node in tree.body if not isinstance(node, (ast.FunctionDef, ast.ClassDef, *_DEMO))]
    for fn in (n for n in tree.body if isinstance(n, ast.FunctionDef)):  # decorators and defaults run at load too
        at_load += [*fn.decorator_list, *fn.args.defaults, *(d for d in fn.args.kw_defaults if d is not None)]
    module_reads = {n.id for node in at_load for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    replaced = merges[:-1] if "merge" not in module_reads else []

    def kept(i: int, node: ast.stmt) -> bool:
        if i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            return True  # the module docstring
        if any(node is m for m in replaced):
            return False
        if isinstance(node, _DEMO):
            return False
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            return any(isinstance(n, ast.Name) and n.id in read for t in targets for n in ast.walk(t))
        return True

    body = [node for i, node in enumerate(tree.body) if kept(i, node)]
    # An import of a module the sandbox does not have, whose names nothing kept reads, is dropped too: the seed
    # copies the prompt's list of importable modules and adds one (`import random`, 1 of 24 paper replies in run 6).
    used = {n.id for node in body for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    body = [
        n for n in body
        if not (isinstance(n, (ast.Import, ast.ImportFrom)) and _unavailable(n) and not _bound_by(n) & used)
    ]
    dropped = [node for node in tree.body if node not in body]
    if not dropped:
        return source  # the code exactly as written
    # The comment that introduces a dropped script ("# Example usage:") goes with it.
    return _cut(source, dropped, leading_comments=True)


def compact(source: str) -> str:
    """`source` as a parent is shown in an `evolve` prompt: without docstrings of several lines, lines that hold
    only a comment, and imports nothing reads (a one-line docstring, which names the idea, stays; so does a comment
    at the end of a line of code).

    The seed copies what it is shown, docstrings, comments and unused `import torch.nn as nn` lines included: 8 of 24
    `evolve` replies hit the 320-token limit in bench_generator (2026-12-02) against 4 of 24 plain ones, and a cut
    reply rarely runs. Shown compact parents, its replies ran 18 of 24 (without the comment lines: 19), with 298
    tokens per executable reply (272). Code that does not parse is shown as it is.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    # `import torch` stays: the prompt asks for code that starts with it.
    used = {"torch"} | {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    dropped: list[ast.stmt] = [
        n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom)) and not _bound_by(n) & used
    ]
    for scope in [tree, *(n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef)))]:
        first = scope.body[0] if scope.body else None
        docstring = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)
        if docstring and len(scope.body) > 1 and "\n" in first.value.value.strip():
            dropped.append(first)
    shown = _cut(source, dropped, leading_comments=False) if dropped else source
    return _without_comment_lines(shown)


def _without_comment_lines(source: str) -> str:
    """`source` without the lines that hold only a comment (found by tokenize, so a `#` inside a string stays)."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return source
    lines = source.splitlines()
    alone = {t.start[0] - 1 for t in tokens if t.type == tokenize.COMMENT and not lines[t.start[0] - 1][: t.start[1]].strip()}
    if not alone:
        return source
    return _without_lines(lines, alone)


def _cut(source: str, nodes: list[ast.stmt], *, leading_comments: bool) -> str:
    """`source` without the lines of `nodes` (and the comments right above them, with `leading_comments`).

    Cut by lines rather than `ast.unparse`, so what is kept stays as written, comments included.
    """
    lines = source.splitlines()
    cut: set[int] = set()
    for node in nodes:
        first = node.lineno - 1
        while leading_comments and first > 0 and lines[first - 1].lstrip().startswith("#"):
            first -= 1
        cut.update(range(first, node.end_lineno))
    return _without_lines(lines, cut)


def _without_lines(lines: list[str], dropped: set[int]) -> str:
    """`lines` without those at the indices `dropped`, with no more than two blank lines left in a row."""
    kept = "\n".join(line for i, line in enumerate(lines) if i not in dropped)
    return re.sub(r"\n{3,}", "\n\n\n", kept).strip() + "\n"


def _unavailable(node: ast.Import | ast.ImportFrom) -> bool:
    """An import of a module the sandbox does not have (sandbox.api.MODULES), or a relative one."""
    if isinstance(node, ast.ImportFrom):
        return bool(node.level) or (node.module or "") not in MODULES
    return any(alias.name not in MODULES for alias in node.names)


def _bound_by(node: ast.Import | ast.ImportFrom) -> set[str]:
    """The names an import binds (`import a.b` binds `a`)."""
    if isinstance(node, ast.ImportFrom):
        return {alias.asname or alias.name for alias in node.names}
    return {alias.asname or alias.name.split(".")[0] for alias in node.names}


def _globals_read(definition: ast.FunctionDef | ast.ClassDef) -> set[str]:
    """Names `definition` reads that it does not bind itself (arguments, assignments): the globals it needs."""
    bound, loaded = set(), set()
    for node in ast.walk(definition):
        if isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
    return loaded - bound
