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
metrics() { for n in 2 3 4; do echo -n "s$n: "; curl -s http://$P.$n:7480/metrics | grep -E "^streamfarm_(subjects|route_standby_asked_total|route_slow_closes_total|route_dropped_total|route_seeds_total|route_seeds_parked_total|route_seeds_lost_total|route_publications_parked_total|routes_up) |^streamfarm_route_dropped_reasons_total\{.* [1-9]" | tr '\n' ' '; echo; done; }
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
    d=s.recv(65536)
    if not d:
        raise SystemExit("the publisher's connection was closed by s2 (%r)" % data[-300:])
    data+=d
    data=data[-100000:]
print("published",N,"in",round(time.time()-t,1),"s")
s.close()
PY
sleep 5; echo "--- after publishing"; metrics
kill -9 $(cat $OUT/s3.pid); sleep 3; echo "--- s3 killed"; metrics
start 3
# Every 5 s until the farm settles (every route up, and no route closed, no server stalled, no
# subject count changed for 30 s) or SETTLE_LIMIT seconds pass: per server, subjects, routes up,
# route closes (silent/slow), stalls and pauses of the process itself, GC pause seconds, and the
# thread pool's queue.
t0=$(date +%s); last=""; quiet_since=$t0
while :; do
  sleep 5
  now=$(date +%s); line=""; sig=""; allup=1
  for n in 2 3 4; do
    m=$(curl -s -m 4 http://$P.$n:7480/metrics)
    v() { echo "$m" | awk -v k="$1" '$1==k {printf "%d", $2}'; }
    line="$line s$n[subj=$(v streamfarm_subjects) up=$(v streamfarm_routes_up) silent=$(v streamfarm_route_silent_closes_total) slow=$(v streamfarm_route_slow_closes_total) stalls=$(v streamfarm_stalls_total) pauses=$(v streamfarm_pauses_total) gc=$(echo "$m" | awk '$1=="dotnet_gc_pause_seconds_total" {printf "%.1f", $2}')s q=$(v dotnet_threadpool_queue_length)]"
    [ "$(v streamfarm_routes_up)" = 2 ] || allup=0
    sig="$sig $(v streamfarm_subjects)/$(v streamfarm_routes_up)/$(v streamfarm_route_silent_closes_total)/$(v streamfarm_route_slow_closes_total)/$(v streamfarm_stalls_total)"
  done
  echo "+$((now-t0))s$line"
  [ "$sig" != "$last" ] && quiet_since=$now
  last=$sig
  if [ $((now-quiet_since)) -ge 30 ] && [ $allup = 1 ]; then echo "--- settled $((quiet_since-t0)) s after the restart"; break; fi
  if [ $((now-t0)) -ge ${SETTLE_LIMIT:-600} ]; then echo "--- NOT settled after ${SETTLE_LIMIT:-600} s"; break; fi
done
metrics
python3 - <<PY
import socket,time
N=$N
def connect():
    s=socket.create_connection(("$P.4",7400))
    s.settimeout(60)
    s.sendall(b"HELLO 1 client=check\n")
    return s
s=connect()
images=0;nf=0;wrong=0;stale=0;reconnects=0;bad=[]
for i in range(0,N,1000):
    batch=range(i,min(N,i+1000))
    while True:
        s.sendall(b"SUB "+b" ".join(b"/scale/%d"%j for j in batch)+b"\n")
        got=0;bi=bw=bn=bs=0;buf=b""
        while got<len(batch):
            d=s.recv(1<<20)
            if not d: break
            buf+=d
            lines=buf.split(b"\n"); buf=lines.pop()
            for l in lines:
                if l.startswith(b"IMAGE "):
                    got+=1
                    p=l.split(b" "); subj=int(p[1].split(b"/")[2])
                    if (b" v=%d "%subj) in l+b" ": bi+=1
                    else:
                        bw+=1
                        if len(bad)<20: bad.append(l[:160].decode(errors="replace"))
                elif l.startswith(b"STATUS") and b"NOT_FOUND" in l:
                    bn+=1; got+=1
                    if len(bad)<20: bad.append(l[:160].decode(errors="replace"))
                elif l.startswith(b"STATUS") and b"STALE" in l: bs+=1
                elif l.startswith(b"PING"): s.sendall(b"PONG"+l[4:]+b"\n") # else the server's idle timeout closes a checker waiting for a batch
        if got==len(batch): break
        # the server closed the connection (BYE PAUSED after a stall of its own): again, afresh
        reconnects+=1; s.close(); time.sleep(1); s=connect()
    images+=bi;wrong+=bw;nf+=bn;stale+=bs
    s.sendall(b"UNSUB "+b" ".join(b"/scale/%d"%j for j in batch)+b"\n")
print("check at s4: images",images,"wrong",wrong,"not_found",nf,"stale",stale,"reconnects",reconnects)
for l in bad: print("  not right:",l)
PY
for n in 2 3 4; do kill $(cat $OUT/s$n.pid); done
echo "logs in $OUT"
