//! The pure decisions of entering: which user (from the container's passwd and group texts),
//! which environment, which namespaces, which `PATH`. No I/O here: each is unit-tested below.
//!
//! Invariant: these functions only decide; they never read files or call the kernel, so that
//! every choice `run` makes can be checked without a container.

use std::collections::BTreeMap;
use std::io;

use super::{Error, DEFAULT_PATH, KINDS};
use crate::procfs;

/// The identity the program runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub home: Option<String>,
}

/// Resolves `spec` (`name`, `uid`, `name:group`, `uid:gid`; empty for root) against the
/// container's `/etc/passwd` and `/etc/group` texts. Supplementary groups are those that list
/// the user by name, plus the primary group.
pub fn resolve_user(spec: Option<&str>, passwd: &str, group: &str) -> Result<Ident, Error> {
    let users = procfs::parse_passwd(passwd);
    let groups = procfs::parse_group(group);
    let spec = spec.unwrap_or("").trim();
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let u = if u.is_empty() { "0" } else { u };
    // (uid_t)-1 means "leave unchanged" to setresuid and chown: never an identity to take.
    for id in [Some(u), g].into_iter().flatten() {
        if id.parse::<u32>() == Ok(u32::MAX) || id.parse::<u64>().is_ok_and(|n| n > u32::MAX as u64)
        {
            return Err(Error::Bad(format!(
                "'{id}' is not a valid uid or gid (at most 4294967294)"
            )));
        }
    }
    let entry = match u.parse::<u32>() {
        Ok(uid) => users.iter().find(|e| e.uid == uid),
        Err(_) => Some(users.iter().find(|e| e.name == u).ok_or_else(|| {
            Error::Bad(format!(
                "no user '{u}' in the container's /etc/passwd: give a uid, or uid:gid"
            ))
        })?),
    };
    let uid = match entry {
        Some(e) => e.uid,
        None => u.parse().unwrap_or(0),
    };
    let gid = match g {
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => groups
                .iter()
                .find(|e| e.name == g)
                .map(|e| e.gid)
                .ok_or_else(|| {
                    Error::Bad(format!("no group '{g}' in the container's /etc/group"))
                })?,
        },
        // A uid the container does not know gets group 0, as podman and docker do.
        None => entry.map_or(0, |e| e.gid),
    };
    let mut gids = vec![gid];
    if let (Some(e), None) = (entry, g) {
        for gr in &groups {
            if gr.members.contains(&e.name) && !gids.contains(&gr.gid) {
                gids.push(gr.gid);
            }
        }
    }
    Ok(Ident {
        uid,
        gid,
        groups: gids,
        home: entry.map(|e| e.home.clone()).filter(|h| !h.is_empty()),
    })
}

/// The identity of the container's init from its `/proc/<pid>/status` (real uid, real gid,
/// supplementary groups, as the sidecar sees them), mapped into its user namespace through
/// `uid_map`/`gid_map` when we join that namespace (`None`: ids are taken as they are). The
/// home directory is the user's in the container's `passwd`.
pub fn init_ident(
    status: &str,
    uid_map: Option<&[procfs::IdRange]>,
    gid_map: Option<&[procfs::IdRange]>,
    passwd: &str,
) -> Result<Ident, Error> {
    let first = |key: &str| {
        procfs::status_field(status, key).and_then(|v| procfs::parse_ids(v).first().copied())
    };
    let unmapped = |what: &str, id: u32| {
        Error::Bad(format!(
            "the container's init runs as {what} {id}, which its user namespace does not map: name a user"
        ))
    };
    let map = |m: Option<&[procfs::IdRange]>, id: u32, what: &str| match m {
        None => Ok(id),
        Some(m) => procfs::map_id_inside(m, id).ok_or_else(|| unmapped(what, id)),
    };
    let (Some(uid), Some(gid)) = (first("Uid"), first("Gid")) else {
        return Err(Error::Bad(
            "cannot read the user of the container's init: name a user".into(),
        ));
    };
    let uid = map(uid_map, uid, "uid")?;
    let gid = map(gid_map, gid, "gid")?;
    let mut groups = vec![gid];
    for g in procfs::status_field(status, "Groups")
        .map(procfs::parse_ids)
        .unwrap_or_default()
    {
        // A supplementary group the namespace does not map cannot be set there: left out.
        if let Ok(g) = map(gid_map, g, "gid") {
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
    }
    let home = procfs::parse_passwd(passwd)
        .into_iter()
        .find(|e| e.uid == uid)
        .map(|e| e.home)
        .filter(|h| !h.is_empty());
    Ok(Ident {
        uid,
        gid,
        groups,
        home,
    })
}

/// The environment the program gets: the target's `KEY=VALUE` strings with `over` on top,
/// and `HOME` of the user when neither sets it for a user other than the target's.
pub fn environment(
    target: &[String],
    over: &BTreeMap<String, String>,
    home: Option<&str>,
) -> Vec<(String, String)> {
    // The target's order is kept; each name's place is looked up in a map, so the merge
    // is O(n log n) however many variables there are.
    let mut env: Vec<(String, String)> = Vec::new();
    let mut place: BTreeMap<String, usize> = BTreeMap::new();
    let mut set = |k: &str, v: &str| match place.get(k) {
        Some(&i) => env[i].1 = v.to_string(),
        None => {
            place.insert(k.to_string(), env.len());
            env.push((k.to_string(), v.to_string()));
        }
    };
    for kv in target {
        if let Some((k, v)) = kv.split_once('=') {
            if !k.is_empty() {
                set(k, v);
            }
        }
    }
    if let Some(h) = home {
        if !over.contains_key("HOME") {
            set("HOME", h);
        }
    }
    for (k, v) in over {
        set(k, v);
    }
    env
}

/// `mnt,net` (the command line's `--ns`, or the API's `"ns"` as a string) as a list.
pub fn ns_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty())
        .collect()
}

