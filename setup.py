"""Build script: compiles the Cython extensions of ``core`` (core/extensions.py lists them).

The metadata lives in pyproject.toml; this file only exists because extension
modules are declared in code.  ``CORE_PURE_PYTHON=1`` skips them (the
pure-Python path then serves everything), and so does a missing Cython.

Each generated .c ends with the record of the files it was generated from
and their sha256 (core/extensions.py), so the built module carries it: a .c
whose record differs from the sources now is generated again.  That also
covers what Cython's own check, by file times, misses: for loop_py.py
compiled as loop_c it watches loop_py.pxd, not loop_c.pxd and its cimports.
"""
import importlib.util
import os

from setuptools import setup

ROOT = os.path.dirname(os.path.abspath(__file__))


def core_extensions():
    # By its path: importing the package core would find whichever core is installed.
    spec = importlib.util.spec_from_file_location("core_extensions", os.path.join(ROOT, "core", "extensions.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sources_of(name, source, dependencies):
    """The project files ``name`` is generated from: its source, then the .pxd files, sorted."""
    found = set(dependencies.all_dependencies(source))
    pxd = name.replace(".", "/") + ".pxd"       # Cython reads the .pxd named after the module
    if os.path.exists(pxd):
        found |= set(dependencies.all_dependencies(pxd))
    inside = {os.path.relpath(os.path.abspath(path), ROOT).replace(os.sep, "/") for path in found}
    return [source] + sorted(path for path in inside if not path.startswith("..") and path != source)


def ext_modules():
    if os.environ.get("CORE_PURE_PYTHON") == "1":
        return []
    try:
        from Cython.Build import cythonize
        from Cython.Build.Dependencies import create_dependency_tree
    except ImportError:
        if os.environ.get("CORE_REQUIRE_COMPILED") == "1":
            raise
        return []
    from setuptools import Extension

    extensions = core_extensions()
    dependencies = create_dependency_tree()
    modules, records = [], {}
    for name, source in extensions.EXTENSIONS:
        sources = sources_of(name, source, dependencies)
        records[name] = extensions.record(sources, ROOT)
        c_file = os.path.splitext(source)[0] + ".c"
        if os.path.exists(c_file) and extensions.recorded_in(c_file) != records[name]:
            os.remove(c_file)       # generated from other sources: cythonize it again
        modules.append(Extension(name, [source], extra_compile_args=["-O3"], depends=sources[1:]))
    modules = cythonize(modules, compiler_directives={"language_level": "3", "annotation_typing": False})
    for module in modules:
        c_file = module.sources[0]
        if extensions.recorded_in(c_file) is None:      # just generated
            with open(c_file, "a") as f:
                f.write(extensions.c_declaration(records[module.name]))
    return modules


setup(ext_modules=ext_modules())
