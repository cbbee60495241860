"""Run one mergexp model script and report its XIR experiment.

Started by packages/model/src/python.ts as
    python3 -I -S -B run_model.py --filename NAME --result-fd 3 --memory-mb N --cpu-seconds N [--no-sockets] [--threads]
with the script's source on stdin. The report (JSON) goes to the result file
descriptor, never to stdout: whatever the script prints stays its own output.

Containment here is defence in depth; the caller adds the rest when it runs
as root (fresh network and mount namespaces, a root of its own, user nobody:
see confine.sh):
  - resource limits: address space, CPU time, file size, open files, no new
    processes (with --threads, given where the run has a uid of its own whose
    task limit the caller set, the script may start threads under that limit);
  - an audit hook: no processes, no ctypes, files read only from the standard
    library, this package and the working directory, written only in the latter;
    with --no-sockets also no sockets (when there is no network namespace).
"""

import argparse
import builtins
import json
import os
import resource
import signal
import sys
import linecache

HERE = os.path.dirname(os.path.realpath(__file__))
sys.path.insert(0, HERE)


def main():
    # The caller interrupts a script that runs too long; held back until the
    # script runs, an early interrupt still names a line of the script.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    ap = argparse.ArgumentParser()
    ap.add_argument("--filename", required=True)
    ap.add_argument("--result-fd", type=int, required=True)
    ap.add_argument("--memory-mb", type=int, required=True)
    ap.add_argument("--cpu-seconds", type=int, required=True)
    ap.add_argument("--no-sockets", action="store_true")
    # Published scripts start threads (a daemon churning nodes); the caller
    # passes this where the run's uid is its own and its task limit is set.
    ap.add_argument("--threads", action="store_true")
    args = ap.parse_args()

    result = os.fdopen(args.result_fd, "w", encoding="utf-8")
    os.set_inheritable(args.result_fd, False)
    source = sys.stdin.buffer.read()
    sys.stdin.close()

    # Import everything the report needs before the limits and the hook apply.
    import mergexp
    from mergexp import network, source as mxsource
    from mergexp.errors import MergexpError, Sandbox

    limit(args.memory_mb, args.cpu_seconds, args.threads)
    install_hook(os.getcwd(), args.no_sockets, Sandbox)

    filename = args.filename
    report = run(source, filename, mergexp, network, MergexpError)
    report["warnings"] = [
        {"message": m, "line": loc[0] if loc else None, "column": loc[1] if loc else None}
        for m, loc in mxsource.WARNINGS
    ]
    # A script can leave stdout buffered; flush it before the report so that
    # the caller sees both.
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:
        pass
    json.dump(report, result, allow_nan=False)
    result.close()
    # Threads the script left running (a churn loop) must not hold the run
    # until its time limit: the report is out, so end here.
    os._exit(0)


def limit(memory_mb, cpu_seconds, threads):
    mem = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024 * 1024, 16 * 1024 * 1024))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    if threads:
        return  # the caller's RLIMIT_NPROC for this run's own uid holds; processes stay refused by the hook
    try:
        resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    except (ValueError, OSError):
        pass


_PROCESS_EVENTS = {
    "os.system",
    "os.exec",
    "os.fork",
    "os.forkpty",
    "os.posix_spawn",
    "os.spawn",
    "os.kill",
    "os.killpg",
    "subprocess.Popen",
    "ctypes.dlopen",
    "ctypes.dlsym",
    "ctypes.cdata",
    # Root (hooks sandbox) could raise its own limits again.
    "resource.setrlimit",
    "resource.prlimit",
    # Ways to reach this hook's own state and loosen it.
    "gc.get_objects",
    "gc.get_referrers",
    "gc.get_referents",
    "sys.settrace",
    "sys.setprofile",
    "sys._current_frames",
}
_WRITE_EVENTS = {
    "os.remove",
    "os.rename",
    "os.rmdir",
    "os.mkdir",
    "os.chmod",
    "os.chown",
    "os.symlink",
    "os.link",
    "os.truncate",
    "os.utime",
    "shutil.rmtree",
    "shutil.copyfile",
    "shutil.move",
}
_LIST_EVENTS = {"os.listdir", "os.scandir", "os.chdir", "glob.glob"}
_BLOCKED_MODULES = {"_ctypes", "ctypes", "_posixsubprocess", "_socket", "socket", "ssl", "_ssl"}


