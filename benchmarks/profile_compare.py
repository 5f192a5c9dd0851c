import sys, os, numpy as np, pyengine, onnxruntime as ort
sys.path.insert(0, "benchmarks")
from models import collect
from pyengine.runtime import profiling
name = sys.argv[1]; thr = int(sys.argv[2]) if len(sys.argv) > 2 else 1
model, feeds, big = collect([name])[name]
rng = np.random.default_rng(0)
data = model.SerializeToString()
so = pyengine.SessionOptions(); so.intra_op_num_threads = thr; so.enable_profiling = True; so.profile_file_prefix = "/tmp/pe"
s = pyengine.InferenceSession(data, so)
f = feeds(model, 1, rng) if callable(feeds) else feeds
for _ in range(3): s.run(None, f)
s.end_profiling()
s2 = pyengine.InferenceSession(data, so)
for _ in range(10): s2.run(None, f)
path = s2.end_profiling()
o = ort.SessionOptions(); o.intra_op_num_threads = thr; o.enable_profiling = True; o.profile_file_prefix = "/tmp/ort"
t = ort.InferenceSession(data, o, providers=["CPUExecutionProvider"])
for _ in range(13): t.run(None, f)
opath = t.end_profiling()
ev = profiling.load(opath)
# drop the first 3 runs of ort
runs = [e for e in ev if e.get("name") == "model_run"]
cut = runs[3]["ts"] if len(runs) > 3 else 0
ev = [e for e in ev if e["ts"] >= cut]
for label, sm in (("pyengine", profiling.summarize(profiling.load(path))), ("ort", profiling.summarize(ev))):
    print(label, "runs", sm["runs"], "per run ms", sm["run_us"] / max(sm["runs"], 1) / 1000)
    tot = sum(r[1] for r in sm["ops"])
    for op, us, n in sm["ops"][:12]:
        print(f"   {op:28s} {us / sm['runs'] / 1000:8.3f} ms  {n // sm['runs']:4d}/run")
    print("   node total", tot / sm["runs"] / 1000)
ours = {n: us for n, op, us, c in profiling.summarize(profiling.load(path))["nodes"]}
theirs = {n: us for n, op, us, c in profiling.summarize(ev)["nodes"]}
rows = []
for n, us in ours.items():
    m = [k for k in theirs if k == n or k.startswith(n.split("+")[0])]
    t = theirs.get(m[0]) if m else None
    rows.append((us / 10, t / 10 if t else None, n, m[0] if m else ""))
rows.sort(key=lambda r: -(r[0] - (r[1] or 0)))
for r in rows[:25]:
    print(f"{r[0]:9.1f} {r[1] if r[1] is None else round(r[1],1)!s:>9} {r[2][:60]}  | {r[3][:40]}")
print("-----")
def seq(evs, nruns):
    first = [e for e in evs if e.get("cat") == "Node" and e["args"].get("op_name") == "Conv"]
    n = len(first) // nruns
    tot = [0.0] * n
    names = [e["name"] for e in first[:n]]
    for i, e in enumerate(first):
        tot[i % n] += e["dur"] / nruns
    return names, tot
on, ot = seq(sorted(profiling.load(path), key=lambda e: e["ts"]), 10)
tn, tt = seq(sorted(ev, key=lambda e: e["ts"]), 10)
print(len(on), len(tn))
for i in range(min(len(on), len(tn))):
    print(f"{i:3d} {ot[i]:8.1f} {tt[i]:8.1f} {ot[i]/tt[i]:5.2f} {on[i][:20]} {tn[i][:30]}")
