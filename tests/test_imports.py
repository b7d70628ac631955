"""The package's imports run one way: no module imports, even lazily, one that imports it.

A cycle is two modules that each need the other: neither can be read, tested or moved
alone, and a lazy import that hides one from Python still hides it from a reader. The
graph is read from the source (every `import`, at the top or inside a function), so the
test needs nothing imported.
"""

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("keras_resnet", "tuner")


def module_files():
    """Maps each module's dotted name to its file, for every module of `PACKAGES`."""
    modules = {}
    for package in PACKAGES:
        for folder, _, names in os.walk(os.path.join(ROOT, package)):
            for name in names:
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    dotted = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                    modules[dotted.removesuffix(".__init__")] = path
    return modules


def import_graph(modules):
    """Maps each module to the project modules it imports (`from a import b`: `a.b` if b
    is a module, else `a`)."""
    graph = {}
    for module, path in modules.items():
        package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(open(path).read(), path)):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                                    + ([base] if base else []))
                targets.update(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules
                               else base for alias in node.names)
        graph[module] = {target for target in targets if target in modules} - {module}
    return graph


def cycles(graph):
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(module):
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(graph[module]):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while not component or component[-1] != module:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_the_graph_is_read():
    graph = import_graph(module_files())
    assert "keras_resnet.blocks" in graph["keras_resnet.model"]
    # A lazy import, inside a function, is an edge too.
    assert "keras_resnet.export.micro" in graph["keras_resnet.export.convert"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycles(package):
    found = [cycle for cycle in cycles(import_graph(module_files()))
             if any(module.split(".")[0] == package for module in cycle)]
    assert found == [], f"modules that import each other: {found}"
