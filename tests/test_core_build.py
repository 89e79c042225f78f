"""The compiled build of core is what its sources say: typed by every .pxd, current.

- setup.py compiles every module a ``core/X_c.pxd`` types (core/extensions.py lists them).
- A module compiled from a .py in Cython's pure-Python mode really is typed by
  its .pxd: Cython reads the .pxd named after the module, and silently
  compiles plain Python classes when there is none.  Each declaration is
  checked from Python (a cdef class has no instance __dict__, a typed
  attribute rejects another type, a cdef method or variable is no attribute),
  and the same checks run against the pure-Python module to show each can fail.
- A build whose sources changed since is reported from the sha256 record
  setup.py embeds in it: once on stderr, or as an ImportError under
  CORE_REQUIRE_COMPILED=1.

The compiled build is expected here whatever CORE_PURE_PYTHON says (the
compiled modules import directly): a missing one fails, as in CI.
"""
import hashlib
import importlib
import inspect
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import GetSetDescriptorType, MemberDescriptorType, SimpleNamespace

import pytest

from core import extensions

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "core"
# Modules compiled from a .py: typed only if Cython finds their .pxd.
PURE_MODE = [(name, source) for name, source in extensions.EXTENSIONS if source.endswith(".py")]


def compiled_module(name):
    try:
        return importlib.import_module(name)
    except ImportError as error:
        pytest.fail(f"{name} is expected built but does not import ({error}): python setup.py build_ext --inplace")


def pxd_of(name):
    return ROOT / (name.replace(".", "/") + ".pxd")


def twin_of(source):
    """The pure-Python module of a .py source: what the compiled one is if its .pxd is ignored."""
    return importlib.import_module(source[:-len(".py")].replace("/", "."))


# -- what a .pxd declares ----------------------------------------------------------


@dataclass
class ClassDeclared:
    name: str
    fields: dict = field(default_factory=dict)      # public or readonly attribute -> (C type, writable)
    c_methods: list = field(default_factory=list)   # cdef: no Python attribute of the compiled class
    has_dict: bool = False                          # cdef dict __dict__


@dataclass
class Declared:
    classes: dict = field(default_factory=dict)
    c_names: list = field(default_factory=list)     # module-level cdef functions and variables


def statements(text):
    """(indentation, statement) of a .pxd: comments and verbatim C out, bracketed lines joined."""
    text = re.sub(r'("""|\'\'\')[\s\S]*?\1', '""', text)
    joined, pending = [], None
    for line in text.splitlines():
        code = line.split("#", 1)[0].rstrip()
        if not code.strip():
            continue
        if pending is None:
            pending = [len(code) - len(code.lstrip()), code.strip()]
        else:
            pending[1] += " " + code.strip()
        if pending[1].count("(") <= pending[1].count(")") and pending[1].count("[") <= pending[1].count("]"):
            joined.append(tuple(pending))
            pending = None
    return joined


def variable_names(declaration):
    """(C type, names) of 'TYPE a, *b, c[5]'."""
    first, *others = declaration.split(",")
    *ctype, name = first.split()
    names = [name] + [other.strip() for other in others]
    return " ".join(ctype), [re.match(r"\**(\w+)", name).group(1) for name in names]


def declarations(text):
    declared = Declared()
    current = None          # the cdef class whose body this is
    block = None            # indentation of a C-only block (extern, struct, enum): its body is skipped
    for indent, code in statements(text):
        if block is not None and indent > block:
            continue
        block = None
        if indent == 0:
            current = None
        if code.startswith("@"):
            continue
        opened = re.match(r"cdef\s+(?:public\s+|api\s+)*class\s+(\w+)", code)
        if opened:
            current = declared.classes.setdefault(opened.group(1), ClassDeclared(opened.group(1)))
            continue
        if code.endswith(":"):
            block = indent
            continue
        keyword, _, rest = code.partition(" ")
        if keyword not in ("cdef", "cpdef") or rest.startswith("extern "):
            continue        # ctypedef, cimport, a single extern
        if "(" in rest:
            name = re.search(r"(\w+)\s*\(", rest).group(1)
            if keyword == "cdef":
                (current.c_methods if current else declared.c_names).append(name)
            continue
        access, _, after = rest.partition(" ")
        if current is None:
            declared.c_names += variable_names(rest)[1]
        elif access in ("public", "readonly"):
            ctype, names = variable_names(after)
            current.fields.update((name, (ctype, access == "public")) for name in names)
        elif "__dict__" in variable_names(rest)[1]:
            current.has_dict = True
    return declared


