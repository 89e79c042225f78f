"""User-space instructions per request of an event loop, counted by valgrind (trial tool).

CPU time on a shared 2-core VM is noisy (±10 % between repetitions); an
instruction count is not.  Each loop module serves N sequential keep-alive
GETs of a 10 KiB file (8 connections, round robin) in-process under
callgrind, for two values of N; the difference ÷ the extra requests is the
marginal cost of one request, start-up excluded.  Kernel work (recv, send,
sendfile, epoll) is not counted: it is the same system calls for every loop.

    python -m bench.loop_instructions [loop_c ...]   # from each checkout to compare
"""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile

FEW, MANY = 300, 2300
REQUEST = b"GET /files/10k.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def client(port, n, server_pid):
    conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(8)]
    for i in range(n):
        sock = conns[i % len(conns)]
        sock.sendall(REQUEST)
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head, body = data.split(b"\r\n\r\n", 1)
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
        while len(body) < length:
            body += sock.recv(65536)
    for sock in conns:
        sock.close()
    os.kill(server_pid, signal.SIGTERM)


def server(module, n, directory):
    import importlib
    from core.app import App
    from core.files import FileRoot
    from core.limits import Limits
    loop = importlib.import_module(f"core.{module}")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    helper = subprocess.Popen([sys.executable, "-m", "bench.loop_instructions", "--client",
                               str(listener.getsockname()[1]), str(n), str(os.getpid())])
    loop.EventLoop(listener, App(FileRoot(directory), Limits()), Limits()).run()
    helper.wait()


def instructions(module, n, directory):
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                          sys.executable, "-m", "bench.loop_instructions", "--server", module, str(n), directory],
                         capture_output=True, text=True, env=dict(os.environ, PYTHONHASHSEED="0"), check=True)
    return int(re.search(r"Collected : (\d+)", out.stderr).group(1))


def main(modules):
    with tempfile.TemporaryDirectory() as directory:
        with open(os.path.join(directory, "10k.bin"), "wb") as f:
            f.write(os.urandom(10240))
        costs = {}
        for module in modules:
            costs[module] = (instructions(module, MANY, directory) - instructions(module, FEW, directory)) / (MANY - FEW)
            print(f"{module}: {costs[module]:,.0f} instructions per request (user space)")
        first = modules[0]
        for module in modules[1:]:
            print(f"{module} ÷ {first}: {costs[module] / costs[first]:.3f}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--client"]:
        client(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    elif sys.argv[1:2] == ["--server"]:
        server(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        main(sys.argv[1:] or ["loop_c"])
