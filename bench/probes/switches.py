#!/usr/bin/env python3
"""Context switches and server CPU per message at a low, fixed rate (docs/benchmarks.md,
"Low rates: where a message's CPU goes").

One publisher and one subscriber on one subject, over raw sockets, RTTP or NATS; the server's
voluntary and involuntary context switches (summed over /proc/PID/task/*/status) and its CPU
(utime + stime of /proc/PID/stat) are read before and after the measured seconds and divided by
the messages published. Only the server's own counters are read, so the client (this script)
may be slow; it only has to keep the rate.

  switches.py HOST PORT SERVER_PID RATE SECONDS rttp|nats
"""
import glob
import os
import socket
import sys
import threading
import time

host, port, pid, rate, secs, proto = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
tick = os.sysconf("SC_CLK_TCK")


def connect(name):
    s = socket.create_connection((host, port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(f"HELLO 1 client={name}\n".encode() if proto == "rttp" else b'CONNECT {"verbose":false}\r\n')
    return s


def message(i):
    if proto == "rttp":
        return f"PUB /probe/x v={i:08d}\n".encode()
    return f"PUB probe.x 10\r\nv={i:08d}\r\n".encode()


def switches():
    voluntary = involuntary = 0
    for path in glob.glob(f"/proc/{pid}/task/*/status"):
        try:
            for line in open(path):
                if line.startswith("voluntary_ctxt_switches"):
                    voluntary += int(line.split()[1])
                elif line.startswith("nonvoluntary_ctxt_switches"):
                    involuntary += int(line.split()[1])
        except FileNotFoundError:
            pass  # a thread ended while we read
    return voluntary, involuntary


def cpu_seconds():
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / tick


def drain(s):
    # the server's keep-alive PINGs to the publisher: read and dropped
    s.setblocking(False)
    try:
        while s.recv(65536):
            pass
    except BlockingIOError:
        pass
    s.setblocking(True)


subscriber = connect("probe-sub")
subscriber.sendall(b"SUB /probe/x\n" if proto == "rttp" else b"SUB probe.x 1\r\n")
publisher = connect("probe-pub")
received = [0]


def read():
    marker = b"UPDATE" if proto == "rttp" else b"MSG "
    while True:
        data = subscriber.recv(65536)
        if not data:
            break
        received[0] += data.count(marker)


threading.Thread(target=read, daemon=True).start()
for i in range(500):  # warm-up, not counted
    publisher.sendall(message(i))
    time.sleep(1 / rate)
time.sleep(0.5)
got0, (v0, n0), c0 = received[0], switches(), cpu_seconds()
start, sent = time.time(), 0
while time.time() - start < secs:
    publisher.sendall(message(sent))
    sent += 1
    time.sleep(1 / rate)
    if sent % 200 == 0:
        drain(publisher)
time.sleep(0.3)
(v1, n1), c1 = switches(), cpu_seconds()
print(f"published {sent} delivered {received[0] - got0} voluntary/msg {(v1 - v0) / sent:.2f} "
      f"involuntary/msg {(n1 - n0) / sent:.2f} server µs/msg {(c1 - c0) * 1e6 / sent:.1f}")
