"""The apps stack in layers, and import only downwards.

Bottom to top:

    layer 0   people, labels        (their domain modules import no other app)
    layer 1   donations
    layer 2   validation
    layer 3   annotations           (outlines are voted on by validation's rules)
    layer 4   exports
    roof      imagemonkey/          settings, urls, api_urls, openapi, wsgi, site pages

*Interface* modules face the outside: views, api, admin, urls, api_urls, *_urls,
*_views, forms, apps, middleware, context_processors, and anything under
management/ or templatetags/. Every other module of an app is a *domain* module.

The rules, one test each:

a. a domain module imports only its own app and apps in strictly lower layers (a
   layer-0 app: only itself). Imports inside functions count, and so do
   ``apps.get_model("app", ...)`` and model strings such as
   ``ForeignKey("validation.Voter")``: they depend on that app as much as an import.
b. no module imports another app's interface modules, nor a private name of
   another app (``_name``, also as ``module._name``, or a module named ``_name``).
   The roof's urls, api_urls and openapi may import the apps' urls, api and views.
c. no import cycles among the modules of the apps and the roof, counting the
   imports that run at import time (imports inside functions run later; (a) still
   judges them).
d. no app imports ``imagemonkey`` (an app reads settings from ``django.conf.settings``).
e. bench/ uses only the project's public names, and its modules import each other
   without cycles (here imports inside functions count too: crowd <-> crowd_report).

Two more tests keep the scan honest: every app has a layer, every module parses.
The check is static: every .py file of the apps, the roof and bench/ (migrations
and tests excluded) is parsed with ``ast``; nothing is imported, so these tests
need neither the database nor the services.
"""

from __future__ import annotations

import ast
from collections import deque
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

LAYERS = {
    "people": 0,
    "labels": 0,
    "donations": 1,
    "validation": 2,
    "annotations": 3,
    "exports": 4,
}
ROOF = "imagemonkey"
BENCH = "bench"
NOT_APPS = {ROOF, BENCH, "tests", "deploy", "tools"}
SKIPPED_FOLDERS = {"migrations", "tests", "__pycache__"}

INTERFACE_NAMES = {
    "views",
    "api",
    "admin",
    "urls",
    "api_urls",
    "forms",
    "apps",
    "middleware",
    "context_processors",
    "management",
    "templatetags",
}
INTERFACE_SUFFIXES = ("_urls", "_views")
# The roof mounts the apps: these modules may import the apps' urls, api and views.
ROOF_MOUNTS = {f"{ROOF}.urls", f"{ROOF}.api_urls", f"{ROOF}.openapi"}
MOUNTABLE_NAMES = {"urls", "api_urls", "api", "views"}
MODEL_FIELDS = {"ForeignKey", "OneToOneField", "ManyToManyField", "ForeignObject"}


def is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


def is_private(name: str) -> bool:
    return name.startswith("_") and not is_dunder(name)


def is_private_module(module: str) -> bool:
    return any(is_private(part) for part in module.split(".")[1:])


def is_interface(module: str) -> bool:
    return any(
        part in INTERFACE_NAMES or part.endswith(INTERFACE_SUFFIXES)
        for part in module.split(".")[1:]
    )


def is_mountable(module: str) -> bool:
    return any(
        part in MOUNTABLE_NAMES or part.endswith(INTERFACE_SUFFIXES)
        for part in module.split(".")[1:]
    )


def top(module: str) -> str:
    return module.partition(".")[0]


@dataclass(frozen=True)
class Import:
    """One dependency of a module: an import, a model string, or a `module._name`."""

    path: str  # the importing file, relative to the root
    line: int
    source: str  # the importing module
    target: str  # the module imported, or the module a name is taken from
    name: str | None = None  # the name taken from target, when it is not a module
    how: str = "import"  # "import", "model" (a model string, get_model), "attribute"
    lazy: bool = False  # inside a function: runs when called, not on import
    typing: bool = False  # under `if TYPE_CHECKING:`: never runs
    literal: str = ""  # the model string, for the message

    def describe(self, with_name: bool = False, note: str = "") -> str:
        target = f"{self.target}.{self.name}" if with_name and self.name else self.target
        notes = [note] if note else []
        if self.literal:
            notes.append(self.literal)
        if self.lazy:
            notes.append("in a function")
        if self.typing:
            notes.append("type checking only")
        return f"{self.path}:{self.line} -> {target}" + (f"  ({', '.join(notes)})" if notes else "")


