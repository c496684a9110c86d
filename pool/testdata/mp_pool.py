"""Python's multiprocessing figures for the pool benchmarks' side-by-side rows.

    python3 mp_pool.py map N        # Pool(2).map(square, range(N)), default chunks
    python3 mp_pool.py map1 N       # the same with chunksize=1
    python3 mp_pool.py submit N     # ProcessPoolExecutor(2): N submits, then every result
    python3 mp_pool.py start N      # Pool(2) creation until the first result, N times

Prints one line: the seconds the measured part took (for start, the median
of the N runs). Standard library only.
"""
import concurrent.futures as cf
import multiprocessing as mp
import statistics
import sys
import time


def square(x):
    return x * x


def main():
    what, n = sys.argv[1], int(sys.argv[2])
    mp.set_start_method("fork")
    if what in ("map", "map1"):
        with mp.Pool(2) as p:
            p.map(square, range(10))  # the workers are up
            t0 = time.perf_counter()
            if what == "map":
                p.map(square, range(n))
            else:
                p.map(square, range(n), chunksize=1)
            d = time.perf_counter() - t0
    elif what == "submit":
        with cf.ProcessPoolExecutor(2) as ex:
            ex.submit(square, 1).result()
            t0 = time.perf_counter()
            fs = [ex.submit(square, i) for i in range(n)]
            for f in fs:
                f.result()
            d = time.perf_counter() - t0
    elif what == "start":
        ds = []
        for _ in range(n):
            t0 = time.perf_counter()
            with mp.Pool(2) as p:
                p.apply(square, (3,))
                ds.append(time.perf_counter() - t0)
        d = statistics.median(ds)
    else:
        sys.exit("unknown workload " + what)
    print(d)


if __name__ == "__main__":
    main()
