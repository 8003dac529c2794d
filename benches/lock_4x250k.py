import threading, time
m = threading.Lock()
n = 0
def bump(k):
    global n
    for i in range(k):
        with m:
            n += 1
t0 = time.perf_counter()
ts = [threading.Thread(target=bump, args=(250000,)) for _ in range(4)]
for t in ts: t.start()
for t in ts: t.join()
assert n == 1000000
print("elapsed", time.perf_counter() - t0)
