# Recursive fib(30) inside a function: calls, compares, integer adds.
import time


def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


t0 = time.perf_counter()
result = fib(30)
elapsed = time.perf_counter() - t0
assert result == 832040, "fib(30) gave " + str(result)
print("elapsed", elapsed)
