import threading, time
def noop(): pass
t0 = time.perf_counter()
ts = [threading.Thread(target=noop) for _ in range(10000)]
for t in ts: t.start()
for t in ts: t.join()
print("elapsed", time.perf_counter() - t0)
