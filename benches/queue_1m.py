import threading, queue, time
q = queue.Queue()
def produce(n):
    for i in range(n): q.put(i)
t0 = time.perf_counter()
p = threading.Thread(target=produce, args=(1000000,)); p.start()
total = 0
for i in range(1000000): total += q.get()
p.join()
print("elapsed", time.perf_counter() - t0)
