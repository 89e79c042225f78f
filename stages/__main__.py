"""`python -m stages`: list the stages and the one idea each adds.

The list is read from the stage modules themselves (their first docstring
line and its "New:" paragraph), so it cannot drift from the code.
"""
import importlib
import pkgutil
import re
import textwrap

import stages


def stage_names():
    return sorted(name for _, name, _ in pkgutil.iter_modules(stages.__path__) if re.fullmatch(r"s\d\d_\w+", name))


def new_idea(docstring):
    """The "New:" paragraph of a stage docstring, as one line."""
    match = re.search(r"^New: (.*?)(?=^\S|\Z)", docstring, re.MULTILINE | re.DOTALL)
    return " ".join(match.group(1).split())


def main():
    print("Stages (run one with: python -m stages.<name> [--port N] [--directory DIR]):")
    for name in stage_names():
        doc = importlib.import_module(f"stages.{name}").__doc__
        title = doc.splitlines()[0].partition(": ")[2]  # "Stage 4: read a header" -> "read a header"
        print(f"\n{name:17}{title}")
        print(textwrap.fill(f"New: {new_idea(doc)}", width=88, initial_indent=" " * 17,
                            subsequent_indent=" " * 22, break_on_hyphens=False))


if __name__ == "__main__":
    main()
