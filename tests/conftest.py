"""Which servers each test runs against, and the fixtures that start them.

A test asks for `server` (a running server) or `server_name` (just the name,
for tests that start processes themselves).  Which servers: the closest
`@pytest.mark.servers(...)`, normally a module's
`pytestmark = pytest.mark.servers(*servers_from("s04_headers"))`; the
earliest stage it names is the stage the test belongs to.

Options (README, "Tests"):
  --server NAME      only tests that drive NAME (a stage, core, core-py)
  --stage sNN_name   only what a server at that stage must pass: the tests of
                     stages 1..NN; alone, against the course's own sNN_name
  --server-cmd CMD   your own server, at the stage --stage names
Any of them leaves out the tests that drive no server (parser, bench, units).

Markers: `codecrafters(slug, name)` marks a check the official CodeCrafters
tester makes, exactly (tests/test_codecrafters.py); every other check of a
stage is marked `course` here at collection.
"""
import pytest

from servers import (NAMES, OWN, STAGES, OwnServer, PortBusy, RunningServer, ServerProcess, describe_exit,
                     first_stage, is_cumulative)
from servers import DIRECTORY as DIRECTORY_PLACEHOLDER

SELECTION = pytest.StashKey()  # config.stash: the Selection the options make
OWN_SERVER = pytest.StashKey()  # config.stash: the OwnServer of the module running now
WATCHED = pytest.StashKey()  # item.stash: the OwnServer a test ran against


def pytest_addoption(parser):
    group = parser.getgroup("httpcourse", "servers under test (README, Tests)")
    group.addoption("--server", action="append", choices=NAMES,
                    help="only run tests that drive this server (repeatable)")
    group.addoption("--stage", choices=STAGES,
                    help="only what a server at this stage must pass (the tests of every stage up to it); "
                         "without --server or --server-cmd, against that course stage")
    group.addoption("--server-cmd", metavar="CMD",
                    help="test your own server: a shell command that starts it, at the stage --stage names; "
                         "{port} and {directory} are filled in (no {port}: it must listen on 4221)")


class Selection:
    """What the options ask for: which servers, up to which stage."""

    def __init__(self, config):
        servers = config.getoption("server")
        self.own_command = config.getoption("server_cmd")
        self.stage = config.getoption("stage")
        if self.own_command is not None:
            if servers:
                raise pytest.UsageError("--server-cmd tests your own server: leave out --server")
            if not self.stage:
                raise pytest.UsageError("--server-cmd needs --stage sNN_name, the last stage your server has done: "
                                        + ", ".join(STAGES))
            if STAGES.index(self.stage) >= STAGES.index("s06_files") and DIRECTORY_PLACEHOLDER not in self.own_command:
                raise pytest.UsageError(f"stage {self.stage} serves files: pass --directory {{directory}} in "
                                        "--server-cmd, as the CodeCrafters tester passes --directory")
        self.active = bool(servers or self.stage or self.own_command is not None)
        if servers:
            self.builtin = servers
        elif self.own_command is not None:
            self.builtin = []
        else:
            self.builtin = [self.stage] if self.stage else NAMES
        self.names = self.builtin + ([OWN] if self.own_command is not None else [])

    def up_to_stage(self, marker_args):
        first = first_stage(marker_args)
        return first is not None and STAGES.index(first) <= STAGES.index(self.stage)

    def servers_for(self, definition, marker_args, fixture):
        names = [name for name in self.builtin if name in marker_args]
        if self.stage:
            names = names if self.up_to_stage(marker_args) else []
        # Your server takes every check a server at its stage must pass, through `server`;
        # `server_name` tests and `cli` ones start the course's own command lines.
        if (self.own_command is not None and fixture == "server" and is_cumulative(marker_args)
                and self.up_to_stage(marker_args) and definition.get_closest_marker("cli") is None):
            names.append(OWN)
        return names


def pytest_configure(config):
    for line in [
        "servers(*names): the servers a test runs against; the earliest stage named is the test's stage",
        "codecrafters(slug, name): a check the official CodeCrafters tester makes, exactly (its stage's slug and name)",
        "course: a stricter check of the course, beyond what the CodeCrafters tester asks",
        "cli: a check of the course's own command line (ports, exit codes); never run against --server-cmd",
    ]:
        config.addinivalue_line("markers", line)
    config.stash[SELECTION] = Selection(config)


def pytest_report_header(config):
    selection = config.stash[SELECTION]
    if not selection.active:
        return None
    if selection.own_command is not None:
        where = "on a free port" if "{port}" in selection.own_command else "on port 4221"
        return [f"your server ({OWN} in test ids), at stage {selection.stage}, {where}: {selection.own_command}"]
    return [f"servers: {', '.join(selection.builtin)}" + (f"; up to stage {selection.stage}" if selection.stage else "")]


