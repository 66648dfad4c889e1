"""The house keeps its shape: floors point one way, and functions stay small.

The layers are an import-linter contract in pyproject.toml (sweeps > analysis | perf > bench;
inside analysis, pages > numbers > records | inference; private modules stay home, no cycles
between siblings); this runs it, so the README's test command checks it too. A production
function stays within 60 lines and 8 parameters: past that it is two ideas.
"""
import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bench", "analysis", "perf", "sweeps")


def test_import_contracts_hold():
    lint = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    if not Path(lint).exists():
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    proc = subprocess.run([lint, "--config", str(ROOT / "pyproject.toml")], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 kept, 0 broken" in proc.stdout


def _oversized(max_lines: int = 60, max_params: int = 8) -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    a = node.args
                    params = [p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
                    params = params[1:] if params[:1] in (["self"], ["cls"]) else params
                    lines = node.end_lineno - node.lineno + 1
                    if lines > max_lines or len(params) > max_params:
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: "
                                     f"{lines} lines, {len(params)} parameters")
    return found


def test_no_production_function_is_two_ideas():
    assert _oversized() == []


def test_the_size_check_sees_a_big_function(tmp_path, monkeypatch):
    big = tmp_path / "bench"
    big.mkdir()
    body = "\n".join(f"    x{i} = {i}" for i in range(70))
    (big / "big.py").write_text(f"def big(a, b, c, d, e, f, g, h, i):\n{body}\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGES", ("bench",))
    assert _oversized() == ["bench/big.py:1 big: 71 lines, 9 parameters"]


# One home per fact: the outcome names live in analysis/records/outcomes.py (as Outcome objects; bench
# records them as ArmResult fields), and the machine is read in bench/machine.py only.
def _names_outcomes(node: ast.AST) -> bool:
    """A tuple, list or set literal holding two or more outcome names: a copy of the list."""
    from analysis.records.outcomes import OUTCOMES

    return isinstance(node, (ast.Tuple, ast.List, ast.Set)) and sum(
        isinstance(e, ast.Constant) and e.value in OUTCOMES for e in node.elts) >= 2


def _production_files():
    """(path relative to the root, text) of every production module, in a stable order."""
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path.relative_to(ROOT).as_posix(), path.read_text()


def _copies() -> list[str]:
    found = []
    for where, text in _production_files():
        if where != "analysis/records/outcomes.py" and any(map(_names_outcomes, ast.walk(ast.parse(text)))):
            found.append(f"{where}: a list of outcome names outside analysis/records/outcomes.py")
        if where != "bench/machine.py" and "/proc/cpuinfo" in text:
            found.append(f"{where}: a reader of the CPU model outside bench/machine.py")
    return found


def test_outcome_names_and_the_machine_have_one_home_each():
    assert _copies() == []


def test_the_home_check_sees_a_copy(tmp_path, monkeypatch):
    (tmp_path / "sweeps").mkdir()
    (tmp_path / "sweeps" / "copy.py").write_text('CHOICES = ("test_mse", "excess_risk")\n'
                                                  'CPU = open("/proc/cpuinfo").readline()\n')
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGES", ("sweeps",))
    assert _copies() == ["sweeps/copy.py: a list of outcome names outside analysis/records/outcomes.py",
                         "sweeps/copy.py: a reader of the CPU model outside bench/machine.py"]


# One object per task: bench/task.py's TASKS says what each task is, and everything else asks
# it. A quoted task name elsewhere is a floor comparing names (config's default value aside).
TASK_HOME = "bench/task.py"
ALLOWED_TASK_NAMES = {"bench/config.py": ['task: str = "toy1d"']}   # the default task of a config


def _named_outside(names, home: str, what: str, allowed_lines: dict) -> list[str]:
    """Lines of production code outside ``home`` that quote one of ``names``."""
    quoted = re.compile(r"""(["'])(%s)\1""" % "|".join(map(re.escape, names)))
    found = []
    for where, text in _production_files():
        if where == home:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            allowed = any(ok in line for ok in allowed_lines.get(where, ()))
            if quoted.search(line) and not allowed:
                found.append(f"{where}:{number}: {what} named outside {home}")
    return found


def _task_names_outside_home() -> list[str]:
    from bench import TASKS

    return _named_outside(TASKS, TASK_HOME, "a task", ALLOWED_TASK_NAMES)


# One object per arm: bench/arms.py's ARMS. Every trial trains the pair (plain and dropout, whose
# names are also column suffixes); any other arm is a comparator and no floor names one.
ARM_HOME = "bench/arms.py"
ALLOWED_ARM_NAMES = {"sweeps/spec.py": ['    arms = ["plain", "dropout", "early_stop", "weight_decay"]   # default']}  # its docs


def _arm_names_outside_home() -> list[str]:
    from bench.arms import ARMS, PAIR

    return _named_outside([k for k in ARMS if k not in PAIR], ARM_HOME, "a comparator arm", ALLOWED_ARM_NAMES)


def test_comparator_arms_are_named_in_one_place():
    assert _arm_names_outside_home() == []


def test_the_arm_name_check_sees_a_comparison(tmp_path, monkeypatch):
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "step.py").write_text('def step(a):\n    return a.kind == "weight_decay"\n')
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGES", ("bench",))
    assert _arm_names_outside_home() == ["bench/step.py:2: a comparator arm named outside bench/arms.py"]


