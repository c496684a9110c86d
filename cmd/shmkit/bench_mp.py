"""Python's multiprocessing workloads, for the rows `shmkit bench` shows
beside its own. The command embeds this file, writes it to a temporary
file and runs it; it uses the standard library only.

    python3 bench_mp.py WORKLOAD PROCS N RUNS

runs the workload RUNS times with PROCS processes, each doing N operations,
and prints one line per run: the seconds its measured part took. Every run
starts its processes (fork) and holds them at a barrier; the clock runs
from their release until the last has done its share, so that process
start-up is not counted, as in `shmkit bench`. The pools are created, and
warmed up, once for all the runs. Each run checks its results and exits
with an error if one is wrong.

When its standard input reaches end of file (the command that started it
has died), the script removes its temporary directory and kills its
process group, its workers included.

WORKLOAD is one of:

    value     with v.get_lock(): v.value += 1, on one Value('q')
    lock      lock.acquire(); c.value += 1; lock.release(), one Lock, c a RawValue
    queue     PROCS producers put N ints each and PROCS consumers get N each,
              through one Queue(1024)
    pipe      PROCS pairs, each a one-way Pipe: send N ints, recv N
    map       Pool(PROCS).map(square, range(PROCS*N)), default chunks
    map1      the same with chunksize=1
    submit    ProcessPoolExecutor(PROCS): PROCS*N submits, then each result
    dict.get  PROCS client processes: d[key] on one Manager().dict()
    dict.set  PROCS client processes: d[key] = value
"""
import concurrent.futures as cf
import multiprocessing as mp
import os
import shutil
import signal
import sys
import threading
import time

KEY, VALUE = "key:__rand_int__", "xxx"  # redis-benchmark's
TIMEOUT = 600  # seconds any wait may take before the run fails


def square(x):
    return x * x


def value_body(v, n):
    for _ in range(n):
        with v.get_lock():
            v.value += 1


def lock_body(lock, c, n):
    for _ in range(n):
        lock.acquire()
        c.value += 1
        lock.release()


def put_body(q, n):
    for i in range(n):
        q.put(i)


def get_body(q, n):
    for _ in range(n):
        q.get(timeout=TIMEOUT)


def send_body(conn, n):
    for i in range(n):
        conn.send(i)


def recv_body(conn, n):
    for i in range(n):
        if not conn.poll(TIMEOUT):
            raise RuntimeError("pipe: no message within %d s" % TIMEOUT)
        if conn.recv() != i:
            raise RuntimeError("pipe: message %d out of order" % i)


def dict_get_body(d, n):
    for _ in range(n):
        if d[KEY] != VALUE:
            raise RuntimeError("dict: wrong value")


def dict_set_body(d, n):
    for _ in range(n):
        d[KEY] = VALUE


def gated(start, done, body, args):
    start.wait(TIMEOUT)
    body(*args)
    done.wait(TIMEOUT)


def timed_processes(jobs):
    """Starts a process per (body, args) job, releases them together and
    returns the seconds until the last has finished its body."""
    start, done = mp.Barrier(len(jobs) + 1), mp.Barrier(len(jobs) + 1)
    ps = [mp.Process(target=gated, args=(start, done, body, args), daemon=True) for body, args in jobs]
    for p in ps:
        p.start()
    try:
        start.wait(TIMEOUT)
        t0 = time.perf_counter()
        done.wait(TIMEOUT)
        elapsed = time.perf_counter() - t0
    except threading.BrokenBarrierError:
        sys.exit("a worker failed or took longer than %d s" % TIMEOUT)
    for p in ps:
        p.join(TIMEOUT)
        if p.exitcode != 0:
            sys.exit("a worker exited with status %s" % p.exitcode)
    return elapsed


def run_value(procs, n):
    v = mp.Value("q", 0)
    d = timed_processes([(value_body, (v, n))] * procs)
    check(v.value, procs * n, "value")
    return d


def run_lock(procs, n):
    lock, c = mp.Lock(), mp.RawValue("q", 0)
    d = timed_processes([(lock_body, (lock, c, n))] * procs)
    check(c.value, procs * n, "counter under the lock")
    return d


def run_queue(procs, n):
    q = mp.Queue(1024)
    return timed_processes([(put_body, (q, n))] * procs + [(get_body, (q, n))] * procs)


def run_pipe(procs, n):
    jobs = []
    for _ in range(procs):
        recv_end, send_end = mp.Pipe(duplex=False)
        jobs += [(send_body, (send_end, n)), (recv_body, (recv_end, n))]
    return timed_processes(jobs)


def check(got, want, what):
    if got != want:
        sys.exit("%s: got %r, want %r" % (what, got, want))


def pooled(what, procs, n, runs):
    """Times the pool workloads: one pool for all runs."""
    xs = list(range(procs * n))
    want = [x * x for x in xs]
    out = []
    if what == "submit":
        with cf.ProcessPoolExecutor(procs, mp_context=mp.get_context("fork")) as ex:
            ex.submit(square, 1).result()
            for _ in range(runs):
                t0 = time.perf_counter()
                fs = [ex.submit(square, x) for x in xs]
                got = [f.result(TIMEOUT) for f in fs]
                out.append(time.perf_counter() - t0)
                check(got, want, "results")
        return out
    with mp.Pool(procs) as p:
        p.map(square, range(10))  # the workers are up
        for _ in range(runs):
            t0 = time.perf_counter()
            if what == "map":
                got = p.map_async(square, xs).get(TIMEOUT)
            else:
                got = p.map_async(square, xs, chunksize=1).get(TIMEOUT)
            out.append(time.perf_counter() - t0)
            check(got, want, "results")
    return out


def managed(what, procs, n, runs):
    """Times the manager workloads: one manager for all runs."""
    body = dict_get_body if what == "dict.get" else dict_set_body
    with mp.Manager() as m:
        d = m.dict()
        d[KEY] = VALUE
        return [timed_processes([(body, (d, n))] * procs) for _ in range(runs)]


def watch_stdin():
    """Once standard input ends, removes this script's temporary directory
    and kills the process group, if this process leads the group (as the
    command starts it: it ends the group itself after each run)."""
    # os.read takes no lock that a forked child could inherit held, as
    # sys.stdin's buffer would (multiprocessing closes stdin in children).
    try:
        while os.read(0, 4096):
            pass
    finally:
        if os.getpgrp() == os.getpid():
            here = os.path.dirname(os.path.abspath(__file__))
            if os.path.basename(here).startswith("shmkit-bench-"):
                shutil.rmtree(here, ignore_errors=True)
            os.killpg(0, signal.SIGKILL)


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    what = sys.argv[1]
    try:
        procs, n, runs = (int(a) for a in sys.argv[2:])
    except ValueError:
        sys.exit("PROCS, N and RUNS must be integers")
    if procs < 1 or n < 1 or runs < 1:
        sys.exit("PROCS, N and RUNS must be positive")
    mp.set_start_method("fork")
    threading.Thread(target=watch_stdin, daemon=True).start()
    simple = {"value": run_value, "lock": run_lock, "queue": run_queue, "pipe": run_pipe}
    if what in simple:
        times = [simple[what](procs, n) for _ in range(runs)]
    elif what in ("map", "map1", "submit"):
        times = pooled(what, procs, n, runs)
    elif what in ("dict.get", "dict.set"):
        times = managed(what, procs, n, runs)
    else:
        sys.exit("unknown workload " + what)
    for t in times:
        print(repr(t))


if __name__ == "__main__":
    main()
