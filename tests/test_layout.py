"""The package's shape: no import cycle between synclip modules (imports inside functions count too),
`python -m synclip` runs, and config.yaml is exactly what `synclip config show` prints."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import yaml

from synclip.cli import main

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "synclip"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """synclip module -> the synclip modules it imports, anywhere in its body. ``from pkg import name`` points
    at the module pkg.name when there is one, else at pkg."""
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(up + ([node.module] if node.module else []))
                targets |= {f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names}
        graph[name] = {t for t in targets if t in files and t != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None (depth-first search, grey = on the current path)."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "grey"
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "grey":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = "black"
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_the_graph_sees_imports_inside_functions_and_relative_ones():
    graph = import_graph()
    assert "synclip.infer" in graph["synclip"]  # the lazy LipSyncInference import in __init__
    assert "synclip.audio" in graph["synclip.models.syncnet"]  # from .. import audio
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_cycle_in_the_package():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_python_dash_m_synclip_runs():
    res = subprocess.run([sys.executable, "-m", "synclip", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0 and "dub" in res.stdout


def test_config_yaml_is_what_config_show_prints(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no ./config.yaml here: the code defaults are printed
    assert main(["config", "show"]) == 0
    shown = capsys.readouterr().out
    committed = (ROOT / "config.yaml").read_text(encoding="utf-8")
    assert yaml.safe_load(shown) == yaml.safe_load(committed)
    assert shown == committed


def test_seed_model_module_exports_what_its_docstring_promises():
    code = ("from src.model import SyncNet, Generator, __all__; import src.model as m; "
            "print(all(hasattr(m, n) for n in __all__))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0 and res.stdout.strip() == "True", res.stderr
