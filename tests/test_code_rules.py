"""Rules of the code base that no single feature test sees: interp raises its own error types, its
modules import each other without a circle, no page names a registry model itself, and every page
starts on the shared scaffold."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
INTERP = REPO / "interp"


def _modules(package: Path = INTERP) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package's __init__)."""
    out = {}
    for f in package.rglob("*.py"):
        parts = list(f.relative_to(package.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_package else parts)] = (f, is_package)
    return out


def _imports(name: str, f: Path, is_package: bool, modules) -> set[str]:
    """interp modules that ``name`` imports anywhere in its file (a function's lazy import too),
    leaving out its own parent packages (a submodule importing its package's other parts)."""
    base = name.split(".") if is_package else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(f.read_text())):
        if isinstance(node, ast.ImportFrom):
            prefix = base[: len(base) - node.level + 1] if node.level else []
            target = ".".join(prefix + ([node.module] if node.module else []))
            candidates = [target, *(f"{target}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            candidates = [a.name for a in node.names]
        else:
            continue
        found |= {c for c in candidates if c in modules and c != name and not name.startswith(c + ".")}
    return found


def test_no_import_circle():
    modules = _modules()
    graph = {m: _imports(m, f, pkg, modules) for m, (f, pkg) in modules.items()}

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            m = todo.pop()
            if m == goal:
                return True
            if m not in seen:
                seen.add(m)
                todo += graph[m]
        return False

    circles = sorted({tuple(sorted((a, b))) for a in graph for b in graph[a] if reaches(b, a)})
    assert not circles, circles


def test_the_checker_finds_a_circle(tmp_path):
    """The walk above on two modules that import each other inside functions."""
    pkg = tmp_path / "interp" / "sub"
    pkg.mkdir(parents=True)
    (tmp_path / "interp" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from .b import g\n")
    (pkg / "b.py").write_text("from .a import f\n")
    modules = _modules(tmp_path / "interp")
    assert _imports("interp.sub.a", *modules["interp.sub.a"], modules) == {"interp.sub.b"}
    assert _imports("interp.sub.b", *modules["interp.sub.b"], modules) == {"interp.sub.a"}


def test_interp_raises_its_own_error_types():
    bare = []
    for f in INTERP.rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if (
                isinstance(node, ast.Raise)
                and isinstance(node.exc, ast.Call)
                and isinstance(node.exc.func, ast.Name)
                and node.exc.func.id in ("ValueError", "RuntimeError")
            ):
                bare.append(f"{f.relative_to(REPO)}:{node.lineno}")
    assert not bare, bare


def test_no_page_names_a_registry_model():
    import interp

    names = set(interp.list_models())
    named = [
        (p.name, n)
        for p in (REPO / "pages").glob("*.py")
        for n in re.findall(r"[\"']([a-z0-9_]+)[\"']", p.read_text())
        if n in names
    ]
    assert not named, named


SCAFFOLDS = {"page", "image_page", "model_page"}  # dashboard.widgets: every page starts with one


def test_every_page_starts_on_the_shared_scaffold():
    """The first Streamlit-facing statement of each page is a scaffold call: it routes a deep link
    through app.py and draws the title, so no page can forget either."""
    not_scaffolded = []
    for p in sorted((REPO / "pages").glob("*.py")):
        tree = ast.parse(p.read_text())
        first = next((node for node in tree.body if _calls(node) & (SCAFFOLDS | {"st"})), None)
        if first is None or not _calls(first) & SCAFFOLDS:
            not_scaffolded.append(p.name)
        if "st.title(" in p.read_text() or "run_through_app" in p.read_text():
            not_scaffolded.append(f"{p.name} (its own title or routing)")
    assert not not_scaffolded, not_scaffolded


def _calls(node: ast.AST) -> set[str]:
    """Names called at the top of ``node`` (``st`` and ``x`` for any ``st.x(...)``), decorators and
    function bodies left out: they run later."""
    if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)):
        return set()
    found = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            f = sub.func
            if isinstance(f, ast.Attribute):
                found.add(f.attr)  # widgets.page(...) calls page
            while isinstance(f, ast.Attribute):
                f = f.value
            if isinstance(f, ast.Name):
                found.add(f.id)
    return found


def test_the_old_name_of_whole_dataset_runs_still_works_with_a_warning():
    import pytest

    from interp import whole_dataset

    with pytest.warns(DeprecationWarning, match="interp.whole_dataset"):
        from interp.dataset import explain_dataset
    assert explain_dataset is whole_dataset.explain_dataset


def test_methods_exports_at_most_forty_names_and_old_names_warn():
    import pytest

    from interp import methods
    from interp.methods import attribution, introspect, trust

    assert len(methods.__all__) <= 40
    assert all(hasattr(methods, n) for n in methods.__all__)
    with pytest.warns(DeprecationWarning, match="interp.methods.attribution.saliency"):
        saliency = methods.saliency
    assert saliency is attribution.saliency
    with pytest.warns(DeprecationWarning, match="interp.methods.trust.deletion_insertion"):
        assert methods.deletion_insertion is trust.deletion_insertion
    assert methods.filters is introspect.filters  # kept at the top: no warning
    with pytest.raises(AttributeError):
        _ = methods.no_such_method