class Project:
    """The parsed modules of a source tree: its apps, its roof and bench/."""

    def __init__(self, root: Path):
        self.root = root
        self.apps = sorted(
            folder.name
            for folder in root.iterdir()
            if folder.is_dir()
            and folder.name.isidentifier()
            and not folder.name.startswith("_")
            and folder.name not in NOT_APPS
            and any(
                (folder / name).is_file() for name in ("apps.py", "models.py", "models/__init__.py")
            )
        )
        self.modules: dict[str, str] = {}  # module name -> file, relative to the root
        for package in [*self.apps, ROOF, BENCH]:
            if not (root / package).is_dir():
                continue
            for file in sorted((root / package).rglob("*.py")):
                relative = file.relative_to(root)
                folders = relative.parts[:-1]
                if any(part in SKIPPED_FOLDERS or part.startswith(".") for part in folders):
                    continue
                parts = relative.with_suffix("").parts
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                self.modules[".".join(parts)] = relative.as_posix()
        self.app_labels = {app: app for app in self.apps} | self._custom_app_labels()
        self.errors: list[str] = []
        self.imports: list[Import] = []
        for module, path in self.modules.items():
            try:
                tree = ast.parse((root / path).read_bytes(), filename=path)
            except (SyntaxError, ValueError) as error:
                self.errors.append(f"{path}: {error}")
                continue
            scanner = Scanner(self, module, path, is_package=path.endswith("__init__.py"))
            scanner.visit(tree)
            self.imports.extend(scanner.found)

    def _custom_app_labels(self) -> dict[str, str]:
        """An AppConfig may set `label`: model strings name the app by it."""
        labels = {}
        for app in self.apps:
            config = self.root / app / "apps.py"
            if not config.is_file():
                continue
            try:
                tree = ast.parse(config.read_bytes())
            except (SyntaxError, ValueError):
                continue  # reported by test_every_module_parses
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Assign)
                    and any(isinstance(t, ast.Name) and t.id == "label" for t in node.targets)
                    and isinstance(node.value, ast.Constant)
                    and isinstance(node.value.value, str)
                ):
                    labels[node.value.value] = app
        return labels

    def is_module(self, name: str) -> bool:
        if name in self.modules:
            return True
        path = self.root.joinpath(*name.split("."))
        return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()

    def is_project(self, module: str) -> bool:
        return top(module) in {*self.apps, *LAYERS, ROOF, BENCH}

    def app_of(self, module: str) -> str | None:
        """The app a module belongs to (known layers count even before their folder exists)."""
        name = top(module)
        return name if name in self.apps or name in LAYERS else None


