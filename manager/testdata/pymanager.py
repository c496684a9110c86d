"""Times Python's multiprocessing Manager().dict() for BenchmarkVsPython.

Usage: python3 pymanager.py N get|set
Prints the operations per second of N gets or sets of one key through a
proxy, from one client process, as redis-benchmark's keys and values.
"""
import sys
import time
from multiprocessing import Manager

KEY, VALUE = "key:__rand_int__", "xxx"


def main():
    n, op = int(sys.argv[1]), sys.argv[2]
    with Manager() as m:
        d = m.dict()
        d[KEY] = VALUE
        start = time.perf_counter()
        if op == "get":
            for _ in range(n):
                d[KEY]
        else:
            for _ in range(n):
                d[KEY] = VALUE
        print(n / (time.perf_counter() - start))


if __name__ == "__main__":
    main()
