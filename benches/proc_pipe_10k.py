import multiprocessing as mp, time
def pong(c, n):
    for _ in range(n): c.send(c.recv())
if __name__ == "__main__":
    mp.set_start_method("fork")
    a, b = mp.Pipe()
    t0 = time.perf_counter()
    p = mp.Process(target=pong, args=(b, 10000)); p.start()
    for i in range(10000):
        a.send(i); a.recv()
    p.join()
    print("elapsed", time.perf_counter() - t0)