class Scanner(ast.NodeVisitor):
    """Collects the dependencies of one module."""

    def __init__(self, project: Project, module: str, path: str, is_package: bool):
        self.project = project
        self.module = module
        self.path = path
        self.package = module if is_package else module.rpartition(".")[0]
        self.functions = 0
        self.type_checking = 0
        self.aliases: dict[str, str] = {}  # local name -> the project module it is bound to
        self.found: list[Import] = []

    def add(self, node: ast.AST, target: str, **fields) -> None:
        self.found.append(
            Import(
                path=self.path,
                line=node.lineno,
                source=self.module,
                target=target,
                lazy=self.functions > 0,
                typing=self.type_checking > 0,
                **fields,
            )
        )

    def bind(self, name: str, module: str) -> None:
        if self.project.is_project(module):
            self.aliases[name] = module

    def absolute(self, module: str | None, level: int) -> str:
        if not level:
            return module or ""
        parts = self.package.split(".") if self.package else []
        if level > 1:
            parts = parts[: len(parts) - (level - 1)]
        return ".".join([*parts, module] if module else parts)

    # Scopes -----------------------------------------------------------------

    def visit_FunctionDef(self, node: ast.AST) -> None:
        self.functions += 1
        self.generic_visit(node)
        self.functions -= 1

    visit_AsyncFunctionDef = visit_FunctionDef
    visit_Lambda = visit_FunctionDef

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
        ):
            self.type_checking += 1
            for child in node.body:
                self.visit(child)
            self.type_checking -= 1
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    # Imports ----------------------------------------------------------------

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.add(node, alias.name)
            if alias.asname:
                self.bind(alias.asname, alias.name)
            else:
                self.bind(top(alias.name), top(alias.name))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = self.absolute(node.module, node.level)
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            if alias.name != "*" and self.project.is_module(submodule):
                self.add(node, submodule)
                self.bind(alias.asname or alias.name, submodule)
            else:
                self.add(node, base, name=None if alias.name == "*" else alias.name)

    def visit_Call(self, node: ast.Call) -> None:
        function = node.func
        called = (
            function.id
            if isinstance(function, ast.Name)
            else function.attr
            if isinstance(function, ast.Attribute)
            else ""
        )
        strings = []  # the leading string arguments
        for argument in node.args:
            if not (isinstance(argument, ast.Constant) and isinstance(argument.value, str)):
                break
            strings.append(argument.value)
        if called in MODEL_FIELDS:
            references = [
                argument
                for argument in [
                    *node.args[:1],
                    *(
                        keyword.value
                        for keyword in node.keywords
                        if keyword.arg in {"to", "through"}
                    ),
                ]
                if isinstance(argument, ast.Constant) and isinstance(argument.value, str)
            ]
            for reference in references:
                text = reference.value
                self.model(reference, text.partition(".")[0], f'model "{text}"', "." in text)
        elif called == "get_model" and strings:
            label = strings[0].partition(".")[0]
            shown = ", ".join(f'"{string}"' for string in strings[:2])
            self.model(node, label, f"get_model({shown})", True)
        elif called == "import_module" and strings and not strings[0].startswith("."):
            self.add(node, strings[0])
        self.generic_visit(node)

    def model(self, node: ast.AST, label: str, literal: str, qualified: bool) -> None:
        app = self.project.app_labels.get(label)
        if qualified and app:
            self.add(node, f"{app}.models", how="model", literal=literal)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        """`decoding._fit` after `from donations import decoding` takes a private name too."""
        chain = []
        value: ast.AST = node
        while isinstance(value, ast.Attribute):
            chain.append(value.attr)
            value = value.value
        if not isinstance(value, ast.Name) or value.id not in self.aliases:
            self.generic_visit(node)
            return
        module = self.aliases[value.id]
        for attribute in reversed(chain):
            if self.project.is_module(f"{module}.{attribute}"):
                module = f"{module}.{attribute}"
                continue
            if is_private(attribute):
                self.add(node, module, name=attribute, how="attribute")
            break


# The rules -------------------------------------------------------------------


def unique(lines) -> list[str]:
    return list(dict.fromkeys(lines))


def domain_violations(project: Project) -> list[str]:
    """(a) A domain module imports its own app and strictly lower layers only."""
    found = []
    for dependency in project.imports:
        own = project.app_of(dependency.source)
        target = project.app_of(dependency.target)
        if (
            dependency.how == "attribute"
            or own is None
            or target in (None, own)
            or is_interface(dependency.source)
            or own not in LAYERS
            or target not in LAYERS
        ):
            continue
        if LAYERS[target] >= LAYERS[own]:
            found.append(dependency.describe())
    return unique(found)


def interface_violations(project: Project) -> list[str]:
    """(b) Never another app's interface modules, never another app's private names."""
    found = []
    for dependency in project.imports:
        own = project.app_of(dependency.source) or (
            ROOF if top(dependency.source) == ROOF else None
        )
        target = project.app_of(dependency.target)
        if own is None or target in (None, own):
            continue
        if (dependency.name and is_private(dependency.name)) or is_private_module(
            dependency.target
        ):
            found.append(dependency.describe(with_name=True, note="private"))
        elif (
            dependency.how == "import"
            and is_interface(dependency.target)
            and not (dependency.source in ROOF_MOUNTS and is_mountable(dependency.target))
        ):
            found.append(dependency.describe(note=f"interface of {target}"))
    return unique(found)


