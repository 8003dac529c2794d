import multiprocessing as mp
def noop(): pass
if __name__ == "__main__":
    mp.set_start_method("fork")
    for _ in range(200):
        p = mp.Process(target=noop); p.start(); p.join()
    print("done")