def test_tasks_are_named_in_one_place():
    assert _task_names_outside_home() == []


def test_the_task_name_check_sees_a_comparison(tmp_path, monkeypatch):
    (tmp_path / "analysis").mkdir()
    (tmp_path / "analysis" / "floor.py").write_text('def floor(task):\n'
                                                     '    return None if task == "diabetes" else 1.0\n'
                                                     "LINEAR = ('toy1d',)\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGES", ("analysis",))
    assert _task_names_outside_home() == ["analysis/floor.py:2: a task named outside bench/task.py",
                                          "analysis/floor.py:3: a task named outside bench/task.py"]


# No two production places share six or more lines (imports, docstrings and comments aside):
# pylint's duplicate-code check, the one the house is held to.
def _shared_lines(root: Path, packages) -> list[str]:
    proc = subprocess.run([sys.executable, "-m", "pylint", "--disable=all", "--enable=duplicate-code",
                           "--min-similarity-lines=6", "--ignore-imports=yes", "--ignore-docstrings=yes",
                           "--ignore-comments=yes", "--score=no", *packages], cwd=root,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode in (0, 8), proc.stderr   # 8: a refactoring message (R0801) was issued; else it did not run
    return [line for line in proc.stdout.splitlines() if line.startswith("==")]


def test_no_two_production_places_share_six_lines():
    assert _shared_lines(ROOT, PACKAGES) == []


def test_the_shared_lines_check_sees_a_copy(tmp_path):
    body = "\n".join(f"    total = total * {i} + {i}" for i in range(7))
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    for name in ("a", "b"):
        (tmp_path / "pkg" / f"{name}.py").write_text(f"def {name}(total):\n{body}\n    return total\n")
    assert _shared_lines(tmp_path, ["pkg"]) == ["==pkg.a:[1:9]", "==pkg.b:[1:9]"]


# A module's private names are its own: no production module imports another's (tests may). A
# private module shared inside its package (``from . import _render``) is the contract's business.
def _private_imports() -> list[str]:
    found = []
    for where, text in _production_files():
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, ast.ImportFrom) or (node.level and node.module is None):
                continue
            if node.level or node.module.split(".")[0] in PACKAGES:
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        found.append(f"{where}:{node.lineno}: imports {alias.name} from {'.' * node.level}{node.module or ''}")
    return found


def test_no_production_module_imports_a_private_name():
    assert _private_imports() == []


def test_the_private_name_check_sees_one(tmp_path, monkeypatch):
    (tmp_path / "perf").mkdir()
    (tmp_path / "perf" / "lab.py").write_text("from bench.engine import _Group\nfrom .speed import _best, public\n"
                                             "from . import _shared\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGES", ("perf",))
    assert _private_imports() == ["perf/lab.py:2: imports _best from .speed"]   # bench is not a package here
    monkeypatch.setattr(sys.modules[__name__], "PACKAGES", ("perf", "bench"))
    assert _private_imports() == ["perf/lab.py:1: imports _Group from bench.engine",
                                  "perf/lab.py:2: imports _best from .speed"]
