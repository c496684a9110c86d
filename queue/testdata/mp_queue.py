"""Python's multiprocessing figures for the queue benchmarks' side-by-side rows.

    python3 mp_queue.py queue N   # N small ints, one producer process -> this one
    python3 mp_queue.py pipe N    # N round trips of 64 bytes to an echo process

Prints one line: the seconds the measured part took. Standard library only.
"""
import multiprocessing as mp
import sys
import time


def produce(q, n):
    for i in range(n):
        q.put(i)


def echo(conn, other):
    other.close()  # the parent's end, inherited: EOF comes once the parent closes its own
    while True:
        try:
            m = conn.recv()
        except EOFError:
            return
        conn.send(m)


def main():
    what, n = sys.argv[1], int(sys.argv[2])
    mp.set_start_method("fork")
    if what == "queue":
        q = mp.Queue(1024)
        p = mp.Process(target=produce, args=(q, n + 1))
        p.start()
        q.get()  # the producer is up
        t0 = time.perf_counter()
        for _ in range(n):
            q.get()
        d = time.perf_counter() - t0
        p.join()
    elif what == "pipe":
        mine, theirs = mp.Pipe()
        p = mp.Process(target=echo, args=(theirs, mine))
        p.start()
        theirs.close()
        m = bytes(64)
        mine.send(m)
        mine.recv()  # the echo process is up
        t0 = time.perf_counter()
        for _ in range(n):
            mine.send(m)
            mine.recv()
        d = time.perf_counter() - t0
        mine.close()
        p.join()
    else:
        sys.exit("unknown workload " + what)
    print(d)


if __name__ == "__main__":
    main()
