"""The direction of imports that ARCHITECTURE.md sets out, checked on the source tree.

Every module under src/inferplane is parsed (never imported) and each import it makes is
held against the rules below: top-level imports, imports inside functions and under
`if TYPE_CHECKING:`, relative imports, and `importlib.import_module("...")` with a literal
name. A violation names the importing file, its line, the forbidden module and the rule.

The rules bind the product's code only: tests may reach any layer (a store test opens the
store, a policy test may race two schedulers through it), and so may `cli/`, the composition
point that starts each process (`inferplane control`, `inferplane up`) and so imports
`control/`.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = "inferplane"

CEL_LIBRARY = frozenset({"celpy", "lark"})
"""cel-python (pyproject.toml) is imported as `celpy`; `lark` is its parser, whose exception and
tree types policy/devices.py reads to say where a selector fails to parse and which names it
uses: part of the CEL library, not a second dependency."""


def within(module: str, package: str) -> bool:
    """Whether `module` is `package` or inside it (inferplane.api.fleet is within
    inferplane.api; inferplane.apikeys is not)."""
    return module == package or module.startswith(package + ".")


def is_stdlib(module: str) -> bool:
    return module.split(".")[0] in sys.stdlib_module_names


@dataclass(frozen=True)
class Rule:
    """One rule of ARCHITECTURE.md: which importers it binds and which modules it forbids them."""

    says: str
    """The rule in ARCHITECTURE.md's words, printed beside each violation."""
    binds: Callable[[str], bool]
    """Whether the rule applies to a module of this name."""
    forbids: Callable[[str], bool]
    """Whether an importer it binds may not import a module of this name."""
    example: str
    """A module the rule binds: a misspelt package would otherwise make the rule vacuous."""


def only(*packages: str, third_party: frozenset[str] | None) -> Callable[[str], bool]:
    """Forbids every inferplane module outside `packages` and, unless `third_party` is None
    (any), every third-party library not named in it; the standard library is always allowed."""

    def forbids(module: str) -> bool:
        if within(module, PACKAGE):
            return not any(within(module, f"{PACKAGE}.{p}") for p in packages)
        if is_stdlib(module) or third_party is None:
            return False
        return module.split(".")[0] not in third_party

    return forbids


def never(*packages: str) -> Callable[[str], bool]:
    """Forbids the inferplane `packages` and everything inside them."""
    return lambda module: any(within(module, f"{PACKAGE}.{p}") for p in packages)


def under(*packages: str) -> Callable[[str], bool]:
    return lambda module: any(within(module, f"{PACKAGE}.{p}") for p in packages)


def outside(*packages: str) -> Callable[[str], bool]:
    return lambda module: not under(*packages)(module)


RULES = (
    Rule(
        "policy/ imports only api/, the standard library and the CEL library",
        binds=under("policy"),
        forbids=only("api", "policy", third_party=CEL_LIBRARY),
        example="inferplane.policy.devices",
    ),
    Rule(
        "engine/ imports nothing of the rest: it is usable alone as `inferplane engine`",
        binds=under("engine"),
        forbids=only("engine", third_party=None),
        example="inferplane.engine.llm",
    ),
    Rule(
        "sim/ imports only policy/ and api/ (and the standard library)",
        binds=under("sim"),
        forbids=only("sim", "policy", "api", third_party=frozenset()),
        example="inferplane.sim",
    ),
    Rule(
        "gateway/ and agent/ reach the control plane only through the client, never control/",
        binds=under("gateway", "agent"),
        forbids=never("control"),
        example="inferplane.gateway.app",
    ),
    Rule(
        "only control/ writes the store: no other package imports store/",
        binds=outside("control", "store"),
        forbids=never("store"),
        example="inferplane.cli.serve",
    ),
    Rule(
        # Not written in ARCHITECTURE.md but implied by it: policy/ and sim/ import api/, so
        # api/ importing anything else of inferplane would bring it in by the back door.
        "api/ is the contract everything shares: it imports nothing else of inferplane",
        binds=under("api"),
        forbids=only("api", third_party=None),
        example="inferplane.api.kinds",
    ),
)


@dataclass(frozen=True)
class Import:
    """One module an import statement (or import_module call) names, where it does."""

    module: str
    line: int


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    module: str
    rule: Rule

    def __str__(self) -> str:
        return f"{self.path}:{self.line} imports {self.module} ({self.rule.says})"


