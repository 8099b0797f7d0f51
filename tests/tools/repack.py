#!/usr/bin/env python3
"""Makes a hostile RPM package out of a genuine one with an uncompressed payload, for the
tests of tests/native.rs, with every digest redone so that the package passes the upload
checks (header SHA-256/SHA-1, payload digest, MD5, sizes) and only the native path's own
checks stand between it and the container.

    repack.py IN OUT [sub:OLD=NEW]... [cpiosize:NAME=SIZE] [truncate:N]

sub:OLD=NEW       replace the bytes OLD by NEW (same length) in the header and the payload
cpiosize:NAME=N   the cpio entry NAME (e.g. ./opt/ev/zz/g) says its content is N bytes
truncate:N        cut the last N bytes of the payload (the archive ends early)
"""
import hashlib
import struct
import sys


def header_len(b, at):
    assert b[at:at + 3] == b"\x8e\xad\xe8", "no header magic"
    il, dl = struct.unpack(">II", b[at + 8:at + 16])
    return 16 + 16 * il + dl


def entries(b, at):
    il, dl = struct.unpack(">II", b[at + 8:at + 16])
    out = {}
    for i in range(il):
        tag, ty, off, cnt = struct.unpack(">IIiI", b[at + 16 + 16 * i:at + 32 + 16 * i])
        out[tag] = (ty, at + 16 + 16 * il + off, cnt)
    return out


def main():
    src, dst, ops = sys.argv[1], sys.argv[2], sys.argv[3:]
    pkg = bytearray(open(src, "rb").read())
    sig_at = 96
    sig_len = header_len(pkg, sig_at)
    hdr_at = (sig_at + sig_len + 7) & ~7
    hdr_end = hdr_at + header_len(pkg, hdr_at)
    header, payload = pkg[hdr_at:hdr_end], pkg[hdr_end:]
    for op in ops:
        kind, _, arg = op.partition(":")
        if kind == "sub":
            old, new = (s.encode() for s in arg.split("=", 1))
            assert len(old) == len(new) and (old in header or old in payload), op
            header = header.replace(old, new)
            payload = payload.replace(old, new)
        elif kind == "cpiosize":
            name, size = arg.rsplit("=", 1)
            at = payload.index(name.encode() + b"\0")
            start = payload.rindex(b"070701", 0, at)
            # newc: magic(6) ino mode uid gid nlink mtime FILESIZE ..., 8 hex digits each
            payload[start + 54:start + 62] = b"%08x" % int(size)
        elif kind == "truncate":
            payload = payload[:-int(arg)]
        else:
            sys.exit("unknown op " + op)
    # The payload digest, inside the header (PAYLOADDIGEST, a string array of hex).
    h = entries(header, 0)
    if 5092 in h:
        _, at, _ = h[5092]
        old = header[at:header.index(b"\0", at)]
        new = hashlib.new("sha256" if len(old) == 64 else "sha512", payload).hexdigest().encode()
        assert len(new) == len(old)
        header[at:at + len(new)] = new
    sig = entries(pkg, sig_at)
    put = lambda tag, val: pkg.__setitem__(slice(sig[tag][1], sig[tag][1] + len(val)), val)
    if 273 in sig:
        put(273, hashlib.sha256(header).hexdigest().encode())
    if 269 in sig:
        put(269, hashlib.sha1(header).hexdigest().encode())
    if 1004 in sig:
        put(1004, hashlib.md5(header + payload).digest())
    if 1000 in sig:
        put(1000, struct.pack(">I", len(header) + len(payload)))
    if 1007 in sig:
        put(1007, struct.pack(">I", len(payload)))
    out = pkg[:hdr_at] + header + payload
    open(dst, "wb").write(out)


main()
