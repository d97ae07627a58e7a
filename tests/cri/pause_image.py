"""Packs a static binary as a one-layer image in the docker-archive format
(what `ctr images import` and `docker load` read): the layer tar, the image
config naming the binary as entrypoint, and manifest.json with the tag.

usage: pause_image.py BINARY OUT.tar REFERENCE
"""
import hashlib
import io
import json
import sys
import tarfile


def add(tar, name, data, mode=0o644):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))


def main():
    binary, out, ref = sys.argv[1:4]
    with open(binary, "rb") as f:
        exe = f.read()
    layer_buf = io.BytesIO()
    with tarfile.open(fileobj=layer_buf, mode="w", format=tarfile.PAX_FORMAT) as layer:
        add(layer, "pause", exe, 0o755)
    layer_bytes = layer_buf.getvalue()
    diff_id = hashlib.sha256(layer_bytes).hexdigest()
    config = json.dumps({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": ["/pause"]},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diff_id]},
    }).encode()
    config_id = hashlib.sha256(config).hexdigest()
    manifest = json.dumps([{
        "Config": config_id + ".json",
        "RepoTags": [ref],
        "Layers": [diff_id + "/layer.tar"],
    }]).encode()
    with tarfile.open(out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        add(tar, diff_id + "/layer.tar", layer_bytes)
        add(tar, config_id + ".json", config)
        add(tar, "manifest.json", manifest)


if __name__ == "__main__":
    main()
