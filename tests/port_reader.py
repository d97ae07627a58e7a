#!/usr/bin/env python3
"""Independent reader of the plugin's port files, following docs/agent-api.md §7.

Written from the contract, not from store.rs: it loads a config directory the
way `ReloadAllPorts` does and checks what the agent and the operator need.

Usage: port_reader.py <config-dir>
Prints {"ports": [{"dir": ..., "file": ..., <json>}, ...], "errors": [...]}
as JSON and exits 1 when there is any error.

Agent rules implemented:
* every subdirectory of <config-dir> (any name), one level deep;
* inside, every regular file whose name *starts* with 36 UUID characters
  that parse to a non-nil UUID is loaded (stream extraction: `<uuid>.tmp`
  would be loaded too, so such a name is an error for us);
* the content must be a JSON object with string members vm-uuid,
  host-ifname, vm-name, vn-uuid, vmi-uuid; vm-id, vm-ifname, vm-namespace,
  when present, must be strings.
Plugin rules checked on top: file name is exactly the lower-case vmi-uuid,
vm-name equals the directory name, files 0600, directories 0700.
"""

import json
import os
import re
import stat
import sys

UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
NIL = "00000000-0000-0000-0000-000000000000"
REQUIRED = ["vm-uuid", "host-ifname", "vm-name", "vn-uuid", "vmi-uuid"]
OPTIONAL = ["vm-id", "vm-ifname", "vm-namespace"]


def agent_loads(name):
    m = UUID.match(name)
    return m is not None and m.group(0).lower() != NIL


def main(config_dir):
    ports, errors = [], []
    names = sorted(os.listdir(config_dir)) if os.path.isdir(config_dir) else []
    for d in names:
        dpath = os.path.join(config_dir, d)
        st = os.lstat(dpath)
        if not stat.S_ISDIR(st.st_mode):
            continue
        if stat.S_IMODE(st.st_mode) != 0o700:
            errors.append(f"{dpath}: mode {oct(stat.S_IMODE(st.st_mode))}, want 0o700")
        for f in sorted(os.listdir(dpath)):
            fpath = os.path.join(dpath, f)
            fst = os.lstat(fpath)
            if not stat.S_ISREG(fst.st_mode) or not agent_loads(f):
                continue
            if len(f) != 36 or f != f.lower():
                errors.append(f"{fpath}: the agent would load this name; want exactly a lower-case UUID")
            if stat.S_IMODE(fst.st_mode) != 0o600:
                errors.append(f"{fpath}: mode {oct(stat.S_IMODE(fst.st_mode))}, want 0o600")
            try:
                with open(fpath, "rb") as fh:
                    doc = json.loads(fh.read().decode("utf-8"))
            except Exception as e:  # the agent would skip it with a trace
                errors.append(f"{fpath}: not JSON: {e}")
                continue
            if not isinstance(doc, dict):
                errors.append(f"{fpath}: not a JSON object")
                continue
            bad = [k for k in REQUIRED if not isinstance(doc.get(k), str)]
            bad += [k for k in OPTIONAL if k in doc and not isinstance(doc[k], str)]
            if bad:
                errors.append(f"{fpath}: missing or non-string {bad}")
                continue
            for k in ["vm-uuid", "vn-uuid", "vmi-uuid"]:
                if not UUID.fullmatch(doc[k]) or doc[k].lower() == NIL:
                    errors.append(f"{fpath}: {k} {doc[k]!r} is not a non-nil UUID")
            if doc["vmi-uuid"].lower() != f.lower():
                errors.append(f"{fpath}: vmi-uuid {doc['vmi-uuid']} differs from the file name")
            if doc["vm-name"] != d:
                errors.append(f"{fpath}: vm-name {doc['vm-name']} differs from the directory")
            ports.append(dict(doc, dir=d, file=f))
    json.dump({"ports": ports, "errors": errors}, sys.stdout)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
