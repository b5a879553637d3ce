#!/usr/bin/env bash
# A single kill -9 and restart with a large table (docs/benchmarks.md, "Standby copies"): three
# `streamfarm node` processes on 127.0.61.2-4, N subjects (default 100,000) published at s2, s3
# killed with kill -9 and started again; the route counters of each server before and after, and
# at the end every subject's value read back through s4 (IMAGE with the right value, or lost:
# NOT_FOUND). Run it with STREAMFARM_Farm__StandbyCopies=false to see the farm without standby
# copies. Needs a Release build (dotnet build -c Release StreamFarm.slnx), curl and python3.
set -uo pipefail
cd "$(dirname "$0")/.."
N=${N:-100000}
DLL=$PWD/src/StreamFarm.Cli/bin/Release/net10.0/streamfarm.dll
OUT=$(mktemp -d /tmp/streamfarm-restart-check.XXXXXX)
KEY=$(python3 -c "import base64;print(base64.b64encode(bytes(range(120,152))).decode())")
P=127.0.61
start() { dotnet $DLL node --id s$1 --listen $P.$1 --tcp-port 7400 --http-port 7480 --gossip-port 17401 --seeds $P.2:17401,$P.3:17401 --gossip-key $KEY --preset local --farm-name scale --log-level Warning > $OUT/s$1.log 2>&1 & echo $! > $OUT/s$1.pid; }
metrics() { for n in 2 3 4; do echo -n "s$n: "; curl -s http://$P.$n:7480/metrics | grep -E "^streamfarm_(subjects|route_standby_asked_total|route_slow_closes_total|route_dropped_total|route_seeds_total|route_seeds_lost_total|routes_up) " | tr '\n' ' '; echo; done; }
for n in 2 3 4; do start $n; done
sleep 6
metrics
python3 - <<PY
import socket,time
s=socket.create_connection(("$P.2",7400))
s.sendall(b"HELLO 1 client=scale\n")
buf=[]
N=$N
t=time.time()
for i in range(0,N,1000):
    s.sendall(b"".join(b"PUB /scale/%d v=%d w=abcdefgh\n"%(j,j) for j in range(i,min(N,i+1000))))
s.sendall(b"PING done\n")
data=b""
while b"PONG done" not in data:
    data+=s.recv(65536)
    data=data[-100000:]
print("published",N,"in",round(time.time()-t,1),"s")
s.close()
PY
sleep 5; echo "--- after publishing"; metrics
kill -9 $(cat $OUT/s3.pid); sleep 3; echo "--- s3 killed"; metrics
start 3; sleep 12; echo "--- s3 restarted"; metrics
sleep 10; echo "--- 10 s later"; metrics
python3 - <<PY
import socket
s=socket.create_connection(("$P.4",7400))
s.sendall(b"HELLO 1 client=check\n")
N=$N
images=0;nf=0;wrong=0;stale=0
buf=b""
s.settimeout(60)
for i in range(0,N,1000):
    batch=range(i,min(N,i+1000))
    s.sendall(b"SUB "+b" ".join(b"/scale/%d"%j for j in batch)+b"\n")
    got=0
    while got<len(batch):
        d=s.recv(1<<20)
        buf+=d
        lines=buf.split(b"\n"); buf=lines.pop()
        for l in lines:
            if l.startswith(b"IMAGE "):
                got+=1
                p=l.split(b" "); subj=int(p[1].split(b"/")[2])
                if (b" v=%d "%subj) in l+b" ": images+=1
                else: wrong+=1
            elif l.startswith(b"STATUS") and b"NOT_FOUND" in l: nf+=1; got+=1
            elif l.startswith(b"STATUS") and b"STALE" in l: stale+=1
    s.sendall(b"UNSUB "+b" ".join(b"/scale/%d"%j for j in batch)+b"\n")
print("check at s4: images",images,"wrong",wrong,"not_found",nf,"stale",stale)
PY
for n in 2 3 4; do kill $(cat $OUT/s$n.pid); done
echo "logs in $OUT"
