//! Pure parsers for `/proc` files and `/etc/passwd`. No I/O here: every function takes the
//! text and returns what it could read, so each is unit-tested from fixtures in `tests/`.

use std::collections::BTreeMap;

/// The fields of `/proc/<pid>/stat` that we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub pid: u32,
    /// The command name between the parentheses (may itself hold spaces and parentheses).
    pub comm: String,
    pub state: char,
    pub ppid: u32,
    pub pgrp: u32,
    /// The kernel's `PF_*` flags of the task (field 9).
    pub flags: u32,
    pub utime: u64,
    pub stime: u64,
    pub threads: u64,
    /// Start time after boot, in clock ticks: with the PID, the identity of a process.
    pub starttime: u64,
    /// Resident set size, in pages.
    pub rss_pages: u64,
}

/// `PF_KTHREAD` (include/linux/sched.h): the task is a kernel thread.
pub const PF_KTHREAD: u32 = 0x0020_0000;

impl Stat {
    /// Whether this is a kernel thread, told by its flags: never by its parent PID (inside a
    /// PID namespace PID 2 and its children are ordinary processes).
    pub fn is_kernel_thread(&self) -> bool {
        self.flags & PF_KTHREAD != 0
    }
}

/// One line of `/proc/<pid>/uid_map` or `gid_map`: `count` ids from `inside` (in the
/// process's user namespace) are `outside` (in the reader's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

/// Parses `uid_map`/`gid_map`; lines that do not read as three numbers are skipped.
pub fn parse_id_map(s: &str) -> Vec<IdRange> {
    s.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace().map(|w| w.parse::<u32>().ok());
            Some(IdRange {
                inside: f.next()??,
                outside: f.next()??,
                count: f.next()??,
            })
        })
        .collect()
}

/// The id inside the namespace for `outside` (an id as the reader sees it), if mapped.
pub fn map_id_inside(map: &[IdRange], outside: u32) -> Option<u32> {
    map.iter().find_map(|r| {
        let off = outside.checked_sub(r.outside)?;
        (off < r.count).then(|| r.inside + off)
    })
}

/// Parses `/proc/<pid>/stat`. The command name is found by the *last* `)`, since a process
/// may name itself `a) R 1 (b`.
pub fn parse_stat(s: &str) -> Option<Stat> {
    let open = s.find('(')?;
    let close = s.rfind(')')?;
    if close < open {
        return None;
    }
    let pid = s[..open].trim().parse().ok()?;
    let comm = s[open + 1..close].to_string();
    // Fields after the comm, numbered from 3 (state) as in proc(5); we need up to 24 (rss).
    // A fixed array, not a Vec: this runs for every process of every listing.
    let mut rest = [""; 22];
    let mut count = 0;
    for (slot, word) in rest.iter_mut().zip(s[close + 1..].split_whitespace()) {
        *slot = word;
        count += 1;
    }
    let field = |n: usize| (n - 3 < count).then(|| rest[n - 3]);
    let num = |n: usize| field(n)?.parse::<u64>().ok();
    Some(Stat {
        pid,
        comm,
        state: field(3)?.chars().next()?,
        ppid: num(4)? as u32,
        pgrp: num(5)? as u32,
        flags: num(9)? as u32,
        utime: num(14)?,
        stime: num(15)?,
        threads: num(20)?,
        starttime: num(22)?,
        rss_pages: field(24)?.parse::<i64>().ok()?.max(0) as u64,
    })
}

/// Parses `/proc/<pid>/status` into its `Key: value` pairs, values trimmed.
pub fn parse_status(s: &str) -> BTreeMap<String, String> {
    s.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

/// The value of one `Key:` line of `/proc/<pid>/status`, without building the whole map.
pub fn status_field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == key).then(|| v.trim())
    })
}

/// The real, effective, saved and filesystem UIDs (or GIDs) of a `Uid:`/`Gid:` status value.
pub fn parse_ids(value: &str) -> Vec<u32> {
    value
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect()
}

/// One line of `/proc/<pid>/cgroup`: `hierarchy-ID:controller-list:path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupLine {
    pub hierarchy: u32,
    pub controllers: String,
    pub path: String,
}

