# The loop of loop_sum, after taking its bound from a queue (Python has no
# select; queue.get stands in for the case that fires).
import queue
import time


def select_loop(n):
    q = queue.Queue()
    q.put(n)
    total = 0
    m = q.get()
    for i in range(m):
        total = total + i
    return total


t0 = time.perf_counter()
result = select_loop(5000000)
elapsed = time.perf_counter() - t0
assert result == 12499997500000, "select_loop gave " + str(result)
print("elapsed", elapsed)