def install_hook(workdir, no_sockets, Sandbox):
    roots = tuple(
        sorted(
            {os.path.realpath(p) for p in sys.path if p and os.path.isdir(p)}
            | {HERE, os.path.realpath(os.path.dirname(os.__file__))}
        )
    )
    work = os.path.realpath(workdir)
    blocked_modules = frozenset(_BLOCKED_MODULES if no_sockets else _BLOCKED_MODULES - {"_socket", "socket", "ssl", "_ssl"})

    def inside(path, dirs):
        if isinstance(path, int):
            return True  # an already open descriptor
        try:
            p = os.path.realpath(os.fsdecode(path))
        except (TypeError, ValueError):
            return False
        return any(p == d or p.startswith(d + os.sep) for d in dirs)

    def hook(event, args):
        if event in _PROCESS_EVENTS:
            raise Sandbox(
                "mergexp models may not start processes, load native code, change limits or inspect the runner (%s)"
                % event
            )
        if event == "import" and args[0] in blocked_modules:
            what = "open network connections" if "socket" in args[0] or "ssl" in args[0] else "load native code"
            raise Sandbox("mergexp models may not %s (import %s)" % (what, args[0]))
        if no_sockets and event.startswith("socket."):
            raise Sandbox("mergexp models run without network access (%s)" % event)
        if event == "open":
            path, mode = args[0], args[1]
            writing = isinstance(mode, str) and any(ch in mode for ch in "wax+")
            flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
            if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND):
                writing = True
            if writing and not inside(path, (work,)):
                raise Sandbox("mergexp models may write files only in their working directory, not %r" % (path,))
            if not writing and not inside(path, roots + (work, "/dev/null", "/dev/urandom")):
                raise Sandbox("mergexp models may not read %r" % (path,))
        elif event in _WRITE_EVENTS or event in _LIST_EVENTS:
            path = args[0] if args else None
            allowed = (work,) if event in _WRITE_EVENTS or event == "os.chdir" else roots + (work,)
            if path is not None and not inside(path, allowed):
                raise Sandbox("mergexp models may not touch %r (%s)" % (path, event))

    sys.addaudithook(hook)


def run(source, filename, mergexp, network, MergexpError):
    # Tracebacks the script prints itself show its lines without reading the file.
    text = source.decode("utf-8", "replace")
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    try:
        code = compile(source, filename, "exec", dont_inherit=True)
    except SyntaxError as e:
        return failure("python-syntax", "SyntaxError: %s" % e.msg, e.lineno, e.offset)
    except ValueError as e:  # e.g. null bytes in the source
        return failure("python-syntax", "%s: %s" % (type(e).__name__, e), None, None)

    scope = {"__name__": "__main__", "__file__": filename, "__builtins__": builtins}
    sys.argv = [filename]
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        exec(code, scope)
    except SystemExit as e:
        if e.code not in (None, 0):
            return located(e, filename, "python-exit", "the script called sys.exit(%r)" % (e.code,))
    except KeyboardInterrupt as e:
        return located(e, filename, "python-interrupted", "the script was interrupted")
    except MemoryError as e:
        return located(e, filename, "python-memory", "MemoryError: the script ran out of memory")
    except MergexpError as e:
        return with_v0(located(e, filename, e.code, str(e)), source)
    except BaseException as e:  # noqa: BLE001 - the user's exception, whatever it is
        return with_v0(located(e, filename, "python-exception", describe(e, mergexp, scope)), source)

    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    net = network.chosen.get("network")
    if net is None:
        nets = [v for v in scope.values() if isinstance(v, network.Network)]
        hint = " (e.g. experiment(%s))" % next(k for k, v in scope.items() if v is nets[0]) if nets else ""
        return failure(
            "mergexp-no-experiment",
            "the script never called experiment(net); end it with experiment(<your Network>)%s" % hint,
            None,
            None,
        )
    try:
        xir = net.xir()
    except MergexpError as e:
        return located(e, filename, e.code, str(e))
    return {
        "ok": True,
        "experiment": xir,
        "sourceMap": {k: list(v) for k, v in net.source_map().items()},
    }


# Modules of the v0 prototype's README (stochastic links, mobility) that no mergexp release shipped.
_PROTOTYPE_MODULES = ("stochastic", "mobile")


def describe(e, mergexp, scope):
    text = "%s: %s" % (type(e).__name__, e)
    name = getattr(e, "name", None)
    if isinstance(e, ModuleNotFoundError) and name:
        return text + missing_module(name, mergexp, scope)
    if isinstance(e, NameError) and name in mergexp.V0_REPLACEMENTS:
        text += " (%s is the mergexp v0 API; in v1 use %s)" % (name, mergexp.V0_REPLACEMENTS[name])
    elif isinstance(e, NameError) and name in mergexp.__all__:
        home = v0_home(name)
        if home:
            # A v0 script imports names one by one: say which line it lacks.
            text += " (import it: 'from %s import %s', or 'from mergexp import *')" % (home, name)
        else:
            text += " (did you forget 'from mergexp import *'?)"
    elif isinstance(e, RuntimeError) and "can't start new thread" in str(e):
        text += " (this sandbox runs models without threads; the namespace sandbox, as root, allows a few)"
    elif isinstance(e, OSError) and e.errno in (101, 111, 113, 99):
        text += " (mergexp models run without network access)"
    return text