/// Parses `/proc/<pid>/cgroup` (v1 lines, the v2 `0::` line, or both on a hybrid host).
pub fn parse_cgroup(s: &str) -> Vec<CgroupLine> {
    s.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            Some(CgroupLine {
                hierarchy: it.next()?.parse().ok()?,
                controllers: it.next()?.to_string(),
                path: it.next()?.to_string(),
            })
        })
        .collect()
}

/// The inode in a namespace link target such as `mnt:[4026531840]`.
pub fn parse_ns_link(s: &str) -> Option<u64> {
    s.split_once(":[")?.1.strip_suffix(']')?.parse().ok()
}

/// Splits a NUL-separated `/proc` file (`cmdline`, `environ`) into its strings. A trailing NUL
/// ends the last string; empty strings in the middle are kept (`argv` may hold `""`).
pub fn split_nul(bytes: &[u8]) -> Vec<String> {
    if bytes.is_empty() {
        return Vec::new();
    }
    let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    bytes
        .split(|&b| b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// One entry of `/etc/passwd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
}

/// Parses `/etc/passwd`, skipping comments, blank and malformed lines (and NIS `+`/`-` lines).
pub fn parse_passwd(s: &str) -> Vec<PasswdEntry> {
    s.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with('+') && !l.starts_with('-'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 7 || f[0].is_empty() {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f[5].to_string(),
                shell: f[6].to_string(),
            })
        })
        .collect()
}

/// One resource limit of `/proc/<pid>/limits`; `None` means unlimited.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Limit {
    pub name: String,
    pub soft: Option<u64>,
    pub hard: Option<u64>,
    pub units: String,
}

/// Parses `/proc/<pid>/limits` (a fixed-width table whose first column holds spaces).
pub fn parse_limits(s: &str) -> Vec<Limit> {
    let value = |v: &str| v.parse::<u64>().ok();
    s.lines()
        .skip(1)
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            // The name is every word before the first value ("Max open files 1024 4096 files").
            let first_value = words
                .iter()
                .position(|w| *w == "unlimited" || w.parse::<u64>().is_ok())?;
            let soft = words.get(first_value)?;
            let hard = words.get(first_value + 1)?;
            Some(Limit {
                name: words[..first_value].join(" "),
                soft: value(soft),
                hard: value(hard),
                units: words.get(first_value + 2).unwrap_or(&"").to_string(),
            })
        })
        .collect()
}

/// Formats seconds since the epoch as `YYYY-MM-DDTHH:MM:SS` (UTC, no zone suffix).
pub fn format_utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `format_utc` into a stack buffer, without the formatting machinery: listings format one
/// date per package. `None` for years outside 0..=9999 (which `format_utc` handles).
pub fn format_utc_into(secs: i64, out: &mut [u8; 19]) -> Option<&str> {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let y = u32::try_from(y).ok().filter(|&y| y <= 9999)?;
    let rem = rem as u32;
    let two = |out: &mut [u8], v: u32| {
        out[0] = b'0' + (v / 10) as u8;
        out[1] = b'0' + (v % 10) as u8;
    };
    two(&mut out[0..2], y / 100);
    two(&mut out[2..4], y % 100);
    out[4] = b'-';
    two(&mut out[5..7], m);
    out[7] = b'-';
    two(&mut out[8..10], d);
    out[10] = b'T';
    two(&mut out[11..13], rem / 3600);
    out[13] = b':';
    two(&mut out[14..16], rem % 3600 / 60);
    out[16] = b':';
    two(&mut out[17..19], rem % 60);
    std::str::from_utf8(out).ok()
}

/// Howard Hinnant's `civil_from_days`: the proleptic Gregorian date of a day number.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The capability sets of `/proc/<pid>/status` (`CapInh`, `CapPrm`, `CapEff`, `CapBnd`,
/// `CapAmb`), as 64-bit masks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Caps {
    pub inheritable: u64,
    pub permitted: u64,
    pub effective: u64,
    pub bounding: u64,
    pub ambient: u64,
}