def module_name(path: Path) -> str:
    """inferplane.api.fleet for src/inferplane/api/fleet.py; a package for its __init__.py."""
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(source: str, module: str, *, is_package: bool = False) -> Iterator[Import]:
    """Every module `source` (the text of `module`) imports, anywhere in its tree. A name
    imported from a module counts as that module's attribute (`from inferplane import store`
    is inferplane.store), so a submodule imported that way is caught too."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (Import(alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node.module or "", node.level, package)
            yield from (Import(f"{base}.{alias.name}", node.lineno) for alias in node.names)
        elif isinstance(node, ast.Call) and (name := _import_module_literal(node)):
            level = len(name) - len(name.lstrip("."))
            yield Import(_resolve(name[level:], level, package), node.lineno)


def _resolve(name: str, level: int, package: str) -> str:
    """The absolute name of `from {'.' * level}{name} import ...` written in `package`."""
    if level == 0:
        return name
    parts = package.split(".")
    base = ".".join(parts[: len(parts) - (level - 1)])
    return f"{base}.{name}" if name else base


def _import_module_literal(call: ast.Call) -> str | None:
    """The literal first argument of `importlib.import_module(...)` or `import_module(...)`."""
    func = call.func
    named = (isinstance(func, ast.Attribute) and func.attr == "import_module") or (
        isinstance(func, ast.Name) and func.id in {"import_module", "__import__"}
    )
    if not named or not call.args:
        return None
    first = call.args[0]
    return first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None


def violations(source: str, module: str, path: str, *, is_package: bool = False) -> list[Violation]:
    """What `source` (the text of `module`, at `path`) imports against the rules."""
    bound = [rule for rule in RULES if rule.binds(module)]
    return [
        Violation(path, found.line, found.module, rule)
        for found in imports(source, module, is_package=is_package)
        for rule in bound
        if rule.forbids(found.module)
    ]


def source_tree() -> Iterator[Path]:
    yield from sorted((SRC / PACKAGE).rglob("*.py"))


def test_the_source_tree_keeps_the_import_rules() -> None:
    found = [
        str(violation)
        for path in source_tree()
        for violation in violations(
            path.read_text(),
            module_name(path),
            str(path.relative_to(SRC.parent)),
            is_package=path.name == "__init__.py",
        )
    ]
    assert found == [], "imports against ARCHITECTURE.md's rules:\n" + "\n".join(found)


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.example)
def test_every_rule_binds_a_module_that_exists(rule: Rule) -> None:
    modules = {module_name(path) for path in source_tree()}
    assert rule.example in modules
    assert rule.binds(rule.example)


# -- the checker itself: each case must be reported, or the test above could never fail ------


@pytest.mark.parametrize(
    ("module", "source", "forbidden", "line"),
    [
        (
            "inferplane.policy.quotas",
            "from inferplane.store import sql\n",
            "inferplane.store.sql",
            1,
        ),
        ("inferplane.policy.quotas", "from inferplane import store\n", "inferplane.store", 1),
        ("inferplane.policy.quotas", "import math\nimport httpx\n", "httpx", 2),
        (
            "inferplane.policy.placement.fits",
            "def f():\n    from ...control import plane\n",
            "inferplane.control.plane",
            2,
        ),
        (
            "inferplane.gateway.app",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import inferplane.control\n",
            "inferplane.control",
            3,
        ),
        (
            "inferplane.agent.agent",
            "import importlib\nimportlib.import_module('inferplane.control.server')\n",
            "inferplane.control.server",
            2,
        ),
        ("inferplane.engine.llm", "from inferplane.api import meta\n", "inferplane.api.meta", 1),
        ("inferplane.engine.server.app", "from ...api import meta\n", "inferplane.api.meta", 1),
        ("inferplane.sim.fleet", "import numpy\n", "numpy", 1),
        (
            "inferplane.sim.fleet",
            "from inferplane.gateway import router\n",
            "inferplane.gateway.router",
            1,
        ),
        ("inferplane.cli.serve", "from inferplane.store import sql\n", "inferplane.store.sql", 1),
        (
            "inferplane.api.kinds",
            "from inferplane.policy import devices\n",
            "inferplane.policy.devices",
            1,
        ),
    ],
)
def test_a_forbidden_import_is_reported(
    module: str, source: str, forbidden: str, line: int
) -> None:
    # One import may break two rules (policy/ importing store/): each is reported.
    found = {(v.path, v.line, v.module) for v in violations(source, module, "synthetic.py")}
    assert found == {("synthetic.py", line, forbidden)}


@pytest.mark.parametrize(
    ("module", "source"),
    [
        (
            "inferplane.policy.devices",
            "import celpy\nimport lark\nfrom inferplane.api import fleet\n",
        ),
        ("inferplane.policy.routing", "from . import strategies\nfrom .. import quotas\n"),
        ("inferplane.engine.server.app", "import torch\nfrom .. import llm\n"),
        ("inferplane.control.server", "from inferplane.store import sql\n"),
        ("inferplane.store.sql", "from inferplane.store import base\n"),
        ("inferplane.cli.serve", "from inferplane.control import settings\n"),
        ("inferplane.gateway.app", "from inferplane import client\nimport importlib\n"),
        ("inferplane.sim.fleet", "import heapq\nfrom inferplane.policy import placement\n"),
    ],
)
def test_an_allowed_import_is_not_reported(module: str, source: str) -> None:
    assert violations(source, module, "synthetic.py", is_package=module.endswith("routing")) == []
