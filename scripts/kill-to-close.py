#!/usr/bin/env python3
"""How long after kill -9 of a streamfarm node its client sees the connection end (EOF).

Starts `streamfarm node` on 127.0.77.9, subscribes one raw client to /x, optionally runs a
publisher (a separate process, PUB every 1 ms), kills the node with SIGKILL and times the
client's EOF. Prints median, min and max over the runs.

  scripts/kill-to-close.py [--runs 8] [--load]
"""
import argparse, os, signal, socket, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
DLL = os.path.join(HERE, "..", "src", "StreamFarm.Cli", "bin", "Release", "net10.0", "streamfarm.dll")
ADDR = ("127.0.77.9", 17777)
PUBLISHER = """import socket, time
s = socket.create_connection(("127.0.77.9", 17777)); s.sendall(b"HELLO 1 client=p\\n"); n = 0
while True:
    n += 1
    try: s.sendall(b"PUB /x n=%d\\n" % n)
    except OSError: break
    time.sleep(0.001)
"""

def main():
    a = argparse.ArgumentParser()
    a.add_argument("--runs", type=int, default=8)
    a.add_argument("--load", action="store_true", help="a publisher at 1 kHz while the client subscribes")
    o = a.parse_args()
    times = []
    for _ in range(o.runs):
        node = subprocess.Popen(["dotnet", DLL, "node", "--id", "k1", "--listen", ADDR[0], "--tcp-port", str(ADDR[1]),
                                 "--http-port", "17778", "--log-level", "Warning"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                client = socket.create_connection(ADDR, timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        else:
            sys.exit("the node did not start")
        client.sendall(b"HELLO 1 client=k\nSUB /x\n")
        pub = subprocess.Popen([sys.executable, "-c", PUBLISHER]) if o.load else None
        time.sleep(1.3)
        client.setblocking(False)
        try:
            while client.recv(1 << 20):
                pass
        except BlockingIOError:
            pass
        client.setblocking(True)
        start = time.perf_counter()
        os.kill(node.pid, signal.SIGKILL)
        try:
            while client.recv(1 << 20):
                pass
        except OSError:
            pass
        times.append((time.perf_counter() - start) * 1000)
        node.wait()
        if pub:
            pub.kill()
            pub.wait()
        client.close()
        time.sleep(0.3)
    times.sort()
    print(f"kill -9 -> client EOF ({'1 kHz publisher' if o.load else 'idle'}), {o.runs} runs: median {times[len(times) // 2]:.2f} ms, min {times[0]:.2f}, max {times[-1]:.2f}")

if __name__ == "__main__":
    main()