def pytest_generate_tests(metafunc):
    marker = metafunc.definition.get_closest_marker("servers")
    if marker is None:
        return
    selection = metafunc.config.stash[SELECTION]
    if "server" in metafunc.fixturenames:
        names = selection.servers_for(metafunc.definition, marker.args, "server")
        # Module scope: one process per server per module, not per test.
        metafunc.parametrize("server", names, indirect=True, scope="module")
    elif "server_name" in metafunc.fixturenames:
        metafunc.parametrize("server_name", selection.servers_for(metafunc.definition, marker.args, "server_name"))


def server_param(item):
    params = getattr(item, "callspec", None)
    if params is None:
        return None
    return params.params.get("server", params.params.get("server_name"))


@pytest.hookimpl(tryfirst=True)  # before -m reads the markers
def pytest_collection_modifyitems(config, items):
    for item in items:
        marker = item.get_closest_marker("servers")
        if marker and first_stage(marker.args) and not item.get_closest_marker("codecrafters"):
            item.add_marker("course")
    selection = config.stash[SELECTION]
    if not selection.active:
        return
    # Asked for servers: only the tests that drive one of them, none of the parser, bench or unit tests.
    keep = [item for item in items if server_param(item) in selection.names]
    if len(keep) < len(items):
        config.hook.pytest_deselected(items=[item for item in items if server_param(item) not in selection.names])
        items[:] = keep


@pytest.fixture(scope="module")
def server(request, tmp_path_factory):
    name = request.param
    # Tests put files that must stay unreachable next to the served directory.
    directory = tmp_path_factory.mktemp(name) / "served"
    directory.mkdir()
    if name == OWN:
        # Started (and restarted) test by test: see own_server_per_test.
        own = OwnServer(request.config.stash[SELECTION].own_command, f"{directory}/")
        request.config.stash[OWN_SERVER] = own
        try:
            yield RunningServer(own.host, own.port, directory, name, own)
        finally:
            own.close()
            del request.config.stash[OWN_SERVER]
        return
    # The trailing slash is how the CodeCrafters tester passes it.
    process = ServerProcess(name, f"{directory}/")
    try:
        port = process.wait_until_listening()
        yield RunningServer("127.0.0.1", port, directory, name, process)
        # A course rule for the course's own servers, never asked of yours.
        if name in STAGES:
            process.wait_for_connection_threads()
        process.stop_cleanly()
    finally:
        process.stop()
        process.close()


@pytest.fixture(autouse=True)
def own_server_per_test(request):
    """Your server's life around each test, so that a crash is reported at the test that saw it.

    A `codecrafters` check gets a fresh process, as the tester starts one per stage, and
    connects to it itself (retrying, as the tester does): nothing else touches it first.
    A `course` check runs against the module's process, started when needed and found
    ready by connecting.  If the server is gone after a test, that test errors with its
    output; gone before one, the test errors naming what ran last; the next test starts
    a new process.
    """
    if server_param(request.node) != OWN or "server" not in request.fixturenames:
        yield
        return
    request.getfixturevalue("server")
    own = request.config.stash[OWN_SERVER]
    request.node.stash[WATCHED] = own
    nodeid = request.node.nodeid
    try:
        if request.node.get_closest_marker("codecrafters"):
            own.start()
            own.note(f"{nodeid} starts")
            yield
            own.stop()
            return
        if own.process is not None and own.process.returncode is None and own.exit_code() is not None:
            code, after = own.exit_code(), own.last_test or "the readiness connection"
            own.stop()
            pytest.fail(f"your server stopped ({describe_exit(code)}) after {after}, before this test", pytrace=False)
        if not own.running():
            own.start()
            own.last_test = None
            own.wait_until_accepting()
    except PortBusy as error:
        pytest.exit(str(error), returncode=pytest.ExitCode.USAGE_ERROR)
    except (RuntimeError, TimeoutError) as error:
        own.stop()
        pytest.fail(str(error), pytrace=False)
    own.note(f"{nodeid} starts")
    yield
    own.last_test = nodeid
    code = own.exit_code()
    if code is not None:
        own.stop()
        pytest.fail(f"your server stopped ({describe_exit(code)}) during this test", pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing server test says which stage's check it is and shows your server's output."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    codecrafters = item.get_closest_marker("codecrafters")
    servers = item.get_closest_marker("servers")
    if codecrafters:
        report.sections.append(("check", f"CodeCrafters stage {codecrafters.args[0].upper()} "
                                         f"\"{codecrafters.args[1]}\", as the official tester checks it"))
    elif servers and first_stage(servers.args):
        report.sections.append(("check", f"course check of stage {first_stage(servers.args)} "
                                         f"(stricter than the CodeCrafters tester: README, Tests)"))
    own = item.stash.get(WATCHED, None)
    if own is not None:
        report.sections.append(("your server's output (stdout+stderr)", own.output()))
