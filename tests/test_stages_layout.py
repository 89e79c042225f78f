"""The course's shape: each stage builds on the one before and says what it adds."""
import ast
import importlib
import pathlib
import re
import subprocess
import sys

import pytest

from servers import NAMES

STAGES = [name for name in NAMES if re.fullmatch(r"s[0-9][0-9]_\w+", name)]
STAGES_DIRECTORY = pathlib.Path(__file__).resolve().parent.parent / "stages"


def test_python_m_stages_lists_every_stage():
    result = subprocess.run([sys.executable, "-m", "stages"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    for name in STAGES:
        assert f"\n{name} " in result.stdout


@pytest.mark.parametrize("name", STAGES)
def test_stage_docstring_says_what_is_new_and_what_is_reused(name):
    docstring = importlib.import_module(f"stages.{name}").__doc__
    assert "\nNew: " in docstring and "\nReused from: " in docstring


@pytest.mark.parametrize(("previous", "name"), list(zip(STAGES, STAGES[1:])))
def test_stage_server_subclasses_the_previous_stage_server(previous, name):
    server_class = importlib.import_module(f"stages.{name}").Server
    assert server_class.__bases__ == (importlib.import_module(f"stages.{previous}").Server,)


@pytest.mark.parametrize("path", sorted(STAGES_DIRECTORY.glob("*.py")), ids=lambda path: path.name)
def test_stages_use_only_the_standard_library_and_each_other(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = [node.module]
        else:
            continue
        for module in modules:
            top = module.split(".")[0]
            assert top == "stages" or top in sys.stdlib_module_names, f"{path.name} imports {module}"


def stage_sections(name):
    from stages.__main__ import docstring_sections
    return docstring_sections(importlib.import_module(f"stages.{name}").__doc__)


@pytest.mark.parametrize("name", STAGES)
def test_stage_docstring_says_what_the_tester_sends_and_expects_before_the_solution(name):
    sections = stage_sections(name)
    task = sections["Task"]
    for label in ("Sends:", "Expects:", "Try:", "curl"):
        assert label in task, f"{name}'s Task section has no {label!r}"
    assert f"python -m stages.{name}" in task  # how to start it, before the curl lines
    docstring = importlib.import_module(f"stages.{name}").__doc__
    assert docstring.index("\nTask:") < docstring.index("\nNew: ")


@pytest.mark.parametrize("name", STAGES)
def test_python_m_stages_show_prints_the_task_from_the_docstring(name):
    result = subprocess.run([sys.executable, "-m", "stages", "show", name[:3]], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, result.stderr
    assert stage_sections(name)["Task"] in result.stdout
    assert f"--server {name}" in result.stdout


def test_python_m_stages_show_of_an_unknown_stage_fails_with_one_error_line():
    result = subprocess.run([sys.executable, "-m", "stages", "show", "s99"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and "s99" in result.stderr
