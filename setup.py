"""Build script: declares the Cython extensions of ``core``.

The metadata lives in pyproject.toml; this file only exists because extension
modules are declared in code.  ``CORE_PURE_PYTHON=1`` skips them (the
pure-Python path then serves everything), and so does a missing Cython.
"""
import os

from setuptools import setup

# Each compiled module of core: (extension name, Cython source).
EXTENSIONS = [
    # One source: each .py compiled under the name whose .pxd (X_c.pxd) types it;
    # the pure-Python path imports the .py itself.
    ("core.request_c", "core/request.py"),
    ("core._framing_c", "core/_framing.py"),
    ("core._parser_c", "core/_parser_c.pyx"),
    ("core._server_c", "core/_server_c.pyx"),
    ("core._io_c", "core/_io_c.pyx"),
    ("core.loop_c", "core/loop_py.py"),
]
# Cython tracks a .py source's .pxd by the source's stem (loop_py.pxd), so it
# misses loop_c.pxd and what that cimports: list them, and a newer one
# forces the module to be cythonized again.
PXD_OF = {
    "core/request.py": ["core/request_c.pxd"],
    "core/_framing.py": ["core/_framing_c.pxd"],
    "core/loop_py.py": ["core/loop_c.pxd", "core/_io_c.pxd", "core/_parser_c.pxd",
                        "core/request_c.pxd", "core/_framing_c.pxd"],
}


def _stale(src):
    c_file = os.path.splitext(src)[0] + ".c"
    if not os.path.exists(c_file):
        return False
    return any(os.path.getmtime(pxd) > os.path.getmtime(c_file) for pxd in PXD_OF.get(src, ()))


def ext_modules():
    if os.environ.get("CORE_PURE_PYTHON") == "1" or not EXTENSIONS:
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        if os.environ.get("CORE_REQUIRE_COMPILED") == "1":
            raise
        return []
    from setuptools import Extension

    for src in PXD_OF:
        if _stale(src):
            os.remove(os.path.splitext(src)[0] + ".c")     # its types changed: cythonize it again
    return cythonize(
        [Extension(name, [src], extra_compile_args=["-O3"], depends=PXD_OF.get(src, []))
         for name, src in EXTENSIONS],
        # Annotations in the .py sources document; the .pxd files type.
        compiler_directives={"language_level": "3", "annotation_typing": False},
    )


setup(ext_modules=ext_modules())
