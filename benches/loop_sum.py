# A function summing `for i in range(5000000)` into a local variable.
import time


def loop_sum(n):
    total = 0
    for i in range(n):
        total = total + i
    return total


t0 = time.perf_counter()
result = loop_sum(5000000)
elapsed = time.perf_counter() - t0
assert result == 12499997500000, "loop_sum gave " + str(result)
print("elapsed", elapsed)