_V0_MODULES = ("mergexp.net", "mergexp.unit", "mergexp.machine")


def v0_home(name):
    """The v0 module a v0 script would import `name` from, when the script already uses v0 modules."""
    if not any(m in sys.modules for m in _V0_MODULES):
        return None
    import importlib

    for m in _V0_MODULES:
        if hasattr(importlib.import_module(m), name):
            return m
    return None


def missing_module(name, mergexp, scope):
    """Why an import of `name` failed, in mergexp's terms ("" when it is not about mergexp)."""
    root, _, rest = name.partition(".")
    if scope.get(root) is mergexp:
        # `import mergexp as mx; from mx.unit import gb`: an alias is not a module name.
        return (
            " (%s is the script's name for mergexp, not a module: an import statement takes module names;"
            " write mergexp where it says %s, e.g. 'from mergexp.unit import gb')" % (root, root)
        )
    if root != "mergexp":
        return ""
    if rest.partition(".")[0] in _PROTOTYPE_MODULES:
        return " (stochastic and mobility models were never part of mergexp; XIR 1.0 has no place for them)"
    return " (mergexp's modules are mergexp itself, 'from mergexp import *', and for v0 scripts mergexp.unit, mergexp.net, mergexp.machine)"


def located(e, filename, code, message):
    loc = getattr(e, "location", None)
    if loc:
        return failure(code, message, loc[0], loc[1])
    line = column = None
    tb = e.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line, column = tb.tb_lineno, None
            try:
                pos = list(tb.tb_frame.f_code.co_positions())[tb.tb_lasti // 2]
                if pos[0] is not None:
                    line = pos[0]
                column = pos[2] + 1 if pos[2] is not None else None
            except (AttributeError, IndexError):
                pass
        tb = tb.tb_next
    return failure(code, message, line, column)


# v0 idioms a static look at the script can see that v1 cannot express (the
# rest of v0 compiles as its v1 translation: mergexp/v0.py).
_V0_IMPORTS = {}
_V0_ATTRIBUTES = {
    "Storage": "nothing: experiment storage is not part of mergexp v1",
    "mount": "nothing: experiment storage is not part of mergexp v1",
}
_V0_NAMES = {"Storage": "nothing: experiment storage is not part of mergexp v1"}
_V0_BARE = {}


def v0_findings(source):
    """Every v0 idiom in the script: (line, column, message)."""
    import ast

    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    assigned = {t.id for t in ast.walk(tree) if isinstance(t, ast.Name) and isinstance(t.ctx, ast.Store)}
    out = []

    def add(node, what, use):
        out.append((node.lineno, node.col_offset + 1, "%s is the mergexp v0 API; in v1 use %s" % (what, use)))

    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom) and n.module in _V0_IMPORTS:
            add(n, "from %s import ..." % n.module, _V0_IMPORTS[n.module])
        elif isinstance(n, ast.Attribute) and n.attr in _V0_ATTRIBUTES:
            text = ast.unparse(n)
            add(n, text if len(text) <= 40 else "." + n.attr, _V0_ATTRIBUTES[n.attr])
        elif isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id in _V0_NAMES and n.id not in assigned:
            add(n, n.id, _V0_NAMES[n.id])
        elif isinstance(n, ast.Compare):
            for side in [n.left] + list(n.comparators):
                if isinstance(side, ast.Name) and side.id in _V0_BARE:
                    add(side, "comparing %s itself" % side.id, _V0_BARE[side.id])
    return sorted(set(out))


def with_v0(report, source):
    """A v0 failure also lists the script's other v0 idioms, so one run shows them all."""
    err = report["error"]
    v0 = err["code"] == "mergexp-v0-api" or "mergexp v0 API" in err["message"]
    if v0:
        report["related"] = [
            {"code": "mergexp-v0-api", "message": m, "line": line, "column": col}
            for line, col, m in v0_findings(source)
            if line != err["line"]
        ]
    return report


def failure(code, message, line, column):
    return {"ok": False, "error": {"code": code, "message": message, "line": line, "column": column}}


if __name__ == "__main__":
    main()
