"""Command line of ``python -m bench``: choose scenarios and servers, run, write results.

    python -m bench                  # T1–T5, every available server, 3 repetitions (~20–25 min)
    python -m bench --quick          # T1, T2 and T5, core vs node-cached vs nginx-tuned, short runs (~3 min)
    python -m bench --full           # adds T3 with 500 clients and T4 with a 50 MB file
    python -m bench --workers 2      # core and nginx with 2 workers (not pinned on 2 CPUs)
    python -m bench --baseline PATH  # adds core-baseline: core from the checkout at PATH
    python -m bench --baseline-ref main   # the same from a temporary worktree of a git ref
    python -m bench parser [...]     # bench.parser_bench.main(argv)
    python -m bench soak [...]       # bench.soak.main(argv)
    python -m bench integrity [...]  # bench.integrity.main(argv)
    python -m bench seed-scale [...] # bench.seed_scale.main(argv): 50 MB to 500 and 4,000 clients
    python -m bench syscalls [...]   # bench.syscalls.main(argv): perf trace of one T1 request, per syscall
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from pathlib import Path

from . import baseline, chart, files, launch, loadgen, machine, report, runner, scenarios, servers

SUBCOMMANDS = {"parser": "parser_bench", "soak": "soak", "integrity": "integrity", "seed-scale": "seed_scale",
               "syscalls": "syscalls"}  # fmt: skip
QUICK_SCENARIOS = ["T1", "T2", "T5"]
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark core against the stages, Node.js and nginx (scenarios T1–T5), "
        "or run a sub-benchmark: 'python -m bench parser ...', 'python -m bench soak ...', "
        "'python -m bench integrity ...', 'python -m bench seed-scale ...', 'python -m bench syscalls ...'.",
    )
    p.add_argument("--quick", action="store_true",
                   help="T1, T2 and T5 only, core vs node-cached vs nginx-tuned, 3 s runs (about 3 min)")
    p.add_argument("--full", action="store_true", help="also T3 with 500 clients and T4 with a 50 MB file (long)")
    p.add_argument("--scenarios", help="comma-separated scenario ids (default: T1,T2,T3,T4,T5)")
    p.add_argument("--servers", help=f"comma-separated server names (known: {', '.join(servers.SPECS)}; "
                   f"with --baseline or --baseline-ref also {', '.join(baseline.CHECKOUT_SERVERS)})")  # fmt: skip
    checkout = p.add_mutually_exclusive_group()
    checkout.add_argument("--baseline", metavar="PATH",
                          help="also run core from the checkout at PATH as server core-baseline, interleaved "
                          "with the others, to compare two versions in one run: python -m core with cwd and "
                          "PYTHONPATH set to PATH, so PATH's own core and its in-place build (python setup.py "
                          "build_ext --inplace) are used; checked before the runs. Name core-py-baseline in "
                          "--servers for its pure-Python path")  # fmt: skip
    checkout.add_argument("--baseline-ref", metavar="REF",
                          help="like --baseline, for a git commit, branch or tag of this repository: checked "
                          "out into a temporary worktree (git worktree add --detach), built in place, removed "
                          "at the end")  # fmt: skip
    p.add_argument("--duration", type=float, help="seconds of measured load per run (default 8; --quick 3)")
    p.add_argument("--warmup", type=float, help="seconds of warm-up load before each run (default 2; 0 = none)")
    p.add_argument("--reps", type=int, default=3, help="interleaved repetitions (default 3)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SCEN.KEY=VALUE",
                   help="change one scenario parameter: size, clients (n or n:m:...), duration, warmup, timeout; "
                   "e.g. --set T1.clients=200 --set T4.size=50M")  # fmt: skip
    p.add_argument("--wrk-threads", type=int, default=1, help="wrk -t (default 1: one core for wrk, one for the server)")
    p.add_argument("--no-pin", action="store_true", help="do not pin the server to CPU 1 and wrk to CPU 0")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="core with N workers and nginx with N worker processes (default 1); Node.js, uvicorn "
                   "and the stages run as they are, one process. The server gets CPUs 1..N and wrk CPU 0 "
                   "when there are N+1 CPUs; with fewer nothing is pinned")  # fmt: skip
    p.add_argument("--rss-limit", type=float, metavar="MIB",
                   help="kill a server whose memory passes this (default: half of RAM)")  # fmt: skip
    p.add_argument("--out", default=DEFAULT_OUT, help="directory for results (default bench/results)")
    p.add_argument("--no-chart", action="store_true", help="skip the PNG chart")
    p.add_argument("--list", action="store_true", help="list scenarios and servers (with availability) and exit")
    return p


def _delegate(sub: str, argv: list[str]) -> int:
    module_name = f"bench.{SUBCOMMANDS[sub]}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        print(f"python -m bench {sub}: {module_name.replace('.', '/')}.py does not exist yet", file=sys.stderr)
        return 2
    return module.main(argv) or 0


def _split(text: str | None) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()] if text else []


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in SUBCOMMANDS:
        return _delegate(argv[0], argv[1:])
    args = build_parser().parse_args(argv)
    err = sys.stderr
    if args.workers < 1:
        print("python -m bench: --workers must be at least 1", file=err)
        return 2

    duration = args.duration if args.duration is not None else (3.0 if args.quick else 8.0)
    warmup = args.warmup if args.warmup is not None else 2.0
    table = scenarios.default_scenarios(duration, warmup, full=args.full)
    try:
        for text in args.overrides:
            scenarios.apply_override(table, text)
    except ValueError as exc:
        print(f"python -m bench: {exc}", file=err)
        return 2
    scenarios.finish(table)
    wanted_scenarios = _split(args.scenarios) or (QUICK_SCENARIOS if args.quick else list(table))
    wanted_servers = _split(args.servers) or (servers.QUICK_SERVERS if args.quick else servers.DEFAULT_SERVERS)
    known_servers = [*servers.SPECS, *baseline.CHECKOUT_SERVERS]
    unknown = [s for s in wanted_scenarios if s not in table] + [s for s in wanted_servers if s not in known_servers]
    if unknown:
        print(f"python -m bench: unknown scenario or server: {', '.join(unknown)} "
              f"(scenarios: {', '.join(table)}; servers: {', '.join(known_servers)})", file=err)  # fmt: skip
        return 2
    use_baseline = args.baseline is not None or args.baseline_ref is not None
    wanted_servers = with_baseline_servers(wanted_servers, use_baseline)
    if not use_baseline and set(wanted_servers) & set(baseline.CHECKOUT_SERVERS):
        print(f"python -m bench: {', '.join(baseline.CHECKOUT_SERVERS)} need --baseline PATH or --baseline-ref REF",
              file=err)  # fmt: skip
        return 2

    if args.list:
        for s in table.values():
            print(f"{s.id}: {s.title}: {s.file_name}, clients {':'.join(map(str, s.clients))}, "
                  f"{s.duration:g} s + {s.warmup:g} s warm-up, timeout {s.timeout:g} s")  # fmt: skip
        for name, spec in servers.SPECS.items():
            why = spec.unavailable()
            print(f"{name:<14} {spec.description}" + (f"  [skipped: {why}]" if why else ""))
        for name in baseline.CHECKOUT_SERVERS:
            print(f"{name:<14} core from another checkout (--baseline PATH or --baseline-ref REF)")
        return 0

    wrk = loadgen.find_wrk()
    if wrk is None:
        print("python -m bench: wrk not found; install it (apt-get install wrk)", file=err)
        return 2

    with contextlib.ExitStack() as cleanup:  # removes a --baseline-ref worktree however the run ends
        try:
            specs, baseline_info = prepare_baseline(args, wanted_servers, cleanup, err)
        except baseline.BaselineError as exc:
            print(f"python -m bench: {exc}", file=err)
            return 2
        cases = [case for sid in wanted_scenarios for case in table[sid].cases()]
        return _benchmark(args, argv, cases, [specs[name] for name in wanted_servers], baseline_info, wrk)


def with_baseline_servers(wanted: list[str], use_baseline: bool) -> list[str]:
    """``wanted`` with core-baseline added (right after core) when a baseline is given but not named."""
    if not use_baseline or set(wanted) & set(baseline.CHECKOUT_SERVERS):
        return wanted
    at = wanted.index("core") + 1 if "core" in wanted else 0
    return wanted[:at] + [baseline.COMPILED_SERVER] + wanted[at:]


def prepare_baseline(args: argparse.Namespace, wanted: list[str], cleanup: contextlib.ExitStack,
                     err) -> tuple[dict[str, servers.ServerSpec], dict | None]:  # fmt: skip
    """All server specs by name, with the baseline's if one is given; and what the report says about it.

    For --baseline-ref the worktree is entered on ``cleanup``, which removes it.  Each baseline
    server asked for is verified (see baseline.verify_checkout); BaselineError if one fails.
    """
    specs = dict(servers.SPECS)
    if args.baseline is None and args.baseline_ref is None:
        return specs, None
    if args.baseline_ref is not None:
        needs_build = baseline.COMPILED_SERVER in wanted
        checkout, commit = cleanup.enter_context(baseline.temporary_worktree(args.baseline_ref, build=needs_build,
                                                                             log=err))  # fmt: skip
        label = f"git {args.baseline_ref} ({commit[:10]})"
    else:
        checkout = Path(args.baseline).resolve()
        label = str(checkout)
    specs.update(baseline.server_specs(checkout, label))
    info = {"servers": [], "path": str(checkout), "ref": args.baseline_ref, "git": machine.git_revision(checkout)}
    for name in (n for n in baseline.CHECKOUT_SERVERS if n in wanted):
        found = baseline.verify_checkout(specs[name])
        for warning in found["warnings"]:
            print(f"warning: {name}: {warning}", file=err)
        compiled = found["compiled"] if name == baseline.COMPILED_SERVER else {}
        print(f"{name}: core from {found['core_file']}"
              + "".join(f", {m} from {Path(f).name}" for m, f in compiled.items() if f), file=err)  # fmt: skip
        info["servers"].append(name)
        info["core_file"] = found["core_file"]
        info.setdefault("compiled", {}).update(found["compiled"])
    return specs, info


def _benchmark(args: argparse.Namespace, argv: list[str], cases: list[scenarios.Case],
               wanted: list[servers.ServerSpec], baseline_info: dict | None, wrk: str) -> int:  # fmt: skip
    """Run ``cases`` against the ``wanted`` servers that can run here, write the results; the exit status."""
    err = sys.stderr
    chosen, skipped = [], {}
    for spec in wanted:
        why = spec.unavailable()
        if why:
            skipped[spec.name] = why
            print(f"skip {spec.name}: {why}", file=err)
        else:
            chosen.append(spec)
    if not chosen:
        print("python -m bench: no server available to benchmark", file=err)
        return 2

    info = machine.describe(wrk)
    rss_limit = args.rss_limit or info["mem_total_mib"] / 2 or 8192
    server_cpus, load_cpus = launch.cpu_plan(not args.no_pin, args.workers)
    pinned = server_cpus is not None
    per_run = {c.id: c.scenario.duration + (c.scenario.warmup if c.scenario.warmup >= 1 else 0) + 1.5 for c in cases}
    estimate = sum(per_run.values()) * args.reps * len(chosen)
    print(f"machine: {machine.one_line(info)}", file=err)
    nofile = launch.nofile_limit()
    if max(c.clients for c in cases) + 256 > nofile:
        print(f"warning: only {nofile} file descriptors per process; {max(c.clients for c in cases):,} clients "
              "need more (raise the hard limit: ulimit -Hn, or run as root)", file=err)  # fmt: skip
    for c in cases:
        s = c.scenario
        print(f"{c.id}: {s.file_name}, {c.clients:,} clients, {s.duration:g} s after {s.warmup:g} s warm-up, "
              f"wrk timeout {s.timeout:g} s", file=err)  # fmt: skip
    print(f"servers: {', '.join(s.name for s in chosen)}; {args.reps} repetitions; "
          f"about {estimate / 60:.0f} min", file=err)  # fmt: skip
    print(f"pinning: {report.pinning_text(pinned, args.workers, server_cpus, load_cpus)}", file=err)
    if args.workers > 1:
        as_is = [s.name for s in chosen if not s.scales_with_workers]
        print(f"--workers {args.workers}: " + ", ".join(s.name for s in chosen if s.scales_with_workers)
              + (f"; {', '.join(as_is)} run as they are (one process)" if as_is else ""), file=err)  # fmt: skip

    sizes = {s.file_name: s.size for s in (c.scenario for c in cases)}
    sizes[runner.PROBE_FILE] = 16
    files_dir = files.make_file_dir(sizes)
    plan = runner.Plan(cases, chosen, args.reps, files_dir, wrk, args.wrk_threads, pinned, rss_limit, err,
                       workers=args.workers)  # fmt: skip
    try:
        runs = runner.run_all(plan)
    except KeyboardInterrupt:
        print("interrupted: writing the runs so far", file=err)
        runs = plan.runs
    finally:
        files.remove_file_dir(files_dir)

    plan_info = {"reps": args.reps, "wrk_threads": args.wrk_threads, "pinned": pinned, "rss_limit_mib": rss_limit,
                 "quick": args.quick, "full": args.full, "workers": args.workers,
                 "server_cpus": sorted(server_cpus) if pinned else None,
                 "load_cpus": sorted(load_cpus) if pinned else None}  # fmt: skip
    doc = report.document(runs, cases, chosen, skipped, info, argv, plan_info, baseline_info)
    paths = report.write(doc, args.out)
    if args.no_chart:
        pass
    elif chart.available():
        paths["latest.png"] = chart.write(doc, os.path.join(args.out, "latest.png"))
    else:
        print("chart skipped: matplotlib is not installed (pip install matplotlib)", file=err)
    print(report.markdown(doc))
    print("wrote " + ", ".join(sorted(paths.values())), file=err)
    ok = any("error" not in r for r in runs)
    return 0 if ok else 1