WRONG_TYPE = object()       # an int, a double, bytes, a list or an extension type each refuse it


HEAPTYPE = 1 << 9     # Py_TPFLAGS_HEAPTYPE


def not_applied(module, declared):
    """(subject, what is wrong) for each declaration of the .pxd the module does not show."""
    problems = []
    for name in declared.c_names:
        if hasattr(module, name):
            problems.append((name, "declared cdef, yet a Python attribute of the module"))
    for decl in declared.classes.values():
        cls = getattr(module, decl.name, None)
        if not isinstance(cls, type):
            problems.append((decl.name, "declared cdef class, not a class of the module"))
            continue
        if cls.__dictoffset__ and not decl.has_dict:
            problems.append((decl.name, "declared cdef class, yet its instances have a __dict__"))
        elif cls.__flags__ & HEAPTYPE:
            # (a class statement makes a heap type; a cdef class is a static extension type)
            problems.append((decl.name, "declared cdef class, yet a class statement's (heap) type"))
        for method in decl.c_methods:
            if hasattr(cls, method):
                problems.append((f"{decl.name}.{method}", "declared cdef, yet a Python attribute"))
        try:
            instance = cls.__new__(cls)
        except TypeError:
            instance = None         # a __cinit__ that wants arguments: the other checks still hold
        for name, (ctype, writable) in decl.fields.items():
            subject = f"{decl.name}.{name}"
            if not isinstance(inspect.getattr_static(cls, name, None), (GetSetDescriptorType, MemberDescriptorType)):
                problems.append((subject, f"declared {ctype}, yet not a typed attribute of the class"))
            if instance is not None and not writable:
                try:
                    setattr(instance, name, WRONG_TYPE)
                except AttributeError:
                    continue        # readonly, as declared
                except TypeError:
                    pass
                problems.append((subject, f"declared readonly {ctype}, yet writable from Python"))
                continue
            if instance is None or not writable or ctype in ("object", "bint"):
                continue            # bint takes any object, object anything
            try:
                setattr(instance, name, WRONG_TYPE)
            except TypeError:
                continue
            problems.append((subject, f"declared {ctype}, yet took an object()"))
    return problems


def subjects(declared):
    """Every declaration not_applied checks."""
    names = set(declared.c_names)
    for decl in declared.classes.values():
        names |= {decl.name} | {f"{decl.name}.{m}" for m in decl.c_methods} | {f"{decl.name}.{f}" for f in decl.fields}
    return names


# -- setup.py compiles every module a .pxd types ----------------------------------------


def test_setup_compiles_every_module_a_pxd_names():
    compiled = extensions.SOURCE_OF
    for pxd in sorted(CORE.glob("*_c.pxd")):
        name = f"core.{pxd.stem}"
        assert name in compiled, f"{pxd.name} types {name}, which core/extensions.py EXTENSIONS does not compile"
        source = compiled[name]
        assert source == f"core/{pxd.stem}.pyx" or source.endswith(".py"), (
            f"{name} is compiled from {source}: {pxd.name} types only core/{pxd.stem}.pyx or a .py in pure mode")


def test_every_extension_has_its_source_and_a_py_one_its_pxd():
    for name, source in extensions.EXTENSIONS:
        assert (ROOT / source).is_file(), f"{name}: its source {source} is missing"
        if source.endswith(".py"):
            assert pxd_of(name).is_file(), (
                f"{name} is compiled from {source} in pure mode, and nothing types it: add {pxd_of(name).name}")
    assert PURE_MODE, "no module is compiled from a .py: the .pxd checks below check nothing"


