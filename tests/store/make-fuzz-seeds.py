#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_import (see fuzz_import.c for the format)."""
import io, json, os, sys, tarfile

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "fuzz-seeds")
os.makedirs(out, exist_ok=True)
SEP = "\n--\n"
M = "application/vnd.oci.image.manifest.v1+json"
config = {
    "architecture": "amd64", "os": "linux", "created": "2023-11-14T22:13:20Z",
    "config": {"Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo hi"], "Env": ["PATH=/bin"],
               "WorkingDir": "/", "User": "0:0", "Hostname": "h"},
    "dev.forge": {"container": {"memory": "256M", "cpus": 1.5, "pids": 256, "network": "none",
                                "read_only": False, "mounts": [{"src": "./d", "dest": "/d", "ro": True}]},
                  "vm": {"kernel_bzimage": "@L", "kernel_modules": "@L", "memory": 536870912,
                         "cpus": 1, "disk_size": 1073741824, "cmdline": "quiet"},
                  "blobs": ["@L"]},
    "rootfs": {"type": "layers", "diff_ids": ["@D"]},
    "history": [{"created_by": "forge"}],
}
manifest = {"schemaVersion": 2, "mediaType": M,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "@C", "size": 1},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "@L", "size": 1024,
                        "annotations": {"dev.forge.uncompressed-size": "1024"}}],
            "annotations": {"org.opencontainers.image.ref.name": "app:v1"}}
index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
         "manifests": [{"mediaType": M, "digest": "@M", "size": 1,
                        "annotations": {"org.opencontainers.image.ref.name": "app:v1",
                                        "io.containerd.image.name": "localhost/app:v1"}}]}
nested = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
          "manifests": [{"mediaType": M, "digest": "@M", "size": 1,
                         "platform": {"os": "linux", "architecture": "amd64"}}]}
outer = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json",
                                            "digest": "@I", "size": 1}]}
d = lambda o: json.dumps(o, sort_keys=True)

def w(name, text):
    with open(os.path.join(out, name), "wb") as f:
        f.write(text if isinstance(text, bytes) else text.encode())

w("oci-basic", "oci\n" + SEP.join([d(index), d(manifest), d(config)]))
# once UB: a cpus value no unsigned int holds
huge = json.loads(d(config))
huge["dev.forge"]["container"]["cpus"] = 1e300
w("oci-cpus-huge", "oci\n" + SEP.join([d(index), d(manifest), d(huge)]))
w("oci-nested", "oci\n" + SEP.join([d(outer), d(manifest), d(config), d(nested)]))
w("oci-minimal", "oci\n" + SEP.join(['{"manifests":[{"digest":"@M"}]}',
                                     '{"config":{"digest":"@C"},"layers":[]}',
                                     '{"rootfs":{"diff_ids":[]}}']))
w("docker-basic", "docker\n" + SEP.join([
    d([{"Config": "c.json", "RepoTags": ["registry.example/library/app:v2"], "Layers": ["l.tar"]}]), d(config)]))

def tar_seed(name, members):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=tarfile.PAX_FORMAT) as t:
        for m in members:
            ti = tarfile.TarInfo(m[0])
            kind = m[1]
            if kind == "file":
                ti.size = len(m[2])
                t.addfile(ti, io.BytesIO(m[2]))
                continue
            if kind == "dir":
                ti.type = tarfile.DIRTYPE
            elif kind == "sym":
                ti.type, ti.linkname = tarfile.SYMTYPE, m[2]
            elif kind == "hard":
                ti.type, ti.linkname = tarfile.LNKTYPE, m[2]
            elif kind == "fifo":
                ti.type = tarfile.FIFOTYPE
            t.addfile(ti)
    w(name, b"tar\n" + b.getvalue())

empty = bytes(1024)
import hashlib
ld = "sha256:" + hashlib.sha256(empty).hexdigest()
cfg = d({**config, "rootfs": {"type": "layers", "diff_ids": [ld]}}).replace("@L", ld).encode()
tar_seed("tar-docker", [("manifest.json", "file",
                         d([{"Config": "c.json", "RepoTags": ["t:v1"], "Layers": ["l.tar"]}]).encode()),
                        ("c.json", "file", cfg), ("l.tar", "file", empty)])
tar_seed("tar-hostile", [("../../etc/x", "file", b"x"), ("/abs/y", "file", b"y"),
                         ("up", "sym", "../../.."), ("up/z", "file", b"z"),
                         ("h", "hard", "/etc/passwd"), ("f", "fifo", None),
                         ("manifest.json", "sym", "/etc/hostname"),
                         ("index.json", "file", b'{"manifests":[{"digest":"sha256:' + b"0" * 64 + b'"}]}')])
