"""The package's shape: lean imports, layers that only import downwards, no cycles."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import neuralcodec

PACKAGE = Path(neuralcodec.__file__).parent
GOLDEN = Path(__file__).parent / "golden"

# Lower layers never import higher ones; a module may import its own layer.
LAYERS = {
    "errors": 0, "stages": 0, "metrics": 0, "allocator": 0, "cpu": 0, "lazy": 0,
    "version": 0,
    "io": 1, "entropy": 1, "format": 1,
    "families": 2,
    "codec": 3,
    "api": 4,
    "pillow_plugin": 5, "training": 5, "bench": 5, "datasets": 5,
    "cli": 6,
    "__init__": 7, "__main__": 7,
}


def _modules_loaded_by(code: str) -> set[str]:
    script = f"{code}\nimport sys\nprint('\\n' + ' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout
    return set(out.splitlines()[-1].split())  # the modules, not what the code printed


def _heavy(modules: set[str]) -> set[str]:
    return {m for m in modules if m.split(".")[0] in ("torch", "compressai", "torch_geometric")}


def test_import_neuralcodec_loads_neither_torch_nor_compressai():
    assert not _heavy(_modules_loaded_by("import neuralcodec"))


def test_help_and_info_load_no_torch():
    golden = sorted(GOLDEN.glob("*.aec"))[0]
    for args in (["--help"], ["info", str(golden)], ["models"]):
        loaded = _modules_loaded_by(
            f"from neuralcodec.cli import run\nassert run({args!r}) == 0")
        assert not _heavy(loaded), args


def test_coding_on_the_cpu_loads_neither_torch_nor_compressai():
    loaded = _modules_loaded_by(
        "import neuralcodec, numpy as np\nfrom PIL import Image\n"
        "im = Image.fromarray(np.zeros((20, 30, 3), np.uint8))\n"
        "neuralcodec.decode(neuralcodec.encode(im, 50))")
    assert "numpy" in loaded
    assert not _heavy(loaded)


def test_without_pytorch_the_cpu_codes_and_the_rest_says_what_to_install(tmp_path):
    """PyTorch is an extra: with it absent, coding with the default model on a CPU works,
    and what needs it fails with one line naming the extra (exit 1), not a traceback."""
    src = Path(neuralcodec.__file__).parent / "samples" / "kodim23.png"
    script = (
        "import sys\nsys.modules['torch'] = sys.modules['compressai'] = None\n"
        "from neuralcodec.cli import run\n"
        f"src, out = {str(src)!r}, {str(tmp_path)!r}\n"
        "codes = [run(['encode', src, out + '/a.aec', '--quiet']),\n"
        "         run(['decode', out + '/a.aec', out + '/a.png', '--quiet']),\n"
        "         run(['encode', src, out + '/b.aec', '--effort', '2', '--quiet']),\n"
        "         run(['encode', src, out + '/c.aec', '--model', 'aec-vq', '--quiet'])]\n"
        "print(codes)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.split() == ["[0,", "0,", "1,", "1]"], done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 2 and all("pip install 'neuralcodec[torch]'" in line for line in lines)
    assert (tmp_path / "a.png").exists() and not (tmp_path / "b.aec").exists()


def test_the_base_install_codes_without_scipy(tmp_path):
    """SciPy is in the bench extra (BD-rates only): with it absent, encode, decode and
    info work and import none of it, and a BD-rate fails with one line naming the extra."""
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["project"]
    assert not [d for d in project["dependencies"] if d.startswith("scipy")]
    assert [d for d in project["optional-dependencies"]["bench"] if d.startswith("scipy")]
    src = Path(neuralcodec.__file__).parent / "samples" / "kodim23.png"
    script = (
        "import sys\nsys.modules['scipy'] = None\n"  # as if not installed
        "from neuralcodec.cli import run\n"
        "from neuralcodec import AecError, metrics\n"
        f"src, out = {str(src)!r}, {str(tmp_path)!r}\n"
        "codes = [run(['encode', src, out + '/a.aec', '--quiet']),\n"
        "         run(['decode', out + '/a.aec', out + '/a.png', '--quiet']),\n"
        "         run(['info', out + '/a.aec'])]\n"
        "try:\n"
        "    metrics.bd_rate([1, 2, 3], [30, 32, 34], [1, 2, 3], [31, 33, 35])\n"
        "except AecError as exc:\n"
        "    codes.append(str(exc))\n"
        "print(codes, [m for m in sys.modules if m.startswith('scipy.')])")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == (
        "[0, 0, 0, \"BD-rate needs scipy: pip install 'neuralcodec[bench]'\"] []")
    assert (tmp_path / "a.png").exists()


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported neuralcodec module, whether at module level) for each import in ``path``."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [f"{target}.{a.name}" for a in node.names]
            targets = [n for n in names if _is_module(n)] or [target]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        for t in targets:
            if t.split(".")[0] == "neuralcodec":
                found.append((t, id(node) in top_level))
    return found


def _is_module(name: str) -> bool:
    rel = Path(*name.split(".")[1:])
    return (PACKAGE / rel).with_suffix(".py").exists() or (PACKAGE / rel / "__init__.py").exists()


def _layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS["__init__"] if len(parts) == 1 else LAYERS[parts[1]]


SOURCES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_go_down_the_layers(path):
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    own = _layer(module)
    for target, _ in _imports(path):
        assert _layer(target) <= own, f"{module} imports {target} from a higher layer"


def test_no_import_cycles():
    graph: dict[str, set[str]] = {}
    for path in SOURCES:
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        module = module.removesuffix(".__init__")
        graph[module] = {t for t, top in _imports(path) if top and t != module}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                cycle = trail[trail.index(nxt):] if nxt in trail else trail
                raise AssertionError("import cycle: " + " -> ".join([*cycle, nxt]))
            if state.get(nxt) is None:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for module in graph:
        if module not in state:
            visit(module, [module])


def test_every_folder_of_modules_is_a_package():
    """A folder without __init__.py is left out of the wheel (setuptools' find)."""
    folders = {path.parent for path in SOURCES}
    assert [f for f in folders if not (f / "__init__.py").exists()] == []


def test_families_see_a_rate_point_not_the_stored_quality():
    """The codec turns a file's stored quality into a rate point once (codec.rate_point);
    no model family reads the quality unit back."""
    readers = [path.relative_to(PACKAGE).as_posix()
               for path in sorted((PACKAGE / "families").rglob("*.py"))
               for module, _ in _imports(path) if module == "neuralcodec.format.quality"]
    assert readers == []
