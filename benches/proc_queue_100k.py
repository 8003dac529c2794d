import multiprocessing as mp, time
def consume(q, n, out):
    total = 0
    for _ in range(n): total += q.get()
    out.put(total)
if __name__ == "__main__":
    mp.set_start_method("fork")
    q, out = mp.Queue(), mp.Queue()
    t0 = time.perf_counter()
    c = mp.Process(target=consume, args=(q, 100000, out)); c.start()
    for i in range(100000): q.put(i)
    assert out.get() == 4999950000
    c.join()
    print("elapsed", time.perf_counter() - t0)
