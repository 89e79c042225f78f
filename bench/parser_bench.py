"""Parser benchmark: requests parsed per second, ours against httptools and h11.

    python -m bench parser [--seconds 0.5] [--reps 5]

Each parser is fed one whole request per call, as a server that reads one
request per recv() would, and must produce the same information: method,
target, version, headers (in order) and the body.  Parsers that keep state
across a keep-alive connection reuse one instance; h11 cannot start a new
request before a response is sent, so it gets a new connection per request
(that cost is h11's real per-request cost in a server too).  Runs are
interleaved (A B C D, A B C D, ...) and the median per parser is reported,
with the ratio of the compiled parser to each competitor.
"""
import argparse
import os
import statistics
import sys
import time

SHAPES = {
    # wrk's request for the 10 KB file: Host only.
    "wrk-get": b"GET /10k.bin HTTP/1.1\r\nHost: 127.0.0.1:4221\r\n\r\n",
    "browser-get": (
        b"GET /files/index.html?lang=en HTTP/1.1\r\n"
        b"Host: www.example.com\r\n"
        b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n"
        b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
        b"Accept-Language: en-US,en;q=0.5\r\n"
        b"Accept-Encoding: gzip, deflate, br, zstd\r\n"
        b"Referer: https://www.example.com/\r\n"
        b"Connection: keep-alive\r\n"
        b"Cookie: session=8f2d1c9e7b6a5f4e3d2c1b0a; theme=dark\r\n"
        b"Upgrade-Insecure-Requests: 1\r\n"
        b"Sec-Fetch-Dest: document\r\n"
        b"Sec-Fetch-Mode: navigate\r\n"
        b"If-None-Match: \"5f3a-1a2b3c\"\r\n"
        b"\r\n"),
    "post-1k": (b"POST /files/upload.bin HTTP/1.1\r\nHost: 127.0.0.1:4221\r\n"
                b"Content-Type: application/octet-stream\r\nContent-Length: 1024\r\n\r\n" + b"x" * 1024),
}


def ours(module):
    from core.events import END_OF_MESSAGE, NEED_DATA

    def make():
        parser = module.RequestParser()

        def parse(data):
            parser.feed(data)
            request = parser.next_event()
            body = []
            while (event := parser.next_event()) is not END_OF_MESSAGE:
                if event is NEED_DATA:
                    raise AssertionError("incomplete request")
                body.append(event)
            return request.method, request.target, request.version, request.headers, b"".join(body)
        return parse
    return make


def httptools_parser():
    import httptools

    def make():
        state = {}

        class Protocol:
            def on_message_begin(self):
                state["headers"] = []
                state["body"] = []

            def on_url(self, url):
                state["target"] = url

            def on_header(self, name, value):
                state["headers"].append((name, value))

            def on_body(self, body):
                state["body"].append(body)

            def on_message_complete(self):
                state["done"] = True

        parser = httptools.HttpRequestParser(Protocol())

        def parse(data):
            state["done"] = False
            parser.feed_data(data)
            assert state["done"]
            return (parser.get_method(), state["target"], parser.get_http_version().encode(),
                    state["headers"], b"".join(state["body"]))
        return parse
    return make


def h11_parser():
    import h11

    def make():
        def parse(data):
            conn = h11.Connection(h11.SERVER)
            conn.receive_data(data)
            request = conn.next_event()
            body = []
            while type(event := conn.next_event()) is not h11.EndOfMessage:
                body.append(event.data)
            return (request.method, request.target, request.http_version,
                    list(request.headers.raw_items()), b"".join(body))
        return parse
    return make


def candidates():
    """(name, factory or None, why missing)."""
    from core import _parser_py
    found = []
    try:
        from core import _parser_c
        found.append(("compiled", ours(_parser_c), None))
    except ImportError:
        found.append(("compiled", None, "not built: pip install -e . (with Cython)"))
    found.append(("pure-python", ours(_parser_py), None))
    for name, factory, package in (("httptools", httptools_parser, "httptools"), ("h11", h11_parser, "h11")):
        try:
            __import__(package)
            found.append((name, factory(), None))
        except ImportError:
            found.append((name, None, f"pip install {package}  (or pip install -e '.[bench]')"))
    return found


def rate(make, data, seconds):
    """Requests per second over about `seconds` of parsing."""
    parse = make()
    parse(data)  # warm up, and check it parses at all
    batch, count, start = 64, 0, time.perf_counter()
    while True:
        for _ in range(batch):
            parse(data)
        count += batch
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return count / elapsed
        batch = min(batch * 2, 65536) if elapsed < seconds / 4 else batch


def check_same_information(parsers):
    """Every parser must extract the same method, target, version, headers and body."""
    for shape, data in SHAPES.items():
        results = {name: make()(data) for name, make in parsers}
        reference = next(iter(results.values()))
        for name, result in results.items():
            normalised = (result[0], result[1], result[2], [(bytes(n), bytes(v)) for n, v in result[3]],
                          result[4])
            expected = (reference[0], reference[1], reference[2], [(bytes(n), bytes(v)) for n, v in reference[3]],
                        reference[4])
            # h11 lower-cases names; compare names case-insensitively.
            lower = lambda r: (r[0], r[1], r[2], [(n.lower(), v) for n, v in r[3]], r[4])
            if lower(normalised) != lower(expected):
                raise SystemExit(f"{name} parsed {shape} differently: {normalised!r} vs {expected!r}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench parser", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=0.5, help="time per measurement (default 0.5)")
    parser.add_argument("--reps", type=int, default=5, help="interleaved repetitions (default 5)")
    args = parser.parse_args(argv)

    available = []
    for name, make, missing in candidates():
        if make is None:
            print(f"skipping {name}: {missing}", file=sys.stderr)
        else:
            available.append((name, make))
    check_same_information(available)

    print(f"# Parser benchmark: requests/s, median of {args.reps} interleaved runs of {args.seconds}s")
    print(f"# python {sys.version.split()[0]}, {os.uname().machine}, pid {os.getpid()}")
    table = {}
    for shape, data in SHAPES.items():
        runs = {name: [] for name, _ in available}
        for _ in range(args.reps):
            for name, make in available:
                runs[name].append(rate(make, data, args.seconds))
        table[shape] = {name: statistics.median(values) for name, values in runs.items()}

    names = [name for name, _ in available]
    print()
    print("| shape | " + " | ".join(names) + " | compiled ÷ " + " | compiled ÷ ".join(n for n in names if n != "compiled") + " |")
    print("|---" * (1 + len(names) + len(names) - 1) + "|")
    for shape, medians in table.items():
        cells = [f"{medians[n]:,.0f}" for n in names]
        if "compiled" in medians:
            ratios = [f"{medians['compiled'] / medians[n]:.2f}×" for n in names if n != "compiled"]
        else:
            ratios = ["–" for n in names if n != "compiled"]
        print(f"| {shape} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    return 0


if __name__ == "__main__":
    main()
