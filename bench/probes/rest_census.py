#!/usr/bin/env python3
"""What a farm at rest wakes up for (docs/benchmarks.md, "What a member at rest wakes up for").

Starts N servers (127.0.77.30 on, gossip 17401, RTTP 7400, preset from $PRESET, default lan),
waits WARM seconds, then reads every thread's context switches and CPU ticks
(/proc/<pid>/task/*/status and stat) at the start and the end of a WIN-second window, and prints
them per thread name, per member and second. The build is $SF (default: the repository's Release
build run by dotnet). Usage: rest_census.py [N=10] [WARM=30] [WIN=60]
"""
import os, subprocess, sys, time, collections, signal
N=int(sys.argv[1]) if len(sys.argv)>1 else 10
WARM=float(sys.argv[2]) if len(sys.argv)>2 else 30
WIN=float(sys.argv[3]) if len(sys.argv)>3 else 60
repo=os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
exe=os.environ.get("SF", f"dotnet {repo}/src/StreamFarm.Cli/bin/Release/net10.0/streamfarm.dll").split()
ips=[f"127.0.77.{30+i}" for i in range(N)]
seeds=",".join(f"{ip}:17401" for ip in ips)
procs=[]
for i,ip in enumerate(ips):
    args=exe+["node","--id",f"s{i+1}","--listen",ip,"--tcp-port","7400","--http-port","0","--gossip-port","17401","--seeds",seeds,"--gossip-key","cmVzdGNlbnN1c2tleXJlc3RjZW5zdXNrZXkxMjM0NTY=","--preset",os.environ.get("PRESET","lan"),"--log-level","Warning"]
    procs.append(subprocess.Popen(args,stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL))
def snap():
    d={}
    for p in procs:
        for t in os.listdir(f"/proc/{p.pid}/task"):
            try:
                st=open(f"/proc/{p.pid}/task/{t}/stat").read()
                name=st[st.index('(')+1:st.rindex(')')]
                f=st[st.rindex(')')+2:].split()
                cpu=int(f[11])+int(f[12])
                s=open(f"/proc/{p.pid}/task/{t}/status").read().split("\n")
                v=[int(l.split()[1]) for l in s if l.startswith("voluntary_ctxt")][0]
                nv=[int(l.split()[1]) for l in s if l.startswith("nonvoluntary_ctxt")][0]
                d[(p.pid,t)]=(name,cpu,v,nv)
            except Exception: pass
    return d
try:
    time.sleep(WARM)
    a=snap(); time.sleep(WIN); b=snap()
    agg=collections.defaultdict(lambda:[0,0,0,0])
    for k,(name,cpu,v,nv) in b.items():
        c0,v0,nv0=(a[k][1],a[k][2],a[k][3]) if k in a else (0,0,0)
        g=agg[name]; g[0]+=cpu-c0; g[1]+=v-v0; g[2]+=nv-nv0; g[3]+=1
    tot=[0,0,0]
    print(f"{'thread':20} {'threads':>7} {'cpu ms/s/member':>16} {'vol/s/member':>13} {'invol/s/member':>15}")
    for name,g in sorted(agg.items(),key=lambda x:-x[1][1]):
        if g[1]==0 and g[0]==0: continue
        print(f"{name:20} {g[3]/N:7.1f} {g[0]*10/WIN/N:16.2f} {g[1]/WIN/N:13.1f} {g[2]/WIN/N:15.1f}")
        tot[0]+=g[0]; tot[1]+=g[1]; tot[2]+=g[2]
    print(f"{'TOTAL':20} {'':7} {tot[0]*10/WIN/N:16.2f} {tot[1]/WIN/N:13.1f} {tot[2]/WIN/N:15.1f}")
finally:
    for p in procs: p.send_signal(signal.SIGKILL)
