//! Package listings of a real container over HTTP: a container made by `unshare` whose root
//! holds a real database at the SUSE layout (`/var/lib/rpm` an absolute symlink to
//! `/usr/lib/sysimage/rpm`), compared with the real rpm's output in the fixture's expected.tsv.

mod common;

use common::*;
use serde_json::Value;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/rpmdb");

fn tsv_line(p: &Value) -> String {
    let s = |v: &Value| {
        v.as_str()
            .map(str::to_string)
            .unwrap_or_else(|| "(none)".into())
    };
    format!(
        "{}\t{}\t{}\t{}\t{}\t{}\t{}",
        s(&p["name"]),
        p["epoch"].as_u64().unwrap_or(0),
        s(&p["version"]),
        s(&p["release"]),
        s(&p["arch"]),
        s(&p["installdate"]),
        p["size"]
            .as_u64()
            .map(|t| t.to_string())
            .unwrap_or("(none)".into()),
    )
}

fn expected(fixture: &str) -> Vec<String> {
    std::fs::read_to_string(format!("{FIXTURES}/{fixture}/expected.tsv"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The expected.tsv line with INSTALLTIME turned into the API's date form (`installdate`).
fn expected_as_api(line: &str) -> String {
    let mut f: Vec<String> = line.split('\t').map(str::to_string).collect();
    if let Ok(t) = f[5].parse::<i64>() {
        f[5] = sidecar::procfs::format_utc(t);
    }
    f.join("\t")
}

#[test]
fn container_packages_over_http_match_rpm() {
    if !privileged(&["unshare", "curl", "/bin/busybox"]) {
        return;
    }
    let c = FakeContainer::start(Spec::podman("exec sleep 100000"));
    let r = c.root.path();
    std::fs::create_dir_all(r.join("usr/lib/sysimage/rpm")).unwrap();
    std::fs::copy(
        format!("{FIXTURES}/sles12-sp4/Packages"),
        r.join("usr/lib/sysimage/rpm/Packages"),
    )
    .unwrap();
    std::os::unix::fs::symlink("/usr/lib/sysimage/rpm", r.join("var/lib/rpm")).unwrap();
    let before: Vec<_> = std::fs::read_dir(r.join("usr/lib/sysimage/rpm"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();

    let server = Server::start(&[]);
    let one = server.json(&format!("/{}", c.id));
    assert!(
        one["resources"]
            .as_array()
            .unwrap()
            .contains(&Value::from("rpms")),
        "{one}"
    );
    let list = server.json(&format!("/{}/rpms", c.id));
    let mut got: Vec<String> = list.as_array().unwrap().iter().map(tsv_line).collect();
    got.sort();
    let want: Vec<String> = expected("sles12-sp4")
        .iter()
        .map(|l| expected_as_api(l))
        .collect();
    assert_eq!(got.len(), 108);
    assert_eq!(got, want);
    // gpg-pubkey pseudo-packages are marked, with a null arch.
    let keys: Vec<&Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "gpg-pubkey")
        .collect();
    assert_eq!(keys.len(), 2);
    assert!(keys
        .iter()
        .all(|k| k["gpg_pubkey"] == true && k["arch"].is_null()));
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["name"] == "gpg-pubkey" || p.get("gpg_pubkey").is_none()));
    // One package in depth.
    let bash = server.json(&format!("/{}/rpms/bash", c.id));
    let bash = &bash[0];
    assert_eq!(bash["version"], "4.3");
    assert!(bash["files"]
        .as_array()
        .unwrap()
        .contains(&Value::from("/bin/bash")));
    assert!(bash["provides"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["name"] == "bash"));
    assert!(bash["requires"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["text"].as_str().unwrap().starts_with("libc.so.6")));
    let (status, v) = server.request("GET", &format!("/{}/rpms/no-such-package", c.id));
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (404, Some("package_not_found"))
    );
    // The command line reads the same.
    let out = std::process::Command::new(SIDECAR)
        .args(["rpms", &c.id, "--json"])
        .output()
        .unwrap();
    let cli: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cli, list);
    // Nothing was created beside the database.
    let after: Vec<_> = std::fs::read_dir(r.join("usr/lib/sysimage/rpm"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(before, after);
}

#[test]
fn a_container_without_a_database_says_so() {
    if !privileged(&["unshare", "curl", "/bin/busybox"]) {
        return;
    }
    let c = FakeContainer::start(Spec::podman("exec sleep 100000"));
    let server = Server::start(&[]);
    let (status, v) = server.request("GET", &format!("/{}/rpms", c.id));
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (404, Some("no_rpm_database")),
        "{v}"
    );
    assert!(!server.json(&format!("/{}", c.id))["resources"]
        .as_array()
        .unwrap()
        .contains(&Value::from("rpms")));
    // A corrupt database is a clear 422, and the server lives.
    std::fs::create_dir_all(c.root.path().join("var/lib/rpm")).unwrap();
    let corrupt = c.root.path().join("var/lib/rpm/Packages");
    std::fs::write(&corrupt, vec![0x5au8; 8192]).unwrap();
    // An hour old: a file modified moments ago that does not read is taken for one being
    // written (503 and retry), not for a corrupt one.
    let touched = std::process::Command::new("touch")
        .args(["-d", "1 hour ago"])
        .arg(&corrupt)
        .status()
        .unwrap();
    assert!(touched.success());
    let (status, v) = server.request("GET", &format!("/{}/rpms", c.id));
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (422, Some("database_unreadable")),
        "{v}"
    );
    assert!(server.alive());
}

