#!/usr/bin/env python3
"""Damages one installed rpm header in a database, for the tests of tests/rpmdb_faults.rs.

    rpmhdr.py sqlite DB HNUM OP      (rpmdb.sqlite, through Python's sqlite3)
    rpmhdr.py ndb    DB PKGIDX OP    (Packages.db: blob edited in place, adler32 redone)
    rpmhdr.py bdb    DB RECNO baddl  (Packages: the blob's dl, on its first overflow page)

OP is one of:
    cut:N        keep the first N bytes of the blob (rpm's headerImport refuses it)
    baddl        dl one too large (refused: the blob is shorter than il/dl say)
    drop:TAG     rename TAG (e.g. 1001, VERSION) to an unused tag number
    dirindex     point every DIRINDEXES entry past the end of DIRNAMES
The header digests rpm checks (SHA1HEADER, SHA256HEADER) are recomputed after drop and
dirindex, so that rpm reads the edited header as it would a genuine one.
"""
import hashlib
import sqlite3
import struct
import sys
import zlib

HEADER_MAGIC = bytes([0x8E, 0xAD, 0xE8, 0x01, 0, 0, 0, 0])
UNUSED_TAG = 21999


def split(b):
    il, dl = struct.unpack(">II", b[:8])
    ents = [list(struct.unpack(">IIiI", b[8 + 16 * i:24 + 16 * i])) for i in range(il)]
    return il, dl, ents, bytearray(b[8 + 16 * il:])


def join(il, dl, ents, data):
    return struct.pack(">II", il, dl) + b"".join(struct.pack(">IIiI", *e) for e in ents) + bytes(data)


def redigest(il, dl, ents, data):
    if ents[0][0] != 63:
        return
    off0 = ents[0][2]
    ril = -struct.unpack(">IIiI", bytes(data[off0:off0 + 16]))[2] // 16
    rdl = off0 + 16
    index = b"".join(struct.pack(">IIiI", *e) for e in ents[:ril])
    region = HEADER_MAGIC + struct.pack(">II", ril, rdl) + index + bytes(data[:rdl])
    for tag, algo in ((269, hashlib.sha1), (273, hashlib.sha256)):
        for e in ents:
            if e[0] == tag:
                h = algo(region).hexdigest().encode()
                data[e[2]:e[2] + len(h)] = h


def edit(blob, op):
    if op.startswith("cut:"):
        return blob[:int(op[4:])]
    il, dl, ents, data = split(blob)
    if op == "baddl":
        return join(il, dl + 1, ents, data)
    if op.startswith("drop:"):
        tag = int(op[5:])
        hits = [e for e in ents if e[0] == tag]
        assert hits, f"no tag {tag}"
        for e in hits:
            e[0] = UNUSED_TAG
    elif op == "dirindex":
        names = [e for e in ents if e[0] == 1118]
        idx = [e for e in ents if e[0] == 1116]
        assert names and idx, "no DIRNAMES/DIRINDEXES"
        for i in range(idx[0][3]):
            at = idx[0][2] + 4 * i
            data[at:at + 4] = struct.pack(">I", names[0][3] + 5)
    else:
        raise SystemExit(f"unknown op {op}")
    redigest(il, dl, ents, data)
    return join(il, dl, ents, data)


def sqlite_edit(db, hnum, op):
    c = sqlite3.connect(db)
    (blob,) = c.execute("SELECT blob FROM Packages WHERE hnum = ?", (hnum,)).fetchone()
    c.execute("UPDATE Packages SET blob = ? WHERE hnum = ?", (edit(bytes(blob), op), hnum))
    c.commit()
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()


def ndb_edit(db, pkgidx, op):
    f = bytearray(open(db, "rb").read())
    slotpages = struct.unpack("<I", f[12:16])[0]
    for o in range(32, slotpages * 4096, 16):
        magic, idx, blkoff, blkcnt = struct.unpack("<IIII", f[o:o + 16])
        if magic == 0x746F6C53 and blkoff and idx == pkgidx:
            at = blkoff * 16
            n = struct.unpack("<I", f[at + 12:at + 16])[0]
            new = edit(bytes(f[at + 16:at + 16 + n]), op)
            assert len(new) == n, "ndb: only edits that keep the length"
            f[at + 16:at + 16 + n] = new
            tail = at + blkcnt * 16 - 12
            f[tail:tail + 4] = struct.pack("<I", zlib.adler32(bytes(f[at:tail])))
            open(db, "wb").write(f)
            return
    raise SystemExit(f"pkgidx {pkgidx} not found")


def bdb_edit(db, recno, op):
    # A shorter item length (a cut) is no header damage to rpm's bdb_ro: it reads the whole
    # overflow chain and gives up on the database. Only the blob's own content is changed.
    assert op == "baddl", "bdb: only baddl"
    f = bytearray(open(db, "rb").read())
    assert struct.unpack("<I", f[12:16])[0] == 0x061561, "little-endian hash db only"
    ps = struct.unpack("<I", f[20:24])[0]
    for pg in range(1, len(f) // ps):
        p = f[pg * ps:(pg + 1) * ps]
        if p[25] not in (2, 13):
            continue
        n = struct.unpack("<H", p[20:22])[0]
        offs = [struct.unpack("<H", p[26 + 2 * i:28 + 2 * i])[0] for i in range(n)]
        for k in range(0, n, 2):
            key, data = offs[k], offs[k + 1]
            if p[key] == 1 and struct.unpack("<I", p[key + 1:key + 5])[0] == recno:
                assert p[data] == 3, "data item is not off-page"
                first = struct.unpack("<I", p[data + 4:data + 8])[0]
                at = first * ps + 26 + 4
                dl = struct.unpack(">I", f[at:at + 4])[0]
                f[at:at + 4] = struct.pack(">I", dl + 1)
                open(db, "wb").write(f)
                return
    raise SystemExit(f"record {recno} not found")


if __name__ == "__main__":
    kind, db, num, op = sys.argv[1:5]
    {"sqlite": sqlite_edit, "ndb": ndb_edit, "bdb": bdb_edit}[kind](db, int(num), op)
