import multiprocessing as mp, time
def work(m, n, out):
    count = 0
    for _ in range(n):
        with m: count += 1
    out.put(count)
if __name__ == "__main__":
    mp.set_start_method("fork")
    m, out = mp.Lock(), mp.Queue()
    t0 = time.perf_counter()
    ps = [mp.Process(target=work, args=(m, 50000, out)) for _ in range(2)]
    for p in ps: p.start()
    assert out.get() + out.get() == 100000
    for p in ps: p.join()
    print("elapsed", time.perf_counter() - t0)
