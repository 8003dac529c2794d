import threading
def worker(i, out):
    print("worker", i, "started"); out[i] = i * 10
out = [None] * 3
ts = [threading.Thread(target=worker, args=(i, out), name="worker-%d" % i) for i in range(3)]
for t in ts: t.start()
for t in ts: t.join()
print("results", out)
print("all done:", not any(t.is_alive() for t in ts))
