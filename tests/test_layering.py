"""The domain package has no Ray in it: serve/ and train/ are thin layers over shopsense/, not the reverse."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "shopsense"


def imported_modules(tree: ast.AST, top_level_only: bool) -> set[str]:
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_no_domain_module_imports_ray_or_the_layers_above_it():
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 20
    for path in modules:
        tree = ast.parse(path.read_text())
        assert "ray" not in imported_modules(tree, top_level_only=False), f"{path.name} imports ray"
        # the CLI dispatches to serve/ and train/, lazily inside its commands, so importing it stays Ray-free
        assert not {"serve", "train"} & imported_modules(tree, top_level_only=True), path.name