def roof_violations(project: Project) -> list[str]:
    """(d) Apps never import the roof."""
    return unique(
        dependency.describe()
        for dependency in project.imports
        if dependency.how != "attribute"
        and project.app_of(dependency.source)
        and top(dependency.target) == ROOF
    )


def bench_private_violations(project: Project) -> list[str]:
    """(e) bench/ takes no private name from the apps or the roof."""
    return unique(
        dependency.describe(with_name=True)
        for dependency in project.imports
        if top(dependency.source) == BENCH
        and (project.app_of(dependency.target) or top(dependency.target) == ROOF)
        and (
            (dependency.name and is_private(dependency.name))
            or is_private_module(dependency.target)
        )
    )


def cycles(project: Project, packages: set[str], lazy: bool) -> list[str]:
    """Import cycles among the modules of `packages`, each as a chain with its import lines.

    Counts imports that run on import (not those under TYPE_CHECKING); with `lazy`,
    also those inside functions."""
    edges: dict[str, dict[str, Import]] = {}
    for dependency in project.imports:
        if (
            dependency.how != "import"
            or dependency.typing
            or (dependency.lazy and not lazy)
            or top(dependency.source) not in packages
            or top(dependency.target) not in packages
            or dependency.target not in project.modules
            or dependency.target == dependency.source
        ):
            continue
        edges.setdefault(dependency.source, {}).setdefault(dependency.target, dependency)

    def reachable(start: str) -> set[str]:
        seen, queue = set(), deque([start])
        while queue:
            for following in edges.get(queue.popleft(), {}):
                if following not in seen:
                    seen.add(following)
                    queue.append(following)
        return seen

    reach = {module: reachable(module) for module in sorted(edges)}
    done: set[str] = set()
    found = []
    for start in sorted(edges):
        if start in done or start not in reach[start]:
            continue
        component = {module for module in reach[start] if start in reach.get(module, ())}
        done |= component
        # The shortest way from start back to start, inside its component.
        parents: dict[str, str] = {}
        queue = deque([start])
        while queue and start not in parents:
            current = queue.popleft()
            for following in sorted(edges.get(current, {})):
                if following in component and following not in parents:
                    parents[following] = current
                    queue.append(following)
        chain = [start]
        while len(chain) == 1 or chain[-1] != start:
            chain.append(parents[chain[-1]])
        chain.reverse()
        lines = [edges[a][b].describe().partition(" -> ")[0] for a, b in pairwise(chain)]
        text = f"{' -> '.join(chain)}  [{', '.join(lines)}]"
        if rest := sorted(component - set(chain)):
            text += f"; also in this cycle: {', '.join(rest)}"
        found.append(text)
    return found


def report(rule: str, offences: list[str]) -> str:
    return rule + "\n  " + "\n  ".join(offences)


# The project -----------------------------------------------------------------


@pytest.fixture(scope="module")
def project() -> Project:
    return Project(ROOT)


def test_the_scan_finds_the_apps_and_their_imports(project):
    assert {"labels", "donations", "validation"} <= set(project.apps), project.apps
    assert "labels.models" in project.modules
    assert any(dependency.source == "labels.models" for dependency in project.imports)
    assert not any("/migrations/" in path for path in project.modules.values())


def test_every_module_parses(project):
    assert not project.errors, report("these modules do not parse:", project.errors)


def test_every_app_has_a_layer(project):
    unlayered = [app for app in project.apps if app not in LAYERS]
    assert not unlayered, f"give these apps a layer in tests/test_layers.py LAYERS: {unlayered}"


def test_no_domain_module_imports_its_own_layer_or_a_higher_one(project):
    offences = domain_violations(project)
    assert not offences, report(
        "a domain module may import only its own app and apps in lower layers "
        "(people, labels < donations < validation < annotations < exports):",
        offences,
    )