# -- each .pxd is applied -------------------------------------------------------------


@pytest.mark.parametrize("name, source", PURE_MODE, ids=[name for name, _ in PURE_MODE])
def test_compiled_module_has_every_type_its_pxd_declares(name, source):
    declared = declarations(pxd_of(name).read_text())
    assert declared.classes or declared.c_names, f"{pxd_of(name).name}: found nothing it declares"
    problems = not_applied(compiled_module(name), declared)
    assert not problems, f"{name} is not typed by {pxd_of(name).name} (compiled under another name?):\n" + "\n".join(
        f"  {subject}: {what}" for subject, what in problems)


@pytest.mark.parametrize("name, source", PURE_MODE, ids=[name for name, _ in PURE_MODE])
def test_each_pxd_check_fails_on_the_same_source_without_its_pxd(name, source):
    # The pure-Python module is the compiled one with its .pxd ignored: plain classes, every name an attribute.
    declared = declarations(pxd_of(name).read_text())
    flagged = {subject for subject, _ in not_applied(twin_of(source), declared)}
    assert flagged == subjects(declared)


def test_both_scanners_offer_one_interface():
    # The parser (_parser_py.py) is one source over either byte scanner: _scan_c.pyx when
    # compiled, _scan_py.py when not.  What it may use is what _scan_c.pxd declares.
    from core import _scan_py
    declared = declarations((CORE / "_scan_c.pxd").read_text()).classes["Scanner"]
    compiled = set(declared.fields) | {name for name in declared.c_methods if not name.startswith("_")}
    pure = {name for name in [*dir(_scan_py.Scanner), *vars(_scan_py.Scanner())] if not name.startswith("_")}
    assert pure == compiled