/// Listings parse headers in summary mode: on every fixture it must agree with a full parse
/// on everything a listing shows.
#[test]
fn summary_parsing_agrees_with_full_parsing() {
    use sidecar::rpmdb::{read_path, read_path_with, Detail};
    for entry in std::fs::read_dir(FIXTURES).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let full = read_path(&dir).unwrap().packages;
        let summary = read_path_with(&dir, Detail::Summary).unwrap().packages;
        assert_eq!(full.len(), summary.len(), "{}", dir.display());
        for (f, s) in full.iter().zip(&summary) {
            let shown = |p: &sidecar::rpmdb::Package| {
                serde_json::to_value(sidecar::packages::summary(p)).unwrap()
            };
            assert_eq!(shown(f), shown(s), "{}", dir.display());
            assert!(s.more.is_none() && s.more().files.is_empty());
        }
    }
}

/// A database rewritten while it is read gives the old or the new packages, or a 503 after
/// retries: never garbage, never a 422 or 500.
#[test]
fn a_database_rewritten_during_reads_never_gives_garbage() {
    if !privileged(&["unshare", "curl", "/bin/busybox"]) {
        return;
    }
    let c = FakeContainer::start(Spec::podman("exec sleep 100000"));
    let dir = c.root.path().join("var/lib/rpm");
    std::fs::create_dir_all(&dir).unwrap();
    let a = std::fs::read(format!("{FIXTURES}/sles12-sp4/Packages")).unwrap();
    let b = std::fs::read(format!("{FIXTURES}/rhel8-libuuid/Packages")).unwrap();
    std::fs::write(dir.join("Packages"), &a).unwrap();
    let server = Server::start(&[]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, path) = (stop.clone(), dir.join("Packages"));
        std::thread::spawn(move || {
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                // In place, in pieces, as a writer that is not atomic would.
                use std::io::Write;
                let data = if n.is_multiple_of(2) { &b } else { &a };
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .truncate(true)
                    .open(&path)
                    .unwrap();
                for piece in data.chunks(64 << 10) {
                    f.write_all(piece).unwrap();
                }
                drop(f);
                n += 1;
                // Bursts of rewrites, then quiet spells that end on either database: reads
                // land in both.
                if n.is_multiple_of(11) {
                    std::thread::sleep(std::time::Duration::from_millis(60));
                }
            }
            n
        })
    };
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..60 {
        let (status, body) = server.get(&format!("/{}/rpms", c.id));
        let key = match status {
            200 => format!(
                "200:{}",
                serde_json::from_str::<Value>(&body)
                    .unwrap()
                    .as_array()
                    .unwrap()
                    .len()
            ),
            503 => {
                assert!(body.contains("database_busy"), "{body}");
                "503".to_string()
            }
            other => panic!("status {other}: {body}"),
        };
        *seen.entry(key).or_insert(0) += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let rewrites = writer.join().unwrap();
    for k in seen.keys() {
        assert!(
            ["200:108", "200:1", "503"].contains(&k.as_str()),
            "{seen:?}"
        );
    }
    assert!(rewrites > 10, "the writer ran ({rewrites} rewrites)");
    assert!(
        seen.keys().any(|k| k.starts_with("200")),
        "some reads got through: {seen:?}"
    );
    eprintln!("answers while rewriting {rewrites} times: {seen:?}");
}
