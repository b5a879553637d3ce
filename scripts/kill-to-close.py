#!/usr/bin/env python3
"""How long after kill -9 of a server its client sees the connection end (EOF).

Starts one server on 127.0.77.9 (a lone `streamfarm node`, .NET or the native executable, or
`nats-server`), subscribes one raw client to x, optionally runs a publisher (a separate process,
one PUB every 1 ms), kills the server with SIGKILL and times the client's EOF. Prints the median,
p90, min and max over the runs, and the server's thread count just before the kill.

  scripts/kill-to-close.py [--runs 8] [--load] [--server dotnet|native|nats] [--alternate]

--alternate runs every kind of server in turn, one kill each, --runs times (so load changes on a
shared machine fall on all of them alike).
"""
import argparse, os, signal, socket, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
DLL = os.path.join(HERE, "..", "src", "StreamFarm.Cli", "bin", "Release", "net10.0", "streamfarm.dll")
NATIVE = os.path.join(HERE, "..", "artifacts", "native", "streamfarm")
ADDR = ("127.0.77.9", 17777)
PUBLISHER = """import socket, sys, time
nats = sys.argv[1] == "nats"
s = socket.create_connection(("127.0.77.9", 17777))
s.sendall(b"CONNECT {}\\r\\n" if nats else b"HELLO 1 client=p\\n"); n = 0
while True:
    n += 1
    line = b"n=%d" % n
    try: s.sendall(b"PUB x %d\\r\\n%s\\r\\n" % (len(line), line) if nats else b"PUB /x " + line + b"\\n")
    except OSError: break
    time.sleep(0.001)
"""

def command(kind):
    node = ["node", "--id", "k1", "--listen", ADDR[0], "--tcp-port", str(ADDR[1]), "--http-port", "17778", "--log-level", "Warning"]
    if kind == "dotnet":
        return ["dotnet", DLL] + node
    if kind == "native":
        if not os.access(NATIVE, os.X_OK):
            sys.exit(f"{NATIVE} is missing: run scripts/native.sh")
        return [NATIVE] + node
    return ["nats-server", "-a", ADDR[0], "-p", str(ADDR[1])]

def threads(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return -1

def once(kind, load):
    server = subprocess.Popen(command(kind), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            client = socket.create_connection(ADDR, timeout=1)
            break
        except OSError:
            time.sleep(0.05)
    else:
        server.kill()
        sys.exit(f"the {kind} server did not start")
    client.sendall(b"CONNECT {}\r\nSUB x 1\r\n" if kind == "nats" else b"HELLO 1 client=k\nSUB /x\n")
    pub = subprocess.Popen([sys.executable, "-c", PUBLISHER, kind]) if load else None
    time.sleep(1.3)
    client.setblocking(False)
    try:
        while client.recv(1 << 20):
            pass
    except BlockingIOError:
        pass
    client.setblocking(True)
    count = threads(server.pid)
    start = time.perf_counter()
    os.kill(server.pid, signal.SIGKILL)
    try:
        while client.recv(1 << 20):
            pass
    except OSError:
        pass
    ms = (time.perf_counter() - start) * 1000
    server.wait()
    if pub:
        pub.kill()
        pub.wait()
    client.close()
    time.sleep(0.3)
    return ms, count

def main():
    a = argparse.ArgumentParser()
    a.add_argument("--runs", type=int, default=8)
    a.add_argument("--load", action="store_true", help="a publisher at 1 kHz while the client subscribes")
    a.add_argument("--server", choices=["dotnet", "native", "nats"], default="dotnet")
    a.add_argument("--alternate", action="store_true", help="every kind of server in turn")
    o = a.parse_args()
    kinds = ["dotnet", "native", "nats"] if o.alternate else [o.server]
    times = {k: [] for k in kinds}
    counts = {k: [] for k in kinds}
    for _ in range(o.runs):
        for k in kinds:
            ms, n = once(k, o.load)
            times[k].append(ms)
            counts[k].append(n)
    for k in kinds:
        t = sorted(times[k])
        print(f"{k}: kill -9 -> client EOF ({'1 kHz publisher' if o.load else 'idle'}), {o.runs} runs: "
              f"median {t[len(t) // 2]:.2f} ms, p90 {t[min(len(t) - 1, int(len(t) * 0.9))]:.2f}, min {t[0]:.2f}, max {t[-1]:.2f}; "
              f"threads {min(counts[k])}-{max(counts[k])}")

if __name__ == "__main__":
    main()
