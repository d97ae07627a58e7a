#!/usr/bin/env python3
"""What durability costs a port file: the plugin's write path (temp file,
write, fsync, rename, fsync of the directory) against write + rename, and
unlink + directory fsync against unlink, on the filesystem of DIR.

Usage: scripts/fsync-cost.py [DIR] [REPS]   (DIR default /var/tmp, REPS 500)
DIR must be on the disk under test (not tmpfs: fsync is free there). The
variants run interleaved so both see the same disk state; a ~400-byte body
like a port file's. Prints median, p90 and mean per variant, in ms.
"""
import os
import statistics
import sys
import tempfile
import time

base = sys.argv[1] if len(sys.argv) > 1 else "/var/tmp"
reps = int(sys.argv[2]) if len(sys.argv) > 2 else 500
body = (b'{"time":"2026-01-01 00:00:00","vm-id":"0123456789abcdef","vm-uuid":'
        b'"0b1c2d3e-0000-4000-8000-00000000000a","vm-name":"k8s__default__pod",'
        b'"host-ifname":"tap0123456789ab","vm-ifname":"eth0","vm-namespace":'
        b'"/var/run/netns/cni-0","vn-id":"0b1c2d3e-0000-4000-8000-00000000000b",'
        b'"vmi-id":"0b1c2d3e-0000-4000-8000-00000000000c","type":"veth"}').ljust(400)


def write(d, name, durable):
    tmp = os.path.join(d, ".tmp-" + name)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    os.write(fd, body)
    if durable:
        os.fsync(fd)
    os.close(fd)
    os.rename(tmp, os.path.join(d, name))
    if durable:
        dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
        os.fsync(dfd)
        os.close(dfd)


def unlink(d, name, durable):
    os.unlink(os.path.join(d, name))
    if durable:
        dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
        os.fsync(dfd)
        os.close(dfd)


def main():
    d = tempfile.mkdtemp(prefix="fsync-cost-", dir=base)
    t = {k: [] for k in ("write+fsync+rename+dirfsync", "write+rename",
                         "unlink+dirfsync", "unlink")}
    try:
        for i in range(reps):
            for durable in ((True, False) if i % 2 == 0 else (False, True)):
                name = f"{i}-{int(durable)}"
                s = time.perf_counter()
                write(d, name, durable)
                t["write+fsync+rename+dirfsync" if durable else "write+rename"].append(
                    time.perf_counter() - s)
            for durable in ((True, False) if i % 2 == 0 else (False, True)):
                s = time.perf_counter()
                unlink(d, f"{i}-{int(durable)}", durable)
                t["unlink+dirfsync" if durable else "unlink"].append(time.perf_counter() - s)
    finally:
        for f in os.listdir(d):
            os.unlink(os.path.join(d, f))
        os.rmdir(d)
    st = os.statvfs(base)
    print(f"{reps} repetitions in {base} ({st.f_bsize}-byte blocks)")
    for k, v in t.items():
        v.sort()
        print(f"  {k:30} median {v[len(v) // 2] * 1e3:7.3f} ms  "
              f"p90 {v[int(len(v) * 0.9)] * 1e3:7.3f} ms  mean {statistics.mean(v) * 1e3:7.3f} ms")


if __name__ == "__main__":
    main()