/// Which namespaces to join: the asked ones (or all kinds), less those we already share
/// with the target. Returns `CLONE_NEW*` flags and the kinds, in `KINDS` order.
pub fn namespaces_to_join(
    asked: Option<&[String]>,
    ours: impl Fn(&str) -> Option<u64>,
    theirs: impl Fn(&str) -> Option<u64>,
) -> Result<(i32, Vec<&'static str>), Error> {
    if let Some(asked) = asked {
        // Joining nothing would run the program on the node, not in the container.
        if asked.is_empty() {
            return Err(Error::Bad(
                "ns names no namespace: name some (mnt, uts, ipc, net, pid, cgroup, user) or leave it out to join them all".into(),
            ));
        }
        for a in asked {
            if !KINDS.iter().any(|(k, _)| k == a) {
                return Err(Error::Bad(format!(
                    "unknown namespace '{a}': use mnt, uts, ipc, net, pid, cgroup, user"
                )));
            }
        }
    }
    let mut flags = 0;
    let mut kinds = Vec::new();
    for (kind, flag) in KINDS {
        if asked.is_some_and(|a| !a.iter().any(|x| x == kind)) {
            continue;
        }
        let t = theirs(kind);
        if t.is_none() {
            return Err(Error::Denied {
                step: "read the target's namespaces",
                needs: "CAP_SYS_PTRACE",
                source: io::Error::from_raw_os_error(libc::EACCES),
            });
        }
        if t != ours(kind) {
            flags |= flag;
            kinds.push(kind);
        }
    }
    Ok((flags, kinds))
}