def test_no_module_imports_another_apps_interface_modules_or_private_names(project):
    offences = interface_violations(project)
    assert not offences, report(
        "import another app's domain modules and public names only "
        "(only imagemonkey's urls, api_urls and openapi mount the apps' urls, api and views):",
        offences,
    )


def test_the_apps_and_the_roof_import_without_cycles(project):
    found = cycles(project, {*project.apps, ROOF}, lazy=False)
    assert not found, report("import cycles (imports that run at import time):", found)


def test_no_app_imports_the_roof(project):
    offences = roof_violations(project)
    assert not offences, report(
        "apps never import imagemonkey (read settings from django.conf.settings):", offences
    )


def test_bench_uses_only_public_names(project):
    offences = bench_private_violations(project)
    assert not offences, report("bench/ takes private names from the project:", offences)


def test_bench_imports_without_cycles(project):
    found = cycles(project, {BENCH}, lazy=True)
    assert not found, report("import cycles in bench/ (imports inside functions count):", found)


# The checker can fail ----------------------------------------------------------


def make_tree(root: Path, files: dict[str, str]) -> Project:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return Project(root)


def test_the_checker_reports_an_upward_import_and_a_cycle(tmp_path):
    project = make_tree(
        tmp_path,
        {
            "labels/__init__.py": "",
            "labels/models.py": "from validation.models import Vote\n",
            "validation/__init__.py": "",
            "validation/apps.py": "",
            "validation/models.py": "Vote = None\n",
            "validation/a.py": "from . import b\n",
            "validation/b.py": "x = 1\nfrom .a import y\n",
        },
    )
    assert domain_violations(project) == ["labels/models.py:1 -> validation.models"]
    assert cycles(project, set(project.apps), lazy=False) == [
        "validation.a -> validation.b -> validation.a  [validation/a.py:1, validation/b.py:2]"
    ]


def test_the_checker_reports_each_other_rule(tmp_path):
    project = make_tree(
        tmp_path,
        {
            "people/models.py": "from labels.models import Label\n",
            "labels/models.py": 'def f(apps):\n    return apps.get_model("donations", "Image")\n',
            "donations/models.py": 'owner = models.ForeignKey("validation.Voter")\n',
            "donations/decoding.py": "",
            "donations/ingest.py": "def f():\n    from validation import voting\n",
            "donations/views.py": (
                "from validation.api import read_json\nfrom validation.voting import _weight\n"
            ),
            "validation/models.py": "from imagemonkey.api import json_error\n",
            "validation/api.py": "",
            "validation/voting.py": "",
            "imagemonkey/urls.py": "from validation import api\n",
            "imagemonkey/views.py": "from donations.views import names\n",
            "bench/crowd.py": "def f():\n    from bench.crowd_report import g\n",
            "bench/crowd_report.py": "def g():\n    from bench import crowd\n",
            "bench/ingesting.py": "from donations import decoding\ndecoding._fit(1)\n",
        },
    )
    assert domain_violations(project) == [
        "donations/ingest.py:2 -> validation.voting  (in a function)",
        'donations/models.py:1 -> validation.models  (model "validation.Voter")',
        'labels/models.py:2 -> donations.models  (get_model("donations", "Image"), in a function)',
        "people/models.py:1 -> labels.models",
    ]
    assert interface_violations(project) == [
        "donations/views.py:1 -> validation.api  (interface of validation)",
        "donations/views.py:2 -> validation.voting._weight  (private)",
        "imagemonkey/views.py:1 -> donations.views  (interface of donations)",
    ]
    assert roof_violations(project) == ["validation/models.py:1 -> imagemonkey.api"]
    assert bench_private_violations(project) == ["bench/ingesting.py:2 -> donations.decoding._fit"]
    assert cycles(project, {BENCH}, lazy=True) == [
        "bench.crowd -> bench.crowd_report -> bench.crowd  "
        "[bench/crowd.py:2, bench/crowd_report.py:2]"
    ]
    assert cycles(project, {BENCH}, lazy=False) == []
