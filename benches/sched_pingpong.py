import threading, queue
ping = queue.Queue(); pong = queue.Queue()
def echo(n):
    for i in range(n): pong.put(ping.get())
t = threading.Thread(target=echo, args=(100000,)); t.start()
for i in range(100000):
    ping.put(i); pong.get()
t.join()
