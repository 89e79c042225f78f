"""``python -m core``: command-line options, in the style of uvicorn and gunicorn."""
import argparse
import os
import sys

from .limits import DEFAULT_LIMITS, Limits


class OneLineParser(argparse.ArgumentParser):
    """Bad arguments get one line naming the problem (and exit 2), not a usage dump."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def help_formatter(prog):
    """argparse's formatter at the terminal's width, asked without shutil.

    argparse imports shutil only for get_terminal_size(), and shutil brings bz2,
    lzma and fnmatch into the supervisor and every worker; this is its rule:
    $COLUMNS, else the terminal on standard output, else 80.
    """
    try:
        columns = int(os.environ.get("COLUMNS", 0))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return argparse.HelpFormatter(prog, width=(columns if columns > 0 else 80) - 2)


def _octal(text):
    return int(text, 8)


def parse_allow_ips(text):
    """--forwarded-allow-ips: None for "*" (everyone), else a tuple of ip_network."""
    import ipaddress
    items = [item.strip() for item in text.split(",") if item.strip()]
    if "*" in items:
        return None
    return tuple(ipaddress.ip_network(item, strict=False) for item in items)


def program_name() -> str:
    """How the user started us: ``python -m core``, or the console command (httpcourse-serve)."""
    invoked = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return "python -m core" if invoked in ("", "__main__.py", "-c") else invoked


def parse_args(argv=None):
    parser = OneLineParser(
        prog=program_name(), formatter_class=help_formatter,
        description="The production HTTP/1.1 server: every route of the course, fast.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=4221, help="port (default 4221; 0 picks a free one)")
    parser.add_argument("--fd", type=int, default=None, metavar="N",
                        help="serve the listening socket inherited as descriptor N (instead of --host/--port)")
    parser.add_argument("--uds", default=None, metavar="PATH",
                        help="listen on a unix socket at PATH, e.g. behind nginx (a stale socket there is replaced)")
    parser.add_argument("--uds-mode", type=_octal, default=None, metavar="MODE",
                        help="permissions of the --uds socket, in octal, e.g. 660 (default: from the umask)")
    parser.add_argument("--forwarded-allow-ips", default=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1"),
                        metavar="IPS",
                        help="proxies trusted to set X-Forwarded-For for the access log: comma-separated "
                             "IPs or networks, * for any (default $FORWARDED_ALLOW_IPS or 127.0.0.1,::1; "
                             "a --uds peer is always trusted)")
    parser.add_argument("--directory", default=".", help="directory served under /files/ (default: .)")
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes sharing the port (default: number of CPUs)")
    parser.add_argument("--no-supervisor", action="store_true",
                        help="serve in this one process, for a manager that restarts it (systemd's "
                             "Restart=, a container): no worker restart, no SIGHUP reload; half the memory")
    parser.add_argument("--access-log", nargs="?", const="-", default=None, metavar="FILE",
                        help="log each response in the Common Log Format to FILE (default: stderr)")
    parser.add_argument("--cache-control", default=None, metavar="VALUE",
                        help="Cache-Control of file responses (200, 206, 304), e.g. 'max-age=3600' (default: none)")
    parser.add_argument("--graceful-timeout", type=float, default=30.0,
                        help="seconds a stopping worker lets in-flight responses finish (default 30)")
    limits = parser.add_argument_group("limits and timeouts (see core/limits.py)")
    for name, default in DEFAULT_LIMITS._asdict().items():
        limits.add_argument("--" + name.replace("_", "-"), type=type(default), default=default,
                            metavar="SECONDS" if isinstance(default, float) else "N",
                            help=f"default {default}")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be 0..65535, not {args.port}")
    if args.workers is not None and args.workers < 1:
        parser.error(f"--workers must be at least 1, not {args.workers}")
    if args.no_supervisor and args.workers not in (None, 1):
        parser.error(f"--no-supervisor serves in one process: --workers {args.workers} needs the supervisor")
    if args.workers is None:
        args.workers = 1 if args.no_supervisor else os.cpu_count() or 1
    if not os.path.isdir(args.directory):
        parser.error(f"--directory {args.directory!r} is not a directory")
    # RFC 9110 §5.5: a field value is visible ASCII, spaces and tabs (no CR or LF to split the head).
    if args.cache_control is not None and not (args.cache_control.strip(" \t") and args.cache_control.isascii()
                                               and args.cache_control.replace("\t", " ").isprintable()):
        parser.error(f"--cache-control {args.cache_control!r} is not a field value (visible ASCII)")
    if args.cache_control is not None:
        args.cache_control = args.cache_control.strip(" \t")
    if args.fd is not None and args.uds is not None:
        parser.error("--fd and --uds both name the listener: give one")
    if args.fd is not None and args.fd < 0:
        parser.error(f"--fd must be a descriptor number, not {args.fd}")
    try:
        args.forwarded_allow_ips = parse_allow_ips(args.forwarded_allow_ips)
    except ValueError as error:
        parser.error(f"--forwarded-allow-ips: {error}")
    values = {name: getattr(args, name) for name in Limits._fields}
    bad = [name for name, value in values.items() if value <= 0]
    if bad:
        parser.error(f"--{bad[0].replace('_', '-')} must be positive")
    args.limits = Limits(**values)
    return args


def main(argv=None):
    args = parse_args(argv)
    from .listeners import StartupError
    from .server import serve_forever
    try:
        return serve_forever(args)
    except StartupError as error:
        print(f"{program_name()}: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        where = args.uds if args.uds is not None else f"{args.host}:{args.port}"
        print(f"{program_name()}: cannot listen on {where}: {error.strerror or error}", file=sys.stderr)
        return 1