def test_compiled_parser_reaches_the_modules_it_cimports_from_c(monkeypatch):
    # _parser_py.py imports _framing, _scan_py and request as rules, scanning and requests;
    # _parser_c.pxd cimports the compiled ones under those names.  Compiled, the names the
    # .py bound at import (the pure modules) must never be looked up: take them away.
    from core.errors import ParseError
    parser_c = compiled_module("core._parser_c")
    for name in ("rules", "scanning", "requests"):
        monkeypatch.setattr(parser_c, name, None)
    parser = parser_c.RequestParser()
    parser.feed(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
    assert [type(parser.next_event()).__module__ for _ in range(3)] == ["core.request_c", "builtins", "core.events"]
    parser = parser_c.RequestParser()
    parser.feed(b"GET / HTTP/1.1\r\nHost : h\r\n\r\n")
    with pytest.raises(ParseError, match="invalid field name"):
        parser.next_event()


def test_pxd_reading_sees_classes_fields_methods_and_c_names():
    declared = declarations('''
cimport cython
from core._io_c cimport IO
cdef extern from *:
    """
    #define X 1
    """
    int X
cdef unsigned int READ, WRITE   # flags
cdef bint helper(list headers) except -1
cpdef int visible(int x)

@cython.final
cdef class Entry:
    cdef public unsigned long long dev, ino
    cdef readonly bytes path
    cdef char* buf
    cdef double timeouts[5]
    @cython.locals(n=int)
    cdef int flush(self, IO io,
                   bint more) except -2
    cpdef release(self)
''')
    assert declared.c_names == ["READ", "WRITE", "helper"]
    entry = declared.classes["Entry"]
    assert entry.fields == {"dev": ("unsigned long long", True), "ino": ("unsigned long long", True),
                            "path": ("bytes", False)}
    assert entry.c_methods == ["flush"] and not entry.has_dict


# -- a stale build is reported ---------------------------------------------------------


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def built_module(root, name, built_from, body=b"\x7fELF and compiled code"):
    """A stand-in for a built module: the record as the C compiler leaves it, among other bytes."""
    path = root / (name.replace(".", "/") + ".cpython-311-x86_64-linux-gnu.so")
    record = b"" if built_from is None else built_from.encode() + b"\0"
    path.write_bytes(body + b"\0" + record + b"more code\0")
    return SimpleNamespace(__name__=name, __file__=str(path))


@pytest.fixture
def sources(tmp_path, monkeypatch):
    """A checkout with one pure-mode module, core.fake_c from core/fake.py, typed by core/fake_c.pxd."""
    write(tmp_path / "core/fake.py", "class Entry:\n    pass\n")
    write(tmp_path / "core/fake_c.pxd", "cdef class Entry:\n    cdef public int fd\n")
    write(tmp_path / "core/_io_c.pxd", "cdef class IO:\n    pass\n")
    monkeypatch.setitem(extensions.SOURCE_OF, "core.fake_c", "core/fake.py")
    return tmp_path


SOURCES = ["core/fake.py", "core/_io_c.pxd", "core/fake_c.pxd"]


def test_record_holds_the_sha256_of_each_source(sources):
    built_from = extensions.record(SOURCES, sources)
    assert [path for path, _ in extensions.sources_in(built_from)] == SOURCES
    digest = hashlib.sha256((sources / "core/fake_c.pxd").read_bytes()).hexdigest()
    assert dict(extensions.sources_in(built_from))["core/fake_c.pxd"] == digest


def test_record_reads_back_from_the_generated_c_and_the_built_module(sources):
    built_from = extensions.record(SOURCES, sources)
    c_file = write(sources / "core/fake.c", "/* Generated by Cython */\nint x;\n" + extensions.c_declaration(built_from))
    assert extensions.recorded_in(c_file) == built_from
    module = built_module(sources, "core.fake_c", built_from)
    assert extensions.recorded_in(module.__file__) == built_from
    assert extensions.recorded_in(write(sources / "empty", "")) is None


def test_a_source_edited_since_is_named_whatever_its_file_time(sources):
    module = built_module(sources, "core.fake_c", extensions.record(SOURCES, sources))
    assert extensions.stale_reason(module) is None
    pxd = sources / "core/fake_c.pxd"
    times = pxd.stat()
    pxd.write_text(pxd.read_text() + "    cdef public int users\n")
    os.utime(pxd, ns=(times.st_atime_ns, times.st_mtime_ns))       # as a checkout may leave it
    assert extensions.changed_sources(extensions.recorded_in(module.__file__), sources) == ["core/fake_c.pxd"]
    assert extensions.stale_reason(module) == "core/fake_c.pxd changed since it was built"


def test_sources_not_installed_are_not_a_change(sources):
    module = built_module(sources, "core.fake_c", extensions.record(SOURCES, sources))
    (sources / "core/fake_c.pxd").unlink()          # a wheel: loop_py.py and no .pxd
    assert extensions.stale_reason(module) is None
    (sources / "core/fake.py").unlink()
    assert extensions.stale_reason(built_module(sources, "core.fake_c", None)) is None


def test_a_build_without_record_or_from_another_source_is_stale(sources):
    assert "no record" in extensions.stale_reason(built_module(sources, "core.fake_c", None))
    write(sources / "core/old.py", "")
    other = extensions.record(["core/old.py", "core/fake_c.pxd"], sources)
    assert extensions.stale_reason(built_module(sources, "core.fake_c", other)) == (
        "it was compiled from core/old.py, and setup.py now compiles core/fake.py")


def test_a_pxd_that_appeared_since_is_stale(sources):
    # Compiled before its .pxd existed: plain Python classes under a compiled name.
    module = built_module(sources, "core.fake_c", extensions.record(SOURCES[:2], sources))
    assert extensions.stale_reason(module) == "core/fake_c.pxd appeared since it was built"


def test_a_module_not_built_by_setup_is_not_judged(sources):
    assert extensions.stale_reason(built_module(sources, "core.other_c", None)) is None


def cimported_pxds(pxd):
    """core/*.pxd files a .pxd cimports, read simply (setup.py asks Cython)."""
    found = {f"core/{name}.pxd" for name in re.findall(r"^\s*from\s+(?:core)?\.(\w+)\s+cimport", pxd.read_text(), re.M)}
    for path in set(found):
        found |= cimported_pxds(ROOT / path)
    return found


@pytest.mark.parametrize("name, source", extensions.EXTENSIONS, ids=[name for name, _ in extensions.EXTENSIONS])
def test_built_module_records_the_sources_it_was_built_from(name, source):
    module = compiled_module(name)
    built_from = extensions.recorded_in(module.__file__)
    assert built_from, f"{module.__file__} carries no record of its sources: python setup.py build_ext --inplace"
    recorded = [path for path, _ in extensions.sources_in(built_from)]
    assert recorded[0] == source
    pxd = pxd_of(name)
    if pxd.exists():
        wanted = {f"core/{pxd.name}"} | cimported_pxds(pxd)
        assert wanted <= set(recorded), f"{name}: its record leaves out {wanted - set(recorded)}"
    assert extensions.stale_reason(module) is None, (
        f"{name}: {extensions.stale_reason(module)}: python setup.py build_ext --inplace")


# -- end to end: a checkout whose .pxd changed after the build ----------------------------

STALE_MODULE, STALE_SOURCE = PURE_MODE[0] if PURE_MODE else ("core.loop_c", "core/loop_py.py")


@pytest.fixture
def checkout(tmp_path):
    """core with its built modules, copied, and its first pure-mode module's .pxd edited after the build."""
    compiled_module(STALE_MODULE)           # built, or fail here rather than in the subprocess
    shutil.copytree(CORE, tmp_path / "core", ignore=shutil.ignore_patterns("__pycache__", "*.c", "*.html"))
    return tmp_path


def edit_pxd(root):
    pxd = root / (STALE_MODULE.replace(".", "/") + ".pxd")
    times = pxd.stat()
    pxd.write_text(pxd.read_text() + "# edited after the build\n")
    os.utime(pxd, ns=(times.st_atime_ns, times.st_mtime_ns))
    return pxd.relative_to(root).as_posix()


def load_twice(root, **env):
    compiled, pure = STALE_MODULE.split(".")[1], STALE_SOURCE[len("core/"):-len(".py")]
    code = (f"import sys; sys.path.insert(0, {str(root)!r})\n"
            "import core; assert core.__file__.startswith(sys.path[0]), core.__file__\n"
            "from core.implementation import load\n"
            f"for _ in range(2): print(load({compiled!r}, {pure!r})[1])\n")
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("CORE_PURE_PYTHON", "CORE_REQUIRE_COMPILED", "PYTHONPATH")}
    return subprocess.run([sys.executable, "-c", code], cwd=root, env={**environment, **env},
                          capture_output=True, text=True, timeout=60)


def test_current_build_loads_silently(checkout):
    result = load_twice(checkout, CORE_REQUIRE_COMPILED="1")
    assert (result.returncode, result.stdout, result.stderr) == (0, "True\nTrue\n", "")


def test_edited_pxd_is_reported_once_on_stderr(checkout):
    pxd = edit_pxd(checkout)
    result = load_twice(checkout)
    assert result.returncode == 0 and result.stdout == "True\nTrue\n", result.stderr
    assert result.stderr == (f"core: warning: {STALE_MODULE} is stale: {pxd} changed since it was built; "
                             f"it runs as built. Rebuild: {extensions.REBUILD}\n")
    assert "python setup.py build_ext --inplace" in result.stderr and "pip install -e ." in result.stderr


def test_edited_pxd_is_an_import_error_under_require_compiled(checkout):
    pxd = edit_pxd(checkout)
    result = load_twice(checkout, CORE_REQUIRE_COMPILED="1")
    assert result.returncode != 0 and result.stdout == ""
    assert result.stderr.splitlines()[-1] == (
        f"core.implementation.StaleBuildError: {STALE_MODULE} is stale (CORE_REQUIRE_COMPILED=1): "
        f"{pxd} changed since it was built; rebuild: {extensions.REBUILD}")