/// Reads the capability masks of a `status` file; `None` when one of the four that every
/// kernel we support shows is missing (`CapAmb` arrived in 4.3 and defaults to 0).
pub fn parse_caps(status: &str) -> Option<Caps> {
    let hex = |key: &str| u64::from_str_radix(status_field(status, key)?, 16).ok();
    Some(Caps {
        inheritable: hex("CapInh")?,
        permitted: hex("CapPrm")?,
        effective: hex("CapEff")?,
        bounding: hex("CapBnd")?,
        ambient: hex("CapAmb").unwrap_or(0),
    })
}

/// A cgroup file system mounted in our mount namespace, from `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    /// The cgroup (path inside the hierarchy) mounted there: `/` unless we are inside a
    /// cgroup namespace or the hierarchy was bind-mounted from below its root.
    pub root: String,
    pub mount_point: String,
    /// `true` for the unified hierarchy (`cgroup2`).
    pub v2: bool,
    /// The super options of a v1 mount: its controllers and `name=...`.
    pub options: Vec<String>,
}

/// The cgroup mounts of a `mountinfo` file. Fields: ID, parent, major:minor, root, mount
/// point, options, optional fields up to `-`, then fstype, source, super options. Paths use
/// octal escapes for spaces and the like (`\040`).
pub fn parse_cgroup_mounts(mountinfo: &str) -> Vec<CgroupMount> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let mut right = right.split(' ');
            let fstype = right.next()?;
            let _source = right.next()?;
            let options = right.next().unwrap_or("");
            let v2 = match fstype {
                "cgroup2" => true,
                "cgroup" => false,
                _ => return None,
            };
            Some(CgroupMount {
                root: unescape_mount_path(left.get(3)?),
                mount_point: unescape_mount_path(left.get(4)?),
                v2,
                options: options.split(',').map(str::to_string).collect(),
            })
        })
        .collect()
}

