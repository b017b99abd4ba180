"""Static gate: decide from the source alone whether a candidate may run.

Order: parse (syntax), forbidden constructs (policy), the merge contract
(syntax), then RestrictedPython's compiler (policy). Nothing is executed.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import marshal
import re
import time
from dataclasses import dataclass, field
from types import CodeType

from RestrictedPython import compile_restricted_exec
from RestrictedPython.transformer import IOPERATOR_TO_STR, RestrictingNodeTransformer, copy_locations

from sandbox.api import IMPORTABLE, MODULES
from sandbox.diagnosis import Diagnosis, Status
from sandbox.runtime import CANDIDATE_FILENAME, namespace_members

# Earlier releases let candidate code shadow the guard functions.
MIN_RESTRICTEDPYTHON = (8, 4)


def _require_restrictedpython() -> None:
    found = importlib.metadata.version("RestrictedPython")
    release = tuple(int(part) for part in re.findall(r"\d+", found)[:2])
    if release < MIN_RESTRICTEDPYTHON:
        raise ImportError(f"the sandbox needs RestrictedPython >= 8.4 (guard-shadowing escape before it); found {found}")


_require_restrictedpython()

DEFAULT_MAX_CODE_CHARS = 100_000

# Builtins a candidate never gets. Referencing one that the candidate did not
# bind itself is reported here, with its name, instead of as a NameError later.
FORBIDDEN_BUILTINS = frozenset(
    """
    open eval exec compile globals locals vars dir type object input breakpoint memoryview bytearray
    bytes super setattr delattr hasattr help exit quit classmethod staticmethod property id
    """.split()
)


class MergePolicy(RestrictingNodeTransformer):
    """RestrictedPython's policy plus two constructs real merge code uses.

    `t[mask] += x` compiles to `_augitem_(op, t, mask, x)`, which goes through
    the same `_write_`, `_getitem_` and `_inplacevar_` guards as the long
    form. `nonlocal` only rebinds a variable of the candidate's own enclosing
    function.
    """

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        if not isinstance(node.target, ast.Subscript):
            return super().visit_AugAssign(node)
        container = self.visit(node.target.value)
        key = self.visit(node.target.slice)
        value = self.visit(node.value)
        func = ast.Name("_augitem_", ast.Load())
        op = ast.Constant(IOPERATOR_TO_STR[type(node.op)])
        call = ast.Call(func=func, args=[op, container, key, value], keywords=[])
        statement = ast.Expr(call)
        for new in (func, op, call, statement):
            copy_locations(new, node)
        return statement

    def visit_Nonlocal(self, node: ast.Nonlocal) -> ast.AST:
        for name in node.names:
            self.check_name(node, name)
        return node


class _StripAnnotations(ast.NodeTransformer):
    """Annotations do nothing for a merge function but would be evaluated at def time."""

    def visit_arg(self, node: ast.arg) -> ast.arg:
        node.annotation = None
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        node.returns = None
        self.generic_visit(node)
        return node

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.stmt:
        if node.value is None:
            return ast.copy_location(ast.Pass(), node)
        self.generic_visit(node)
        return ast.copy_location(ast.Assign(targets=[node.target], value=node.value), node)


def _reserved(name: str) -> str | None:
    if name.startswith("__") and name.endswith("__") and len(name) > 4:
        return f"dunder name '{name}' is not allowed"
    if name.startswith("_") and name != "_":
        return f"name '{name}' starts with '_', which the sandbox reserves"
    return None


def _bound_names(tree: ast.AST) -> set[str]:
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.alias):
            bound.add(node.asname or node.name.partition(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return bound


def _policy_findings(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    bound = _bound_names(tree)

    def add(node: ast.AST, reason: str) -> None:
        found.append((getattr(node, "lineno", 0) or 0, reason))

    def check_name(node: ast.AST, name: str | None) -> None:
        if name and (reason := _reserved(name)):
            add(node, reason)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name not in MODULES:
                    add(node, f"import of '{alias.name}' is not allowed (importable: {IMPORTABLE})")
                check_name(node, alias.asname)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                add(node, "relative imports are not allowed")
            elif module not in MODULES:
                add(node, f"import from '{module}' is not allowed (importable: {IMPORTABLE})")
            else:
                members = namespace_members(MODULES[module])
                for alias in node.names:
                    if alias.name == "*":
                        add(node, f"'from {module} import *' is not allowed")
                    elif alias.name not in members:
                        add(node, f"{module}.{alias.name} is not in the sandbox allow-list")
                    check_name(node, alias.asname)
        elif isinstance(node, ast.ClassDef):
            add(node, "class definitions are not allowed")
        elif isinstance(node, (ast.Yield, ast.YieldFrom, ast.Await)):
            # A paused generator's `finally` runs whenever it is closed or
            # collected, after the call that made it has ended and outside its
            # guards and limits. Generator expressions stay: they hold no
            # finally, except or with blocks.
            keyword = "await" if isinstance(node, ast.Await) else "yield"
            add(node, f"'{keyword}' is not allowed: merge code runs to completion inside its call (use a list)")
        elif isinstance(node, ast.Name):
            check_name(node, node.id)
            if isinstance(node.ctx, ast.Load) and node.id in FORBIDDEN_BUILTINS and node.id not in bound:
                add(node, f"'{node.id}' is not available in the sandbox")
        elif isinstance(node, ast.Attribute):
            if node.attr.startswith("_") and node.attr != "_":
                kind = "dunder attribute" if node.attr.startswith("__") else "attribute"
                add(node, f"{kind} '{node.attr}' is not allowed")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            check_name(node, node.name)
        elif isinstance(node, ast.arg):
            check_name(node, node.arg)
        elif isinstance(node, ast.keyword):
            check_name(node, node.arg)
        elif isinstance(node, ast.ExceptHandler):
            check_name(node, node.name)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            for name in node.names:
                check_name(node, name)
    return found


_NEW_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def _module_scope(node: ast.AST) -> list[ast.AST]:
    """Nodes of `node` that execute in module scope (nested function bodies excluded)."""
    out, stack = [], [node]
    while stack:
        current = stack.pop()
        out.append(current)
        stack.extend(child for child in ast.iter_child_nodes(current) if not isinstance(child, _NEW_SCOPES))
    return out


def _contract(tree: ast.Module) -> tuple[int, str] | None:
    defs = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == "merge"]
    if not defs:
        return 1, "no top-level function named 'merge'"
    if len(defs) > 1:
        return defs[1].lineno, f"'merge' is defined {len(defs)} times at top level"
    for node in tree.body:
        if node is defs[0]:
            continue
        if isinstance(node, _NEW_SCOPES):
            continue
        for sub in _module_scope(node):
            rebinds = (isinstance(sub, ast.Name) and sub.id == "merge" and isinstance(sub.ctx, (ast.Store, ast.Del))) or (
                isinstance(sub, ast.alias) and (sub.asname or sub.name) == "merge"
            )
            if rebinds:
                return getattr(sub, "lineno", node.lineno), "top-level name 'merge' is rebound"
    args = defs[0].args
    positional = len(args.posonlyargs) + len(args.args)
    required = positional - len(args.defaults)
    required_kwonly = sum(default is None for default in args.kw_defaults)
    if required > 1 or required_kwonly or (positional == 0 and args.vararg is None):
        return defs[0].lineno, "merge must take exactly one required argument: the list of task vectors"
    return None


_RP_LINE = re.compile(r"^Line (\d+): (.*)$", re.S)


def compile_candidate(code: str, *, max_chars: int = DEFAULT_MAX_CODE_CHARS) -> tuple[CodeType | None, Diagnosis]:
    """Run the static gate; on success also return the restricted code object."""
    start = time.perf_counter()

    def fail(status: Status, reason: str, line: int | None = None) -> tuple[None, Diagnosis]:
        return None, Diagnosis(status, reason, line or None, seconds=time.perf_counter() - start)

    if not isinstance(code, str):
        raise TypeError(f"code must be str, not {type(code).__name__}")
    if len(code) > max_chars:
        return fail(Status.POLICY, f"source has {len(code)} characters; the limit is {max_chars}")
    try:
        tree = ast.parse(code, CANDIDATE_FILENAME)
    except SyntaxError as exc:
        return fail(Status.SYNTAX, f"{type(exc).__name__}: {exc.msg}", exc.lineno)
    except (ValueError, MemoryError, RecursionError) as exc:
        return fail(Status.SYNTAX, f"source cannot be parsed: {type(exc).__name__}: {exc}")
    try:
        tree = _StripAnnotations().visit(tree)
        findings = _policy_findings(tree)
        if findings:
            line, reason = min(findings, key=lambda f: f[0])
            return fail(Status.POLICY, reason, line)
        broken = _contract(tree)
        if broken:
            return fail(Status.SYNTAX, broken[1], broken[0])
        result = compile_restricted_exec(tree, filename=CANDIDATE_FILENAME, policy=MergePolicy)
    except (RecursionError, MemoryError) as exc:
        return fail(Status.SYNTAX, f"source too deeply nested to compile: {type(exc).__name__}")
    except SyntaxError as exc:
        return fail(Status.SYNTAX, f"{type(exc).__name__}: {exc.msg}", exc.lineno)
    if result.errors or result.code is None:
        message = result.errors[0] if result.errors else "RestrictedPython refused the source"
        match = _RP_LINE.match(message)
        if match:
            return fail(Status.POLICY, match.group(2), int(match.group(1)))
        return fail(Status.POLICY, message)
    return result.code, Diagnosis(Status.OK, seconds=time.perf_counter() - start)


@dataclass(frozen=True)
class CheckedCode:
    """Source after the static gate, which ran once: its verdict and, when it passed, the compiled module.

    `SandboxWorker.probe` and `merge_model` take it instead of a string and
    run it without checking again (the worker process loads `compiled`, it
    never compiles); a string passed there goes through `check` first. The
    compiled module travels as `marshal` bytes: from the caller to its own
    worker process (same interpreter), never the other way.
    """

    source: str
    diagnosis: Diagnosis
    compiled: bytes | None = field(default=None, repr=False)
    max_chars: int = DEFAULT_MAX_CODE_CHARS

    @property
    def ok(self) -> bool:
        return self.compiled is not None

    def code_object(self) -> CodeType:
        if self.compiled is None:
            raise ValueError("the static gate refused this code; there is nothing to run")
        return marshal.loads(self.compiled)


def check(code: str, *, max_chars: int = DEFAULT_MAX_CODE_CHARS) -> CheckedCode:
    """The static gate once: parse, policy checks, contract, RestrictedPython compile. Runs nothing."""
    compiled, diagnosis = compile_candidate(code, max_chars=max_chars)
    return CheckedCode(code, diagnosis, None if compiled is None else marshal.dumps(compiled), max_chars)


@functools.lru_cache(maxsize=256)
def check_cached(code: str, max_chars: int = DEFAULT_MAX_CODE_CHARS) -> CheckedCode:
    """`check`, remembered: mergekit's streaming path sends the same source for every tensor."""
    return check(code, max_chars=max_chars)


def check_source(code: str, *, max_chars: int = DEFAULT_MAX_CODE_CHARS) -> Diagnosis:
    """Static gate only: parse, policy checks, contract, RestrictedPython compile. Runs nothing."""
    return compile_candidate(code, max_chars=max_chars)[1]
