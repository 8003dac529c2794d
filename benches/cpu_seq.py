import time
def work(n):
    t = 0
    for i in range(n):
        t = t + i % 7
    return t
t0 = time.perf_counter()
work(3000000); work(3000000)
print("elapsed", time.perf_counter() - t0)
