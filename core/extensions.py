"""core's compiled modules: what setup.py builds, and whether a build is current.

setup.py compiles every entry of EXTENSIONS and embeds in it a record of the
files it was generated from -- its .pyx or .py, the .pxd named after the
module, the .pxd files those cimport -- each with its sha256.  The record is a
C string appended to the generated .c, so it is in the built module itself
and cannot be separated from it.  ``implementation.load`` reads it back and
compares it with the sources beside the package: file times cannot tell, as a
checkout gives every file it writes the time of the checkout.  A package
installed without its sources has nothing to compare with and is taken as
built.
"""
import mmap
import os
import re

try:
    # The interpreter's own sha256: hashlib would load OpenSSL's libcrypto, 3.6 MiB
    # resident in every server process, for this one check at start.
    from _sha2 import sha256
except ImportError:
    try:
        from _sha256 import sha256          # Python 3.10 and 3.11
    except ImportError:
        from hashlib import sha256

# Each compiled module of core: (module name, Cython source).  A .py source
# is compiled in Cython's pure-Python mode, typed by the .pxd named after the
# module (core/loop_c.pxd), not after the source: Cython reads X_c.pxd for a
# module named X_c.
EXTENSIONS = [
    ("core.request_c", "core/request.py"),
    ("core._framing_c", "core/_framing.py"),
    ("core._scan_c", "core/_scan_c.pyx"),
    ("core._parser_c", "core/_parser_py.py"),
    ("core._io_c", "core/_io_c.pyx"),
    ("core.loop_c", "core/loop_py.py"),
    ("core.filecache_c", "core/filecache.py"),
]
SOURCE_OF = dict(EXTENSIONS)

REBUILD = "python setup.py build_ext --inplace (or pip install -e .)"

# "httpcourse-built-from core/loop_py.py=<sha256> core/loop_c.pxd=<sha256> ...",
# the compiled source first: the same bytes in the .c (a string literal) and
# in the built module (its constant), so one reader serves both.
MARKER = "httpcourse-built-from"
_RECORD = re.compile(rb"httpcourse-built-from((?: [\w./-]+=[0-9a-f]{64})+)")
_PATH = re.compile(r"[\w./-]+\Z")


def file_sha256(path):
    with open(path, "rb") as f:
        return sha256(f.read()).hexdigest()


def record(sources, root):
    """The record of ``sources`` (paths relative to ``root``, the compiled source first)."""
    for source in sources:
        if not _PATH.match(source):
            raise ValueError(f"{source!r}: a source path the record can hold has no spaces or quotes")
    return MARKER + "".join(f" {source}={file_sha256(os.path.join(root, source))}" for source in sources)


def c_declaration(built_from):
    """C code that keeps ``built_from`` in the compiled module (appended to the generated .c)."""
    return ("\n/* Appended by setup.py: the sources this file was generated from, and their\n"
            "   sha256, read back at import by core/extensions.py. */\n"
            "#ifdef __GNUC__\n__attribute__((used))\n#endif\n"
            f'static const char httpcourse_built_from[] = "{built_from}";\n')


def recorded_in(path):
    """The record in a generated .c or a built module, or None if it has none."""
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return None
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            at = data.find(MARKER.encode())
            found = _RECORD.match(data, at) if at >= 0 else None
            return found.group(0).decode() if found else None


def sources_in(built_from):
    """[(path, sha256)] of a record, the compiled source first."""
    return [tuple(entry.rsplit("=", 1)) for entry in built_from.split(" ")[1:]]


def changed_sources(built_from, root):
    """The sources of the record whose content under ``root`` differs from it.

    A source that is not there (a wheel ships loop_py.py but no .pxd) is not
    counted: an edit that stops cimporting a .pxd changes the file that cimported it.
    """
    return [path for path, digest in sources_in(built_from)
            if os.path.exists(os.path.join(root, path)) and file_sha256(os.path.join(root, path)) != digest]


def stale_reason(module):
    """Why the built ``module`` does not match the sources beside it, or None.

    None also when it is not one of EXTENSIONS or its sources are not there.
    """
    source = SOURCE_OF.get(module.__name__)
    if source is None:
        return None
    # The directory holding the package: core/loop_c.*.so -> the checkout.
    root = os.path.dirname(os.path.dirname(os.path.abspath(module.__file__)))
    if not os.path.exists(os.path.join(root, source)):
        return None
    built_from = recorded_in(module.__file__)
    if built_from is None:
        return "it carries no record of the sources it was built from (not built by this setup.py)"
    compiled_source = sources_in(built_from)[0][0]
    if compiled_source != source:
        return f"it was compiled from {compiled_source}, and setup.py now compiles {source}"
    news = []
    changed = changed_sources(built_from, root)
    if changed:
        news.append(f"{', '.join(changed)} changed")
    pxd = module.__name__.replace(".", "/") + ".pxd"        # the .pxd Cython reads for it
    if os.path.exists(os.path.join(root, pxd)) and pxd not in dict(sources_in(built_from)):
        news.append(f"{pxd} appeared")
    return " and ".join(news) + " since it was built" if news else None
