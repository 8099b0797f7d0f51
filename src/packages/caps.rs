//! File capabilities as `rpm -V` compares them: the text a package header records
//! (`cap_net_raw=ep`, libcap's `cap_from_text` form) against the file's
//! `security.capability` extended attribute (`struct vfs_cap_data`, revisions 1 to 3), both
//! turned into their effective, permitted and inheritable sets.
//!
//! Invariant: pure parsing, plus one `fgetxattr` on a file the caller opened; anything that
//! cannot be read or parsed counts as no capabilities at all, as rpm counts it ("=").

use std::fs::File;

/// The three capability sets, one bit per capability number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Caps {
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
}

/// Capability names in number order (`linux/capability.h`, 0 to 40).
const NAMES: [&str; 41] = [
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

const ALL: u64 = (1u64 << NAMES.len()) - 1;

/// One capability (`cap_net_raw`, or its number) as a bit.
fn bit(name: &str) -> Option<u64> {
    let lower = name.to_ascii_lowercase();
    if let Ok(n) = lower.parse::<u32>() {
        return (n < 64).then(|| 1u64 << n);
    }
    let short = lower.strip_prefix("cap_")?;
    NAMES.iter().position(|n| *n == short).map(|i| 1u64 << i)
}

/// libcap's `cap_from_text`: whitespace-separated clauses `[caplist]OPflags[OPflags...]`,
/// where a caplist is comma-separated names (or `all`, or nothing: all), an OP is `=`
/// (clear the listed capabilities in every set, then raise them in the flagged sets), `+`
/// (raise) or `-` (lower), and flags are `e`, `i`, `p`. `None` when it does not parse.
pub fn from_text(text: &str) -> Option<Caps> {
    let mut c = Caps::default();
    for clause in text.split_whitespace() {
        let op_at = clause.find(['=', '+', '-'])?;
        let (list, mut ops) = clause.split_at(op_at);
        let mut set = 0u64;
        if list.is_empty() {
            set = ALL;
        } else {
            for name in list.split(',') {
                set |= if name.eq_ignore_ascii_case("all") {
                    ALL
                } else {
                    bit(name)?
                };
            }
        }
        while let Some(op) = ops.chars().next() {
            ops = &ops[1..];
            let end = ops.find(['=', '+', '-']).unwrap_or(ops.len());
            let (flags, rest) = ops.split_at(end);
            ops = rest;
            let (mut e, mut p, mut i) = (false, false, false);
            for f in flags.chars() {
                match f {
                    'e' => e = true,
                    'p' => p = true,
                    'i' => i = true,
                    _ => return None,
                }
            }
            let sets = [
                (&mut c.effective, e),
                (&mut c.permitted, p),
                (&mut c.inheritable, i),
            ];
            for (target, flagged) in sets {
                match op {
                    '=' if flagged => *target |= set,
                    '=' => *target &= !set,
                    '+' if flagged => *target |= set,
                    '-' if flagged => *target &= !set,
                    '+' | '-' => {}
                    _ => return None,
                }
            }
        }
    }
    Some(c)
}

/// `VFS_CAP_FLAGS_EFFECTIVE` and the revision mask of `vfs_cap_data.magic_etc`.
const FLAGS_EFFECTIVE: u32 = 0x0000_0001;
const REVISION_MASK: u32 = 0xff00_0000;

/// The capabilities of a `security.capability` value (libcap's `_fcaps_load`: with the
/// effective flag, the effective set is the permitted and inheritable ones together). The
/// root ID of a revision 3 value is not compared: rpm inside the container sees the value
/// as revision 2.
pub fn from_xattr(raw: &[u8]) -> Caps {
    let le = |at: usize| {
        raw.get(at..at + 4)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let magic = le(0);
    let words = match magic & REVISION_MASK {
        0x0100_0000 => 1,
        0x0200_0000 | 0x0300_0000 => 2,
        _ => return Caps::default(),
    };
    let mut c = Caps::default();
    for w in 0..words {
        let permitted = u64::from(le(4 + 8 * w)) << (32 * w);
        let inheritable = u64::from(le(8 + 8 * w)) << (32 * w);
        c.permitted |= permitted;
        c.inheritable |= inheritable;
    }
    if magic & FLAGS_EFFECTIVE != 0 {
        c.effective = c.permitted | c.inheritable;
    }
    c
}

/// The `security.capability` value for `c`, as libcap's `cap_set_fd` writes it: revision 2
/// (`VFS_CAP_REVISION_2`), the effective flag when any effective bit is set, then the
/// permitted and inheritable sets, low words first, little-endian.
pub fn to_xattr(c: &Caps) -> Vec<u8> {
    let magic = 0x0200_0000 | if c.effective != 0 { FLAGS_EFFECTIVE } else { 0 };
    let mut out = magic.to_le_bytes().to_vec();
    for w in 0..2 {
        out.extend_from_slice(&((c.permitted >> (32 * w)) as u32).to_le_bytes());
        out.extend_from_slice(&((c.inheritable >> (32 * w)) as u32).to_le_bytes());
    }
    out
}

/// The capabilities of an open file (none when it has no `security.capability`).
///
/// The names of the file's attributes are listed first: for the usual file, which has
/// none, that costs the kernel less than asking for `security.capability` (which the
/// capability LSM looks up twice before it answers "no such attribute").
pub fn of_file(f: &File) -> Caps {
    let mut names = [0u8; 512];
    if let Ok(n) = rustix::fs::flistxattr(f, &mut names[..]) {
        if !names[..n]
            .split(|&b| b == 0)
            .any(|name| name == b"security.capability")
        {
            return Caps::default();
        }
    }
    // Listed, or too many names to list here: asked for.
    let mut buf = [0u8; 32];
    match rustix::fs::fgetxattr(f, "security.capability", &mut buf[..]) {
        Ok(n) => from_xattr(&buf[..n]),
        Err(_) => Caps::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_as_libcap_reads_it() {
        let raw = 1u64 << 13;
        let admin = 1u64 << 12;
        assert_eq!(
            from_text("cap_net_raw=ep"),
            Some(Caps {
                effective: raw,
                permitted: raw,
                inheritable: 0
            })
        );
        assert_eq!(
            from_text("cap_net_admin,cap_net_raw+ep"),
            Some(Caps {
                effective: raw | admin,
                permitted: raw | admin,
                inheritable: 0
            })
        );
        assert_eq!(
            from_text("cap_net_raw=eip cap_net_raw-e"),
            Some(Caps {
                effective: 0,
                permitted: raw,
                inheritable: raw
            })
        );
        assert_eq!(from_text(""), Some(Caps::default()));
        assert_eq!(from_text("="), Some(Caps::default()));
        assert_eq!(from_text("=p").map(|c| c.permitted), Some(ALL));
        assert_eq!(from_text("CAP_NET_RAW+p").map(|c| c.permitted), Some(raw));
        assert_eq!(from_text("13+p").map(|c| c.permitted), Some(raw));
        assert_eq!(from_text("cap_bogus+p"), None);
        assert_eq!(from_text("cap_net_raw"), None);
    }

    #[test]
    fn xattr_revisions() {
        // Revision 2, effective, permitted cap_net_raw: what `setcap cap_net_raw=ep` writes.
        let mut v2 = Vec::new();
        for w in [0x0200_0001u32, 1 << 13, 0, 0, 0] {
            v2.extend_from_slice(&w.to_le_bytes());
        }
        assert_eq!(Some(from_xattr(&v2)), from_text("cap_net_raw=ep"));
        // Revision 3 carries a root ID after the sets: not compared.
        let mut v3 = v2.clone();
        v3[3] = 0x03;
        v3.extend_from_slice(&100_000u32.to_le_bytes());
        assert_eq!(from_xattr(&v3), from_xattr(&v2));
        // A capability above 31 lives in the second word.
        let mut high = Vec::new();
        for w in [0x0200_0000u32, 0, 0, 1 << (38 - 32), 0] {
            high.extend_from_slice(&w.to_le_bytes());
        }
        assert_eq!(Some(from_xattr(&high)), from_text("cap_perfmon+p"));
        assert_eq!(from_xattr(b"junk"), Caps::default());
    }
}