fn unescape_mount_path(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push(
                    d.iter()
                        .fold(0u8, |acc, c| acc.wrapping_mul(8) + (c - b'0')),
                );
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Where the cgroup of `line` (a line of a process's `/proc/<pid>/cgroup`) is in our file
/// system: the directory whose `cgroup.procs` moves a process into it. `None` when no mount
/// shows that hierarchy, or the cgroup is outside what our mount shows (`/..` paths, seen
/// from inside a cgroup namespace, or a path outside the mount's root).
pub fn cgroup_dir(line: &CgroupLine, mounts: &[CgroupMount]) -> Option<String> {
    let mount = mounts.iter().find(|m| {
        if line.hierarchy == 0 && line.controllers.is_empty() {
            m.v2
        } else {
            !m.v2
                && !line.controllers.is_empty()
                && line
                    .controllers
                    .split(',')
                    .all(|c| m.options.iter().any(|o| o == c))
        }
    })?;
    if line.path.split('/').any(|c| c == "..") {
        return None;
    }
    let rel = if mount.root == "/" {
        line.path.as_str()
    } else {
        let rest = line.path.strip_prefix(mount.root.as_str())?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
        rest
    };
    Some(
        format!(
            "{}/{}",
            mount.mount_point.trim_end_matches('/'),
            rel.trim_start_matches('/')
        )
        .trim_end_matches('/')
        .to_string(),
    )
}

/// One entry of `/etc/group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

/// Parses `/etc/group`, skipping comments, blank and malformed lines.
pub fn parse_group(s: &str) -> Vec<GroupEntry> {
    s.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with('+') && !l.starts_with('-'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 || f[0].is_empty() {
                return None;
            }
            Some(GroupEntry {
                name: f[0].to_string(),
                gid: f[2].parse().ok()?,
                members: f[3]
                    .split(',')
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .map(str::to_string)
                    .collect(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/proc");

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{FIX}/{name}")).unwrap()
    }

    #[test]
    fn stat_with_hostile_comm() {
        let s = parse_stat(&fixture("stat-hostile-comm")).unwrap();
        assert_eq!(s.pid, 4242);
        assert_eq!(s.comm, "a) R 1 (b");
        assert_eq!(s.state, 'S');
        assert_eq!(s.ppid, 17);
        assert_eq!(s.pgrp, 4242);
        assert_eq!((s.utime, s.stime), (150, 25));
        assert_eq!(s.threads, 3);
        assert_eq!(s.starttime, 987_654);
        assert_eq!(s.rss_pages, 1234);
    }

    #[test]
    fn stat_real_kernel_thread_and_garbage() {
        let s = parse_stat(&fixture("stat-kthread")).unwrap();
        assert_eq!(
            (s.pid, s.comm.as_str(), s.state, s.ppid),
            (2, "kthreadd", 'S', 0)
        );
        assert!(s.is_kernel_thread());
        assert!(!parse_stat(&fixture("stat-hostile-comm"))
            .unwrap()
            .is_kernel_thread());
        assert_eq!(parse_stat(""), None);
        assert_eq!(parse_stat("12 (x"), None);
        assert_eq!(parse_stat("12 )x( S"), None);
        assert_eq!(parse_stat("12 (x) S 1"), None);
    }

    #[test]
    fn id_maps() {
        let host = parse_id_map("         0          0 4294967295\n");
        assert_eq!(map_id_inside(&host, 1000), Some(1000));
        // rootless podman: root is the user, 1.. come from /etc/subuid.
        let rootless = parse_id_map("0 1000 1\n1 100000 65536\ngarbage\n");
        assert_eq!(rootless.len(), 2);
        assert_eq!(map_id_inside(&rootless, 1000), Some(0));
        assert_eq!(map_id_inside(&rootless, 100000), Some(1));
        assert_eq!(map_id_inside(&rootless, 165535), Some(65536));
        assert_eq!(map_id_inside(&rootless, 165536), None);
        assert_eq!(map_id_inside(&rootless, 0), None);
        assert_eq!(map_id_inside(&[], 0), None);
    }

    #[test]
    fn status_fields() {
        let m = parse_status(&fixture("status"));
        assert_eq!(m["Name"], "nginx");
        assert_eq!(parse_ids(&m["Uid"]), vec![101, 101, 101, 101]);
        assert_eq!(m["NSpid"], "31337\t7");
        assert_eq!(m["CapEff"], "00000000a80425fb");
        let text = fixture("status");
        assert_eq!(status_field(&text, "NSpid"), Some("31337\t7"));
        assert_eq!(status_field(&text, "Uid"), Some("101\t101\t101\t101"));
        assert_eq!(status_field(&text, "Nope"), None);
    }

    #[test]
    fn cgroup_lines_v1_v2_hybrid() {
        let lines = parse_cgroup(&fixture("cgroup-hybrid"));
        assert_eq!(lines.len(), 13);
        assert_eq!(lines[0].hierarchy, 12);
        assert_eq!(lines[0].controllers, "pids");
        assert!(lines[0].path.starts_with("/machine.slice/libpod-"));
        let v2 = lines.iter().find(|l| l.hierarchy == 0).unwrap();
        assert_eq!(v2.controllers, "");
        // A path may hold colons; only the first two separate fields.
        let odd = parse_cgroup("1:name=systemd:/a:b:c\ngarbage\n");
        assert_eq!(odd.len(), 1);
        assert_eq!(odd[0].path, "/a:b:c");
    }

    #[test]
    fn passwd_entries() {
        let p = parse_passwd(&fixture("passwd"));
        let names: Vec<_> = p.iter().map(|e| (e.name.as_str(), e.uid)).collect();
        assert_eq!(
            names,
            vec![
                ("root", 0),
                ("daemon", 1),
                ("nginx", 101),
                ("nobody", 65534)
            ]
        );
        assert_eq!(p[2].home, "/var/lib/nginx");
    }

    #[test]
    fn limits_table() {
        let l = parse_limits(&fixture("limits"));
        let nofile = l.iter().find(|l| l.name == "Max open files").unwrap();
        assert_eq!(
            (nofile.soft, nofile.hard, nofile.units.as_str()),
            (Some(1024), Some(524288), "files")
        );
        let cpu = l.iter().find(|l| l.name == "Max cpu time").unwrap();
        assert_eq!((cpu.soft, cpu.hard), (None, None));
        assert_eq!(l.len(), 16);
    }

    #[test]
    fn ns_links_and_nul_lists() {
        assert_eq!(parse_ns_link("mnt:[4026531840]"), Some(4026531840));
        assert_eq!(parse_ns_link("mnt:[x]"), None);
        assert_eq!(split_nul(b"a\0\0b\0"), vec!["a", "", "b"]);
        assert_eq!(split_nul(b""), Vec::<String>::new());
        assert_eq!(split_nul(b"no-nul"), vec!["no-nul"]);
    }

    #[test]
    fn utc_formatting() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00");
        let mut buf = [0u8; 19];
        for t in [
            0,
            1_581_451_430,
            951_782_400,
            -1,
            4_294_967_295,
            253_402_300_799,
        ] {
            assert_eq!(format_utc_into(t, &mut buf), Some(format_utc(t).as_str()));
        }
        assert_eq!(format_utc_into(253_402_300_800, &mut buf), None);
        assert_eq!(format_utc_into(-62_167_219_201, &mut buf), None);
        assert_eq!(format_utc(1_581_451_430), "2020-02-11T20:03:50");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00");
        assert_eq!(format_utc(-1), "1969-12-31T23:59:59");
    }

    #[test]
    fn capability_masks_of_status() {
        let c = parse_caps(&fixture("status")).unwrap();
        assert_eq!(c.inheritable, 0);
        assert_eq!(c.permitted, 0xa80425fb);
        assert_eq!(c.effective, 0xa80425fb);
        assert_eq!(c.bounding, 0xa80425fb);
        assert_eq!(c.ambient, 0);
        assert_eq!(parse_caps("CapInh:\t0\nCapPrm:\tzz\n"), None);
        assert_eq!(parse_caps(""), None);
    }

    #[test]
    fn cgroup_mounts_and_where_a_cgroup_lives() {
        let host = parse_cgroup_mounts(&fixture("mountinfo-cgroup"));
        assert_eq!(host.len(), 10, "the tmpfs above them is not a cgroup mount");
        let systemd = host
            .iter()
            .find(|m| m.mount_point.ends_with("systemd"))
            .unwrap();
        assert!(systemd.options.contains(&"name=systemd".to_string()));
        assert!(host
            .iter()
            .any(|m| m.v2 && m.mount_point == "/sys/fs/cgroup/unified"));
        let line = |h, c: &str, p: &str| CgroupLine {
            hierarchy: h,
            controllers: c.into(),
            path: p.into(),
        };
        let id = "libpod_parent/libpod-abc";
        assert_eq!(
            cgroup_dir(&line(8, "pids", &format!("/{id}")), &host).as_deref(),
            Some(format!("/sys/fs/cgroup/pids/{id}").as_str())
        );
        assert_eq!(
            cgroup_dir(&line(9, "name=systemd", "/"), &host).as_deref(),
            Some("/sys/fs/cgroup/systemd")
        );
        assert_eq!(
            cgroup_dir(&line(0, "", "/x"), &host).as_deref(),
            Some("/sys/fs/cgroup/unified/x")
        );
        // A co-mounted pair needs a mount with both; an unknown controller has none.
        assert_eq!(cgroup_dir(&line(3, "cpu,cpuacct", "/"), &host), None);
        assert_eq!(cgroup_dir(&line(3, "net_cls", "/"), &host), None);
        // Seen from inside a cgroup namespace: paths above our root are out of reach.
        assert_eq!(cgroup_dir(&line(8, "pids", "/../../other"), &host), None);

        let ctr = parse_cgroup_mounts(&fixture("mountinfo-container"));
        assert_eq!(ctr.len(), 2);
        assert_eq!(ctr[1].mount_point, "/mnt/with space");
        assert_eq!(
            cgroup_dir(&line(8, "pids", "/libpod_parent/libpod-abc/sub"), &ctr).as_deref(),
            Some("/sys/fs/cgroup/pids/sub"),
            "a mount of a cgroup below the root is followed from its root"
        );
        assert_eq!(
            cgroup_dir(&line(8, "pids", "/libpod_parent/libpod-abcd"), &ctr),
            None
        );
        assert_eq!(cgroup_dir(&line(8, "pids", "/elsewhere"), &ctr), None);
    }

    #[test]
    fn group_file() {
        let g = parse_group(&fixture("group"));
        let names: Vec<&str> = g.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["root", "wheel", "users"]);
        assert_eq!(g[1].gid, 10);
        assert_eq!(g[1].members, ["alice", "bob"]);
        assert!(g[2].members.is_empty());
    }
}
