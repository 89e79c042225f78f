"""Fixtures that start each server once per test module.

A test asks for `server` (a running server) or `server_name` (just the name,
for tests that start processes themselves).  Which servers: the closest
`@pytest.mark.servers(...)`, normally a module's
`pytestmark = pytest.mark.servers(*servers_from("s04_headers"))`.
`--server NAME` keeps only the tests run against NAME: everything that
stage must pass, as the CodeCrafters tester would check it.
"""
import pytest

from servers import NAMES, RunningServer, ServerProcess


def pytest_addoption(parser):
    parser.addoption("--server", action="append", choices=NAMES, help="only run tests against this server")


def pytest_configure(config):
    config.addinivalue_line("markers", "servers(*names): the servers a test runs against")


def pytest_generate_tests(metafunc):
    marker = metafunc.definition.get_closest_marker("servers")
    if marker is None:
        return
    names = [name for name in marker.args if name in (metafunc.config.getoption("server") or NAMES)]
    if "server" in metafunc.fixturenames:
        # Module scope: one process per server per module, not per test.
        metafunc.parametrize("server", names, indirect=True, scope="module")
    elif "server_name" in metafunc.fixturenames:
        metafunc.parametrize("server_name", names)


@pytest.fixture(scope="module")
def server(request, tmp_path_factory):
    name = request.param
    # Tests put files that must stay unreachable next to the served directory.
    directory = tmp_path_factory.mktemp(name) / "served"
    directory.mkdir()
    # The trailing slash is how the CodeCrafters tester passes it.
    process = ServerProcess(name, f"{directory}/")
    try:
        port = process.wait_until_listening()
        yield RunningServer("127.0.0.1", port, directory, name)
        exit_code = process.stop()
        assert exit_code == 0, f"{name} exited {exit_code} on SIGTERM, not 0\n{process.stderr()}"
        assert "Traceback" not in process.stderr(), process.stderr()
    finally:
        process.stop()
        process.close()
