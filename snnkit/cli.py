"""The ``snnkit`` command.

    snnkit info                      backend, why it was chosen, GPU name, library versions
    snnkit tour [--only 01 02]       execute every notebook headless, write build/tour/index.html
    snnkit reproduce --list | NAME [-p key value ...]
                                     run a paper reproduction (see snnkit.reproduce)
    snnkit sweep --list | NAME [--grid key=v1,v2,...]... [--scheduler ADDRESS] [--workers N] [--out DIR]
                                     run a reproduction over a grid on Dask (see snnkit.sweep)
    snnkit bench NAME [args]         run benchmarks/bench_NAME.py (GPU machine)
"""
from __future__ import annotations

import argparse
import runpy
import sys
from pathlib import Path


def _info(args) -> int:
    import platform
    from . import backend, __version__
    try:
        inf = backend.info()
    except backend.BackendUnavailable as e:
        print(f"backend error: {e}", file=sys.stderr)
        return 2
    print(f"snnkit     {__version__}")
    print(f"python     {platform.python_version()}")
    print(f"backend    {inf['backend']}")
    print(f"why        {inf['reason']}")
    print(f"device     {inf['device']}")
    for k in ("numpy", "cupy", "cuda_runtime", "compute_capability"):
        if k in inf:
            print(f"{k:<10} {inf[k]}")
    for mod in ("scipy", "plotly", "brian2", "papermill", "ipywidgets"):
        try:
            m = __import__(mod)
            print(f"{mod:<10} {getattr(m, '__version__', '?')}")
        except ImportError:
            print(f"{mod:<10} (not installed)")
    return 0


def _tour(args) -> int:
    from .tour import run_tour
    kw = {} if args.timeout is None else {"timeout": args.timeout or None}
    runs = run_tour(Path(args.out), only=args.only or None, **kw)
    index = Path(args.out) / "index.html"
    failed = [r for r in runs if not r.ok]
    print(f"[tour] {len(runs) - len(failed)}/{len(runs)} notebooks ran; index: {index}")
    for r in failed:
        print(f"[tour] FAILED {r.name}: {r.error.splitlines()[0] if r.error else ''}", file=sys.stderr)
    return 1 if failed or not runs else 0


def _reproduce(argv) -> int:
    try:
        from . import reproduce
    except ImportError as e:
        print(f"reproductions are not available in this installation: {e}", file=sys.stderr)
        return 2
    return int(reproduce.main(argv) or 0)


def _sweep(argv) -> int:
    from . import sweep
    return int(sweep.main(argv) or 0)


def _bench(args) -> int:
    path = Path(__file__).resolve().parent.parent / "benchmarks" / f"bench_{args.name}.py"
    if not path.exists():
        avail = sorted(p.stem[6:] for p in path.parent.glob("bench_*.py"))
        print(f"no benchmark {args.name!r}; available: {', '.join(avail)}", file=sys.stderr)
        return 2
    sys.argv = [str(path)] + args.rest
    runpy.run_path(str(path), run_name="__main__")
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "reproduce":        # its own argparse, with -p key value pairs
        return _reproduce(argv[1:])
    if argv and argv[0] == "sweep":            # its own argparse, like reproduce
        return _sweep(argv[1:])
    p = argparse.ArgumentParser(prog="snnkit", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("info", help="backend, device and versions").set_defaults(fn=_info)
    t = sub.add_parser("tour", help="execute all notebooks and render build/tour/index.html")
    t.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "build" / "tour"))
    t.add_argument("--only", nargs="*", help="run only notebooks whose file name contains one of these")
    t.add_argument("--timeout", type=float, default=None,
                   help="seconds per notebook before it is marked failed (default 1200; 0: no limit)")
    t.set_defaults(fn=_tour)
    sub.add_parser("reproduce", help="paper reproductions (snnkit reproduce --list)")
    sub.add_parser("sweep", help="a reproduction over a parameter grid on Dask (snnkit sweep --list)")
    b = sub.add_parser("bench", help="run a benchmark from benchmarks/")
    b.add_argument("name")
    b.add_argument("rest", nargs=argparse.REMAINDER)
    b.set_defaults(fn=_bench)
    args = p.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
