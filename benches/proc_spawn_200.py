import multiprocessing as mp, time
def noop(): pass
if __name__ == "__main__":
    mp.set_start_method("fork")
    t0 = time.perf_counter()
    for _ in range(200):
        p = mp.Process(target=noop); p.start(); p.join()
    print("elapsed", time.perf_counter() - t0)