pub(super) fn search_path(env: &[(String, String)]) -> String {
    env.iter()
        .find(|(k, _)| k == "PATH")
        .map_or_else(|| DEFAULT_PATH.to_string(), |(_, v)| v.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:100:Alice:/home/alice:/bin/sh\nnohome:x:1001:1001:::/bin/sh\n";
    const GROUP: &str =
        "root:x:0:\nusers:x:100:\nwheel:x:10:alice,bob\naudio:x:29:alice\nstaff:x:50:\n";

    #[test]
    fn users_by_name_uid_and_pair() {
        let root = resolve_user(None, PASSWD, GROUP).unwrap();
        assert_eq!(
            (root.uid, root.gid, root.groups.as_slice()),
            (0, 0, &[0][..])
        );
        let a = resolve_user(Some("alice"), PASSWD, GROUP).unwrap();
        assert_eq!((a.uid, a.gid), (1000, 100));
        assert_eq!(a.groups, [100, 10, 29]);
        assert_eq!(a.home.as_deref(), Some("/home/alice"));
        assert_eq!(resolve_user(Some("1000"), PASSWD, GROUP).unwrap(), a);
        let pair = resolve_user(Some("1000:50"), PASSWD, GROUP).unwrap();
        assert_eq!(
            (pair.uid, pair.gid, pair.groups.as_slice()),
            (1000, 50, &[50][..])
        );
        let named = resolve_user(Some("alice:staff"), PASSWD, GROUP).unwrap();
        assert_eq!((named.uid, named.gid), (1000, 50));
        // Unknown to the container: a uid is taken as is, with group 0; a name is an error.
        let stranger = resolve_user(Some("4242"), PASSWD, GROUP).unwrap();
        assert_eq!((stranger.uid, stranger.gid, stranger.home), (4242, 0, None));
        assert!(resolve_user(Some("mallory"), PASSWD, GROUP)
            .unwrap_err()
            .to_string()
            .contains("no user 'mallory'"));
        assert!(resolve_user(Some("alice:nogroup"), PASSWD, GROUP).is_err());
        assert_eq!(
            resolve_user(Some("nohome"), PASSWD, GROUP).unwrap().home,
            None
        );
        assert_eq!(resolve_user(Some("1"), "", "").unwrap().uid, 1);
    }

    #[test]
    fn init_identity_mapped_into_its_namespace() {
        let status = "Name:\tapp\nUid:\t101000\t101000\t101000\t101000\nGid:\t100100\t100100\t100100\t100100\nGroups:\t100010 100029 7 \n";
        let m = procfs::parse_id_map("0 100000 65536\n");
        let id = init_ident(status, Some(&m), Some(&m), PASSWD).unwrap();
        assert_eq!((id.uid, id.gid), (1000, 100));
        // gid 7 is outside the map: left out, not an error.
        assert_eq!(id.groups, [100, 10, 29]);
        assert_eq!(id.home.as_deref(), Some("/home/alice"));
        // Not joining the user namespace: the ids as we see them.
        let id = init_ident(status, None, None, PASSWD).unwrap();
        assert_eq!((id.uid, id.gid, id.home), (101000, 100100, None));
        let root = init_ident(
            "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\n",
            None,
            None,
            PASSWD,
        )
        .unwrap();
        assert_eq!(
            (root.uid, root.gid, root.groups.as_slice()),
            (0, 0, &[0][..])
        );
        let lone = procfs::parse_id_map("0 5000 1\n");
        assert!(matches!(
            init_ident(status, Some(&lone), Some(&lone), PASSWD),
            Err(Error::Bad(_))
        ));
        assert!(init_ident("Name:\tx\n", None, None, "").is_err());
    }

    #[test]
    fn environment_layers() {
        let target = vec![
            "PATH=/bin".to_string(),
            "HOME=/root".to_string(),
            "A=1".to_string(),
            "garbage".to_string(),
            "=x".to_string(),
            "EQ=a=b".to_string(),
        ];
        let mut over = BTreeMap::new();
        over.insert("A".to_string(), "2".to_string());
        over.insert("B".to_string(), "3".to_string());
        let env = environment(&target, &over, Some("/home/alice"));
        let get = |k: &str| {
            env.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("PATH"), Some("/bin"));
        assert_eq!(get("HOME"), Some("/home/alice"));
        assert_eq!(get("A"), Some("2"));
        assert_eq!(get("B"), Some("3"));
        assert_eq!(get("EQ"), Some("a=b"));
        assert_eq!(env.len(), 5);
        over.insert("HOME".to_string(), "/h".to_string());
        let env = environment(&target, &over, Some("/home/alice"));
        assert!(env.contains(&("HOME".to_string(), "/h".to_string())));
        assert_eq!(search_path(&[]), DEFAULT_PATH);
    }

    #[test]
    fn namespaces_differing_or_asked() {
        let ours = |k: &str| Some(if k == "net" { 1 } else { 100 });
        let theirs = |k: &str| Some(if k == "user" { 100 } else { 200 });
        let (flags, kinds) = namespaces_to_join(None, ours, theirs).unwrap();
        assert_eq!(kinds, ["cgroup", "ipc", "uts", "net", "pid", "mnt"]);
        assert_eq!(flags & libc::CLONE_NEWUSER, 0);
        assert_ne!(flags & libc::CLONE_NEWNS, 0);
        let asked = vec!["net".to_string(), "user".to_string()];
        let (flags, kinds) = namespaces_to_join(Some(&asked), ours, theirs).unwrap();
        assert_eq!((flags, kinds), (libc::CLONE_NEWNET, vec!["net"]));
        let bad = vec!["time".to_string()];
        assert!(matches!(
            namespaces_to_join(Some(&bad), ours, theirs),
            Err(Error::Bad(_))
        ));
        let hidden = |_: &str| None;
        assert!(matches!(
            namespaces_to_join(None, ours, hidden),
            Err(Error::Denied { .. })
        ));
    }
}
