import threading, time
def work(n):
    t = 0
    for i in range(n):
        t = t + i % 7
    return t
t0 = time.perf_counter()
ts = [threading.Thread(target=work, args=(3000000,)) for _ in range(2)]
for t in ts: t.start()
for t in ts: t.join()
print("elapsed", time.perf_counter() - t0)
