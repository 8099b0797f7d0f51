//! Package transactions through the container's own rpm (issue 11), in containers made with
//! `unshare` whose root is an overlay of this machine's `/` (so they have Debian's real
//! `rpm`) over a tmpfs writable layer seeded with a database of packages built here with
//! `rpmbuild`. Each test talks to a real `sidecar serve` with real curl, or runs the command
//! line, and looks at the container's writable layer and database afterwards.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use common::*;
use serde_json::Value;

const TOOLS: [&str; 6] = [
    "unshare",
    "curl",
    "rpm",
    "rpmbuild",
    "nsenter",
    "/bin/busybox",
];

/// One package to build: name, version, release, extra preamble lines, files (path,
/// content), and a %post script.
struct Pkg {
    name: &'static str,
    version: &'static str,
    release: &'static str,
    preamble: &'static str,
    files: &'static [(&'static str, &'static str)],
    pre: Option<&'static str>,
    post: Option<&'static str>,
}

const fn pkg(name: &'static str, version: &'static str, release: &'static str) -> Pkg {
    Pkg {
        name,
        version,
        release,
        preamble: "",
        files: &[],
        pre: None,
        post: None,
    }
}

/// The packages every test uses, built once per test binary: their files by NEVRA.
fn packages() -> &'static BTreeMap<String, PathBuf> {
    static BUILT: OnceLock<BTreeMap<String, PathBuf>> = OnceLock::new();
    BUILT.get_or_init(|| {
        // Under target/ (kept between runs of this binary, ignored by git), not /tmp.
        let top = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("sidecar-tx-rpms-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&top);
        let specs = [
            Pkg {
                files: &[("/etc/pki/base.pem", "base\n")],
                ..pkg("ca-certificates", "2", "1")
            },
            Pkg {
                preamble: "Requires: ca-certificates\nProvides: mozilla-ca-certificates",
                files: &[("/etc/pki/moz.pem", "moz\n")],
                ..pkg("ca-certificates-mozilla", "2.34", "lp151.2.3.1")
            },
            Pkg {
                files: &[("/usr/share/freebie/a.txt", "free\n")],
                ..pkg("freebie", "1", "1")
            },
            Pkg {
                preamble: "Conflicts: ca-certificates",
                ..pkg("conflicter", "1", "1")
            },
            Pkg {
                files: &[("/etc/pki/base.pem", "another\n")],
                ..pkg("fileclash", "1", "1")
            },
            Pkg {
                preamble: "Requires: libmissing >= 2",
                ..pkg("needy", "1", "1")
            },
            Pkg {
                files: &[("/usr/share/failpost/f", "f\n")],
                post: Some("echo post-failing-now; exit 3"),
                ..pkg("failpost", "1", "1")
            },
            Pkg {
                files: &[("/usr/share/failpre/f", "f\n")],
                pre: Some("echo pre-failing-now; exit 4"),
                ..pkg("failpre", "1", "1")
            },
            Pkg {
                files: &[("/usr/share/slowpost/s", "s\n")],
                post: Some("sleep 3; echo slept"),
                ..pkg("slowpost", "1", "1")
            },
            Pkg {
                files: &[("/usr/bin/ltrace-test", "#!/bin/sh\necho 1\n")],
                ..pkg("ltrace", "0.7.3", "1")
            },
            Pkg {
                files: &[("/usr/bin/ltrace-test", "#!/bin/sh\necho 2\n")],
                ..pkg("ltrace", "0.7.3", "2")
            },
            Pkg {
                files: &[("/usr/bin/ltrace-test", "#!/bin/sh\necho 0\n")],
                ..pkg("ltrace", "0.7.2", "1")
            },
            // A %post whose output looks like one of rpm's problem lines.
            Pkg {
                files: &[("/usr/share/chatty/c", "c\n")],
                post: Some("printf '\\tlibchat is needed by chatty-helper-1-1.noarch\\n'; printf '\\tfile /x conflicts between attempted installs of a-1-1.noarch and b-1-1.noarch\\n' >&2"),
                ..pkg("chatty", "1", "1")
            },
            // A conflict whose dependency text starts with "file ".
            Pkg {
                preamble: "Conflicts: file < 2",
                ..pkg("guard", "1", "1")
            },
            pkg("file", "1", "1"),
            pkg("multi", "1", "1"),
            pkg("multi", "2", "1"),
            // For the native checks against rpm --test.
            Pkg { preamble: "Requires: ca-certificates >= 3", ..pkg("wantsnew", "1", "1") },
            Pkg { preamble: "Requires: ca-certificates = 2", ..pkg("wantsold", "1", "1") },
            Pkg { preamble: "Requires: /etc/pki/base.pem", ..pkg("filereq", "1", "1") },
            Pkg { preamble: "Requires: /etc/nonexistent", ..pkg("filereq2", "1", "1") },
            Pkg { preamble: "Conflicts: victim", ..pkg("hater", "1", "1") },
            pkg("victim", "1", "1"),
            Pkg { preamble: "Obsoletes: oldie < 2", ..pkg("successor", "1", "1") },
            pkg("oldie", "1", "1"),
            pkg("caretpkg", "1.0^git1", "1"),
            Pkg { preamble: "Requires: caretpkg > 1.0", ..pkg("caretok", "1", "1") },
            Pkg { preamble: "Requires: caretpkg >= 1.0.1", ..pkg("caretno", "1", "1") },
            Pkg { preamble: "Requires: ca-certificates >= 2~rc1", ..pkg("tildeok", "1", "1") },
            Pkg { preamble: "Requires: ca-certificates < 2~rc1", ..pkg("tildeno", "1", "1") },
            Pkg { preamble: "Provides: libfoo.so.1", ..pkg("libfoo", "1", "1") },
            Pkg { preamble: "Provides: libfoo.so.2", ..pkg("libfoo", "2", "1") },
            Pkg { preamble: "Requires: libfoo.so.1", ..pkg("app", "1", "1") },
            // The overlay's /bin/sh, for the interpreter rpm requires of every scriptlet.
            Pkg {
                preamble: "Provides: /bin/sh",
                ..pkg("shell-provider", "1", "1")
            },
        ];
        let mut out = BTreeMap::new();
        for (i, p) in specs.iter().enumerate() {
            let mut spec = format!(
                "Name: {}\nVersion: {}\nRelease: {}\nSummary: test package\nLicense: MIT\nBuildArch: noarch\nAutoReqProv: no\n{}\n%description\ntest\n%install\n",
                p.name, p.version, p.release, p.preamble
            );
            for (path, content) in p.files {
                let dir = Path::new(path).parent().unwrap().display().to_string();
                spec.push_str(&format!(
                    "mkdir -p %{{buildroot}}{dir}\nprintf '%%b' '{}' > %{{buildroot}}{path}\n",
                    content.replace('\n', "\\n")
                ));
            }
            if let Some(pre) = p.pre {
                spec.push_str(&format!("%pre\n{pre}\n"));
            }
            if let Some(post) = p.post {
                spec.push_str(&format!("%post\n{post}\n"));
            }
            spec.push_str("%files\n");
            for (path, _) in p.files {
                spec.push_str(&format!("{path}\n"));
            }
            let f = top.join(format!("{i}.spec"));
            std::fs::create_dir_all(&top).unwrap();
            std::fs::write(&f, spec).unwrap();
            let st = Command::new("rpmbuild")
                .args(["--quiet", "--define"])
                .arg(format!("_topdir {}", top.display()))
                .arg("-bb")
                .arg(&f)
                .status()
                .unwrap();
            assert!(st.success(), "rpmbuild {}", p.name);
            let nevra = format!("{}-{}-{}.noarch", p.name, p.version, p.release);
            out.insert(
                nevra.clone(),
                top.join("RPMS/noarch").join(format!("{nevra}.rpm")),
            );
        }
        out
    })
}

fn rpm_file(nevra: &str) -> &'static Path {
    packages()
        .get(nevra)
        .unwrap_or_else(|| panic!("no package {nevra}"))
}

/// A container whose root is an overlay of `/` over a tmpfs, seeded with a database.
struct RpmContainer {
    ns: LayerContainer,
    _seed: TempDir,
}

impl std::ops::Deref for RpmContainer {
    type Target = LayerContainer;
    fn deref(&self) -> &LayerContainer {
        &self.ns
    }
}

impl RpmContainer {
    /// `installed`: NEVRAs installed in the seed database, one `rpm -i` each (so several
    /// versions of one name can be installed side by side); `read_only`: the root is
    /// mounted read-only.
    fn start(installed: &[&str], read_only: bool) -> RpmContainer {
        let id = random_id();
        let seed = TempDir::new("txseed");
        let s = seed.path();
        std::fs::create_dir_all(s.join("etc/rpm")).unwrap();
        std::fs::write(
            s.join("etc/rpm/macros.sidecar-test"),
            "%_dbpath /var/lib/rpm\n",
        )
        .unwrap();
        let rpm = |args: &[&str]| {
            let out = Command::new("rpm")
                .arg("--root")
                .arg(s)
                .args(["--dbpath", "/var/lib/rpm"])
                .args(args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "rpm {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        rpm(&["--initdb"]);
        for n in installed {
            rpm(&["-i", "--nodeps", rpm_file(n).to_str().unwrap()]);
        }
        let layer = format!("/tmp/sidecar-txlayer-{}", &id[..12]);
        let ro = if read_only {
            "mount -o remount,ro $L/m; "
        } else {
            ""
        };
        let script = format!(
            "set -e; L={layer}; mkdir -p $L; mount -t tmpfs tmpfs $L; mkdir $L/upper $L/work $L/m; \
             cp -a {seed}/. $L/upper/; \
             mount -t overlay overlay -o lowerdir=/,upperdir=$L/upper,workdir=$L/work $L/m; \
             mount --rbind /dev $L/m/dev; {ro}hostname {host}; \
             exec chroot $L/m /bin/sh -c 'mount -t proc proc /proc 2>/dev/null || true; \
             until grep -q libpod-{id} /proc/self/cgroup; do sleep 0.02; done; exec sleep 100000'",
            seed = s.display(),
            host = &id[..12],
        );
        RpmContainer {
            ns: LayerContainer::start(id, layer, &script),
            _seed: seed,
        }
    }

    /// Every file of the writable layer with its SHA-256, mode and owner (`nsenter` into the
    /// container's mount namespace, where the tmpfs is). SQLite's `-shm` is left out: it is
    /// the WAL's shared-memory index, rewritten by every reader (`rpm -q` included), not
    /// part of the database.
    fn layer_state(&self) -> String {
        let out = Command::new("nsenter")
            .args(["-t", &self.init.to_string(), "-m", "--", "sh", "-c"])
            .arg(format!(
                "cd {}/upper && find . ! -name '*-shm' -printf '%p %y %m %U:%G %s\\n' | sort && find . -type f ! -name '*-shm' -exec sha256sum {{}} + | sort",
                self.layer
            ))
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// What the real rpm in the container lists (`rpm -qa`), sorted.
    fn rpm_qa(&self) -> Vec<String> {
        let out = Command::new("nsenter")
            .args(["-t", &self.init.to_string(), "-a", "-r", "--", "rpm", "-qa"])
            .env("LC_ALL", "C")
            .output()
            .unwrap();
        let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        v.sort();
        v
    }

    fn exists(&self, path: &str) -> bool {
        Path::new(&format!("/proc/{}/root{path}", self.init)).exists()
    }
}

fn auth() -> String {
    format!("{USER}:{PASSWORD}")
}

fn erase(server: &Server, c: &str, name: &str) -> (u16, Value) {
    server.request("DELETE", &format!("/{c}/rpms/{name}"))
}

const BASE: [&str; 4] = [
    "shell-provider-1-1.noarch",
    "ca-certificates-2-1.noarch",
    "ca-certificates-mozilla-2.34-lp151.2.3.1.noarch",
    "freebie-1-1.noarch",
];

#[test]
fn erase_as_the_prototype_did() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = RpmContainer::start(&BASE, false);
    let server = Server::start(&[]);
    let before = c.layer_state();
    let (status, v) = erase(&server, c.short(), "ca-certificates");
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["status"], "failed", "{v}");
    assert_eq!(v["method"], "rpm");
    // The problem in the prototype's shape, the instance read natively.
    let list = server.json(&format!("/{}/rpms/ca-certificates-mozilla", c.short()));
    let instance = list[0]["instance"].as_u64().unwrap();
    assert!(instance > 0);
    assert_eq!(
        v["problems"],
        serde_json::json!([[
            "ca-certificates is needed by (installed) ca-certificates-mozilla-2.34-lp151.2.3.1.noarch",
            [4, "ca-certificates", instance]
        ]])
    );
    assert!(
        v["output"].as_str().unwrap_or("").contains("Alien"),
        "noise is output: {v}"
    );
    assert_eq!(
        c.layer_state(),
        before,
        "a refused erase changed the writable layer"
    );

    // By a capability only one package provides, as the prototype's README does.
    let (status, v) = erase(&server, c.short(), "mozilla-ca-certificates");
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "erased");
    assert_eq!(v["package"]["name"], "ca-certificates-mozilla");
    assert_eq!(v["package"]["version"], "2.34");
    assert_eq!(v["package"]["release"], "lp151.2.3.1");
    let date = v["package"]["installdate"].as_str().unwrap();
    assert_eq!(date.len(), "2020-02-11T20:03:50".len(), "{date}");
    assert!(!c.exists("/etc/pki/moz.pem"));
    assert!(!c
        .rpm_qa()
        .iter()
        .any(|p| p.starts_with("ca-certificates-mozilla")));
    // Now nothing needs ca-certificates; a free package's files go with it.
    let (status, v) = erase(&server, c.short(), "freebie");
    assert_eq!((status, v["status"].as_str()), (200, Some("erased")), "{v}");
    assert!(!c.exists("/usr/share/freebie/a.txt"));
    let (status, v) = erase(&server, c.short(), "freebie");
    assert_eq!(
        (status, v["status"].as_str()),
        (404, Some("not-installed")),
        "{v}"
    );
    // The audit line names the package, the method and the outcome.
    let log = server.log.lock().unwrap().join("\n");
    assert!(log.contains("\"erase\":\"freebie-1-1.noarch\""), "{log}");
    assert!(log.contains("\"method\":\"rpm\""), "{log}");
}

#[test]
fn install_update_and_their_problems() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = RpmContainer::start(&BASE, false);
    let server = Server::start(&[]);
    let s = c.short();
    let (status, v) = server.put_rpm(s, rpm_file("ltrace-0.7.3-1.noarch"), "");
    assert_eq!(
        (status, v["status"].as_str()),
        (200, Some("installed")),
        "{v}"
    );
    assert_eq!(v["package"]["release"], "1");
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{}/root/usr/bin/ltrace-test", c.init)).unwrap(),
        "#!/bin/sh\necho 1\n"
    );
    let (status, v) = server.put_rpm(s, rpm_file("ltrace-0.7.3-1.noarch"), "");
    assert_eq!(
        (status, v["status"].as_str()),
        (200, Some("already-installed")),
        "{v}"
    );
    let (status, v) = server.put_rpm(s, rpm_file("ltrace-0.7.3-2.noarch"), "");
    assert_eq!(
        (status, v["status"].as_str()),
        (200, Some("updated")),
        "{v}"
    );
    assert!(c.rpm_qa().contains(&"ltrace-0.7.3-2.noarch".to_string()));
    assert!(!c.rpm_qa().contains(&"ltrace-0.7.3-1.noarch".to_string()));
    // Older than what is installed: rpm's OLDPACKAGE (8), naming the installed instance.
    let (status, v) = server.put_rpm(s, rpm_file("ltrace-0.7.2-1.noarch"), "");
    assert_eq!((status, v["status"].as_str()), (409, Some("failed")), "{v}");
    assert_eq!(v["problems"][0][1][0], 8, "{v}");
    assert!(v["problems"][0][1][2].as_u64().unwrap() > 0, "{v}");

    let before = c.layer_state();
    let cases = [
        ("conflicter-1-1.noarch", 5, "ca-certificates", false),
        ("fileclash-1-1.noarch", 7, "/etc/pki/base.pem", true),
        ("needy-1-1.noarch", 4, "libmissing >= 2", false),
    ];
    for (nevra, kind, str1, installed_instance) in cases {
        let (status, v) = server.put_rpm(s, rpm_file(nevra), "");
        assert_eq!(
            (status, v["status"].as_str()),
            (409, Some("failed")),
            "{nevra}: {v}"
        );
        let p = &v["problems"][0];
        assert_eq!(
            (p[1][0].as_u64(), p[1][1].as_str()),
            (Some(kind), Some(str1)),
            "{v}"
        );
        assert_eq!(p[1][2].as_u64().unwrap() > 0, installed_instance, "{v}");
        assert_eq!(v["problems"].as_array().unwrap().len(), 1, "{v}");
    }
    assert_eq!(
        c.layer_state(),
        before,
        "refused installs changed the writable layer"
    );

    // A failing %post is a warning to rpm 4.18 (exit 0): the package is installed, and
    // what rpm said comes back in `output`.
    let (status, v) = server.put_rpm(s, rpm_file("failpost-1-1.noarch"), "");
    assert_eq!(
        (status, v["status"].as_str()),
        (200, Some("installed")),
        "{v}"
    );
    let out = v["output"].as_str().unwrap();
    assert!(
        out.contains("post-failing-now")
            && out.contains("%post(failpost-1-1.noarch) scriptlet failed, exit status 3"),
        "{v}"
    );
    // A failing %pre stops that package: failed, rpm's words, and nothing left installed.
    let (status, v) = server.put_rpm(s, rpm_file("failpre-1-1.noarch"), "");
    assert_eq!((status, v["status"].as_str()), (409, Some("failed")), "{v}");
    let out = v["output"].as_str().unwrap();
    assert!(
        out.contains("pre-failing-now") && out.contains("scriptlet failed"),
        "{v}"
    );
    assert!(v["package"].is_null(), "{v}");
    assert!(!c.rpm_qa().iter().any(|p| p.starts_with("failpre")));
    assert!(c.rpm_qa().contains(&"failpost-1-1.noarch".to_string()));
}

#[test]
fn test_mode_changes_nothing_and_bad_uploads_leave_no_trace() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = RpmContainer::start(&BASE, false);
    let server = Server::start(&["--max-upload", "200000"]);
    let s = c.short();
    let before = c.layer_state();
    let (status, v) = server.put_rpm(s, rpm_file("ltrace-0.7.3-1.noarch"), "?test=1");
    assert_eq!(
        (status, v["status"].as_str(), v["test"].as_bool()),
        (200, Some("installed"), Some(true)),
        "{v}"
    );
    let (status, v) = erase(&server, s, "freebie?test=1");
    assert_eq!(
        (status, v["status"].as_str(), v["test"].as_bool()),
        (200, Some("erased"), Some(true)),
        "{v}"
    );
    let (status, v) = erase(&server, s, "ca-certificates?test=1");
    assert_eq!((status, v["status"].as_str()), (409, Some("failed")), "{v}");
    assert_eq!(c.layer_state(), before, "test=1 changed the writable layer");

    let dir = TempDir::new("badrpm");
    let good = std::fs::read(rpm_file("ltrace-0.7.3-1.noarch")).unwrap();
    let garbage = dir.path().join("garbage.rpm");
    std::fs::write(&garbage, b"this is not an rpm at all\n".repeat(100)).unwrap();
    let truncated = dir.path().join("truncated.rpm");
    std::fs::write(&truncated, &good[..good.len() - 100]).unwrap();
    let altered = dir.path().join("altered.rpm");
    let mut bytes = good.clone();
    let last = bytes.len() - 10;
    bytes[last] ^= 0xff;
    std::fs::write(&altered, &bytes).unwrap();
    for (f, what) in [
        (&garbage, "lead"),
        (&truncated, "payload digest"),
        (&altered, "payload digest"),
    ] {
        let (status, v) = server.put_rpm(s, f, "");
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (422, Some("bad_package")),
            "{v}"
        );
        assert!(
            v["error"]["message"].as_str().unwrap().contains(what),
            "{v}"
        );
    }
    let big = dir.path().join("big.rpm");
    std::fs::write(&big, vec![0u8; 300_000]).unwrap();
    let (status, v) = server.put_rpm(s, &big, "");
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (413, Some("payload_too_large")),
        "{v}"
    );
    assert_eq!(c.layer_state(), before, "a refused upload left a trace");
}

#[test]
fn concurrency_hang_ups_and_queues() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = RpmContainer::start(&BASE, false);
    let server = Server::start(&[]);
    let s = c.short().to_string();
    // A client that hangs up while %post sleeps: the transaction goes on to its end.
    let (status, _) = curl(&[
        "--max-time",
        "1",
        "--digest",
        "--user",
        &auth(),
        "-T",
        rpm_file("slowpost-1-1.noarch").to_str().unwrap(),
        &format!("{}/{s}/rpms", server.url),
    ]);
    // (curl reports 100 when it gave up after the server's 100 Continue.)
    assert!(
        status == 0 || status == 100,
        "curl should have given up: {status}"
    );
    // Meanwhile another transaction with wait=0 is refused, one without waits its turn.
    let (status, v) = server.put_rpm(&s, rpm_file("ltrace-0.7.3-1.noarch"), "?wait=0");
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (409, Some("transaction_in_progress")),
        "{v}"
    );
    let (status, v) = server.put_rpm(&s, rpm_file("ltrace-0.7.3-1.noarch"), "");
    assert_eq!(
        (status, v["status"].as_str()),
        (200, Some("installed")),
        "{v}"
    );
    wait_until("slowpost installed", Duration::from_secs(20), || {
        c.rpm_qa().contains(&"slowpost-1-1.noarch".to_string())
    });
    // Two at once: both end, each consistently.
    let url = server.url.clone();
    let a = {
        let (url, s) = (url.clone(), s.clone());
        std::thread::spawn(move || {
            curl(&[
                "--digest",
                "--user",
                &auth(),
                "-X",
                "DELETE",
                &format!("{url}/{s}/rpms/freebie"),
            ])
        })
    };
    let b = {
        let (url, s) = (url.clone(), s.clone());
        std::thread::spawn(move || {
            curl(&[
                "--digest",
                "--user",
                &auth(),
                "-T",
                rpm_file("ltrace-0.7.3-2.noarch").to_str().unwrap(),
                &format!("{url}/{s}/rpms"),
            ])
        })
    };
    let (ra, rb) = (a.join().unwrap(), b.join().unwrap());
    assert_eq!(ra.0, 200, "{}", ra.1);
    assert_eq!(rb.0, 200, "{}", rb.1);
    let qa = c.rpm_qa();
    assert!(!qa.iter().any(|p| p.starts_with("freebie")), "{qa:?}");
    assert!(qa.contains(&"ltrace-0.7.3-2.noarch".to_string()), "{qa:?}");
}

#[test]
fn names_several_packages_share_and_containers_without_rpm() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = RpmContainer::start(
        &[
            "shell-provider-1-1.noarch",
            "multi-1-1.noarch",
            "multi-2-1.noarch",
        ],
        false,
    );
    let server = Server::start(&[]);
    let (status, v) = erase(&server, c.short(), "multi");
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (409, Some("ambiguous_package")),
        "{v}"
    );
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("multi-1-1.noarch") && msg.contains("multi-2-1.noarch"),
        "{msg}"
    );
    assert_eq!(c.rpm_qa().len(), 3);
    let (status, v) = erase(&server, c.short(), "multi-1-1.noarch");
    assert_eq!((status, v["status"].as_str()), (200, Some("erased")), "{v}");
    assert_eq!(
        c.rpm_qa(),
        vec![
            "multi-2-1.noarch".to_string(),
            "shell-provider-1-1.noarch".to_string()
        ]
    );

    // A read-only root: 409 and nothing changed.
    let ro = RpmContainer::start(&BASE, true);
    let (status, v) = erase(&server, ro.short(), "freebie");
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (409, Some("read_only_filesystem")),
        "{v}"
    );
    assert!(ro.exists("/usr/share/freebie/a.txt"));

    // A busybox container with a database but no rpm (busybox's applet is not librpm's):
    // the native path (tests/native.rs), said in the reply.
    let bb = FakeContainer::start(Spec::podman("exec sleep 100000"));
    let seed = bb.root.path();
    std::fs::create_dir_all(seed.join("var/lib/rpm")).unwrap();
    let st = Command::new("rpm")
        .arg("--root")
        .arg(seed)
        .args(["--dbpath", "/var/lib/rpm", "-i", "--nodeps", "--noscripts"])
        .arg(rpm_file("freebie-1-1.noarch"))
        .status()
        .unwrap();
    assert!(st.success());
    let (status, v) = erase(&server, &bb.id[..12], "freebie");
    assert_eq!(
        (status, v["status"].as_str(), v["method"].as_str()),
        (200, Some("erased"), Some("native")),
        "{v}"
    );
    let (status, v) = server.put_rpm(&bb.id[..12], rpm_file("ltrace-0.7.3-1.noarch"), "");
    assert_eq!(
        (status, v["status"].as_str(), v["method"].as_str()),
        (200, Some("installed"), Some("native")),
        "{v}"
    );

    // --read-only: 403 before anything.
    let rs = Server::start(&["--read-only"]);
    let (status, v) = erase(&rs, c.short(), "multi");
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (403, Some("read_only")),
        "{v}"
    );
}

#[test]
fn the_command_line_twins_and_sigterm() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = RpmContainer::start(&BASE, false);
    let run = |args: &[&str]| {
        let out = Command::new(SIDECAR).args(args).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, _) = run(&["rpm-erase", c.short(), "ca-certificates"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("failed"), "{out}");
    assert!(out.contains("ca-certificates is needed by (installed) ca-certificates-mozilla-2.34-lp151.2.3.1.noarch"), "{out}");
    let (code, out, err) = run(&[
        "rpm-install",
        c.short(),
        rpm_file("ltrace-0.7.3-1.noarch").to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["status"], "installed");
    let (code, out, _) = run(&[
        "rpm-install",
        c.short(),
        rpm_file("ltrace-0.7.3-1.noarch").to_str().unwrap(),
        "--test",
    ]);
    assert_eq!(
        (code, out.trim()),
        (
            0,
            "already-installed ltrace-0.7.3-1.noarch (test: nothing was changed)"
        )
    );
    // SIGTERM in the middle of a transaction: it runs to its end, and the command says so.
    let child = Command::new(SIDECAR)
        .args([
            "rpm-install",
            c.short(),
            rpm_file("slowpost-1-1.noarch").to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("SIGTERM arrived during the transaction"),
        "{err}"
    );
    assert!(c.rpm_qa().contains(&"slowpost-1-1.noarch".to_string()));
}

/// The problems the real rpm reports for `args` (`-U --test FILE` or `-e --test NAME`) in
/// the container, as (type, str1, num1, message), sorted.
fn real_problems(
    c: &RpmContainer,
    args: &[&str],
    stdin: Option<&Path>,
) -> Vec<(u32, Option<String>, u64, String)> {
    let mut cmd = Command::new("nsenter");
    cmd.args(["-t", &c.init.to_string(), "-a", "-r", "--", "rpm"])
        .args(args)
        .env("LC_ALL", "C");
    if let Some(f) = stdin {
        cmd.stdin(std::fs::File::open(f).unwrap());
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let root = sidecar::rootfs::Root::of_pid(c.init).unwrap();
    let db = sidecar::packages::read_container(&root, &c.id, sidecar::rpmdb::Detail::Full).unwrap();
    let (p, _) = sidecar::packages::transaction::parse_output(&text, &|n| {
        sidecar::packages::transaction::instance_of(&db, n)
    });
    let mut v: Vec<_> = p
        .into_iter()
        .map(|p| (p.kind, p.str1, p.num1, p.message))
        .collect();
    v.sort();
    v
}

#[test]
fn native_checks_agree_with_rpm_test() {
    if !privileged(&TOOLS) {
        return;
    }
    let mut seed: Vec<&str> = BASE.to_vec();
    seed.extend([
        "hater-1-1.noarch",
        "successor-1-1.noarch",
        "caretpkg-1.0^git1-1.noarch",
        "libfoo-1-1.noarch",
        "app-1-1.noarch",
        "ltrace-0.7.3-1.noarch",
    ]);
    let c = RpmContainer::start(&seed, false);
    let root = sidecar::rootfs::Root::of_pid(c.init).unwrap();
    let full =
        sidecar::packages::read_container(&root, &c.id, sidecar::rpmdb::Detail::Full).unwrap();
    let files =
        sidecar::packages::read_container(&root, &c.id, sidecar::rpmdb::Detail::Files).unwrap();
    let entries: BTreeMap<u32, Vec<sidecar::rpmdb::FileEntry>> = files
        .packages
        .iter()
        .map(|p| (p.instance, p.more().entries.clone()))
        .collect();
    let sorted = |p: Vec<sidecar::packages::transaction::Problem>| {
        let mut v: Vec<_> = p
            .into_iter()
            .map(|p| (p.kind, p.str1, p.num1, p.message))
            .collect();
        v.sort();
        v
    };
    let installs = [
        "needy-1-1.noarch",
        "wantsnew-1-1.noarch",
        "wantsold-1-1.noarch",
        "filereq-1-1.noarch",
        "filereq2-1-1.noarch",
        "conflicter-1-1.noarch",
        "victim-1-1.noarch",
        "oldie-1-1.noarch",
        "caretok-1-1.noarch",
        "caretno-1-1.noarch",
        "tildeok-1-1.noarch",
        "tildeno-1-1.noarch",
        "fileclash-1-1.noarch",
        "libfoo-2-1.noarch",
        "ltrace-0.7.2-1.noarch",
        "ltrace-0.7.3-2.noarch",
        "freebie-1-1.noarch",
    ];
    let mut nonempty = 0;
    for n in installs {
        let f = rpm_file(n);
        let bytes = std::fs::read(f).unwrap();
        let (new, new_files) = sidecar::packages::native::parse_package_file(&bytes).unwrap();
        let files_of = |p: &sidecar::rpmdb::Package| {
            if p.instance == 0 {
                new_files.clone()
            } else {
                entries.get(&p.instance).cloned().unwrap_or_default()
            }
        };
        let native = sorted(sidecar::packages::native::check::check_install(
            &full.packages,
            &new,
            &files_of,
        ));
        let real = real_problems(&c, &["-U", "--test", "/proc/self/fd/0"], Some(f));
        assert_eq!(native, real, "install {n}");
        nonempty += usize::from(!real.is_empty());
    }
    for name in ["ca-certificates", "freebie", "libfoo", "caretpkg", "app"] {
        let target = full.packages.iter().find(|p| p.name == name).unwrap();
        let native = sorted(sidecar::packages::native::check::check_erase(
            &full.packages,
            target,
        ));
        let real = real_problems(&c, &["-e", "--test", name], None);
        assert_eq!(native, real, "erase {name}");
        nonempty += usize::from(!real.is_empty());
    }
    assert!(
        nonempty >= 10,
        "the cases should mostly be problems ({nonempty})"
    );
}

/// What a %post prints is the package's output, never one of rpm's problems: rpm installed
/// it (exit 0), so the reply is `installed`, whatever the scriptlet wrote and where.
#[test]
fn scriptlet_output_is_never_a_problem() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = RpmContainer::start(&BASE, false);
    let server = Server::start(&[]);
    let (status, v) = server.put_rpm(c.short(), rpm_file("chatty-1-1.noarch"), "");
    assert!(c.rpm_qa().contains(&"chatty-1-1.noarch".to_string()));
    assert_eq!(
        (status, v["status"].as_str()),
        (200, Some("installed")),
        "{v}"
    );
    assert!(v.get("problems").is_none(), "{v}");
    let out = v["output"].as_str().unwrap_or("");
    assert!(
        out.contains("libchat is needed by") && out.contains("conflicts between attempted"),
        "{v}"
    );
}

/// Transactions queued behind another on the same container answer what they found when
/// their turn came: the second of two identical uploads is `already-installed`, the second
/// of two identical erases `not-installed`, not a `failed` with rpm's complaint.
#[test]
fn the_same_transaction_twice_while_queued() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = RpmContainer::start(&BASE, false);
    let server = Server::start(&[]);
    let s = c.short().to_string();
    let url = server.url.clone();
    // slowpost's %post sleeps 3 s: everything after it queues.
    let slow = {
        let (url, s) = (url.clone(), s.clone());
        std::thread::spawn(move || {
            curl(&[
                "--digest",
                "--user",
                &auth(),
                "-T",
                rpm_file("slowpost-1-1.noarch").to_str().unwrap(),
                &format!("{url}/{s}/rpms"),
            ])
        })
    };
    std::thread::sleep(Duration::from_millis(1200));
    let mut queued = Vec::new();
    for _ in 0..2 {
        let (u, c2) = (url.clone(), s.clone());
        queued.push(std::thread::spawn(move || {
            curl(&[
                "--digest",
                "--user",
                &auth(),
                "-T",
                rpm_file("ltrace-0.7.3-1.noarch").to_str().unwrap(),
                &format!("{u}/{c2}/rpms"),
            ])
        }));
        let (url, s) = (url.clone(), s.clone());
        queued.push(std::thread::spawn(move || {
            curl(&[
                "--digest",
                "--user",
                &auth(),
                "-X",
                "DELETE",
                &format!("{url}/{s}/rpms/freebie"),
            ])
        }));
    }
    let mut got: Vec<(u16, String)> = queued
        .into_iter()
        .map(|t| {
            let (status, body) = t.join().unwrap();
            let v: Value = serde_json::from_str(&body).unwrap_or(Value::String(body));
            (status, v["status"].as_str().unwrap_or("?").to_string())
        })
        .collect();
    got.sort();
    assert_eq!(slow.join().unwrap().0, 200);
    assert_eq!(
        got,
        vec![
            (200, "already-installed".to_string()),
            (200, "erased".to_string()),
            (200, "installed".to_string()),
            (404, "not-installed".to_string()),
        ]
    );
    let qa = c.rpm_qa();
    assert!(qa.contains(&"ltrace-0.7.3-1.noarch".to_string()), "{qa:?}");
    assert!(!qa.iter().any(|p| p.starts_with("freebie")), "{qa:?}");
}

/// An upload whose header index lies (an entry's data offset far past the header's data,
/// an entry count whose size overflows 32 bits) is a 422 `bad_package` naming the headers,
/// never a 500 from inside the parser.
#[test]
fn a_header_index_that_lies_is_a_bad_package() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = RpmContainer::start(&BASE, false);
    let server = Server::start(&[]);
    let dir = TempDir::new("liarpm");
    let good = std::fs::read(rpm_file("ltrace-0.7.3-1.noarch")).unwrap();
    // The signature header follows the 96-byte lead: magic (8), entry count (4), data size
    // (4), then 16-byte entries (tag, type, offset, count).
    assert_eq!(&good[96..99], &[0x8e, 0xad, 0xe8]);
    let mut far_offset = good.clone();
    far_offset[96 + 16 + 8..96 + 16 + 12].copy_from_slice(&0x7fff_0000u32.to_be_bytes());
    let mut many_entries = good.clone();
    many_entries[96 + 8..96 + 12].copy_from_slice(&0x1000_0001u32.to_be_bytes());
    for (name, bytes) in [("far-offset", far_offset), ("many-entries", many_entries)] {
        let f = dir.path().join(format!("{name}.rpm"));
        std::fs::write(&f, bytes).unwrap();
        let (status, v) = server.put_rpm(c.short(), &f, "");
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (422, Some("bad_package")),
            "{name}: {v}"
        );
        assert!(server.alive());
    }
}

/// A problem is never dropped: a conflict with a package named `file` ("file < 2 conflicts
/// with (installed) guard-1-1.noarch") is rpm's CONFLICT (5) like any other, not output.
#[test]
fn a_conflict_on_a_package_named_file_is_a_problem() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = RpmContainer::start(&BASE, false);
    let server = Server::start(&[]);
    let s = c.short();
    let (status, v) = server.put_rpm(s, rpm_file("guard-1-1.noarch"), "");
    assert_eq!(
        (status, v["status"].as_str()),
        (200, Some("installed")),
        "{v}"
    );
    let guard = server.json(&format!("/{s}/rpms/guard"))[0]["instance"]
        .as_u64()
        .unwrap();
    let before = c.layer_state();
    let (status, v) = server.put_rpm(s, rpm_file("file-1-1.noarch"), "");
    assert_eq!((status, v["status"].as_str()), (409, Some("failed")), "{v}");
    assert_eq!(
        v["problems"],
        serde_json::json!([[
            "file < 2 conflicts with (installed) guard-1-1.noarch",
            [5, "file < 2", guard]
        ]]),
        "{v}"
    );
    assert_eq!(c.layer_state(), before);
}

/// `sidecar rpm-install` hands rpm a private copy of the package (a memfd), as the server
/// does, never the operator's file itself: a container's own `rpm` (here a wrapper that
/// writes to what it was given) must not reach a file on the host through
/// `/proc/self/fd/0`.
#[test]
fn the_command_line_gives_rpm_a_copy_not_the_operators_file() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = RpmContainer::start(&BASE, false);
    let environ = std::fs::read(format!("/proc/{}/environ", c.init)).unwrap();
    let path = String::from_utf8_lossy(&environ)
        .split('\0')
        .find_map(|kv| kv.strip_prefix("PATH=").map(str::to_string))
        .unwrap_or_else(|| "/usr/local/bin:/usr/bin".into());
    let first = path.split(':').next().unwrap().to_string();
    assert_ne!(first, "/usr/bin", "PATH={path}");
    let dir = format!("/proc/{}/root{first}", c.init);
    std::fs::create_dir_all(&dir).unwrap();
    let wrapper = format!("{dir}/rpm");
    std::fs::write(
        &wrapper,
        "#!/bin/sh\n[ \"$1\" = -U ] && echo written-by-the-container >> /proc/self/fd/0\nexec /usr/bin/rpm \"$@\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let tmp = TempDir::new("operator");
    let mine = tmp.path().join("ltrace.rpm");
    std::fs::copy(rpm_file("ltrace-0.7.3-1.noarch"), &mine).unwrap();
    let before = std::fs::read(&mine).unwrap();
    let out = Command::new(SIDECAR)
        .args(["rpm-install", c.short(), mine.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    let after = std::fs::read(&mine).unwrap();
    assert!(
        after == before,
        "the container wrote into the operator's file: {:?}",
        String::from_utf8_lossy(&after[before.len().min(after.len())..])
    );
    // rpm ran (and refused the copy the wrapper appended to).
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(v["method"], "rpm", "{v}");
}

/// Every `test=1` reply says `"test": true` (DESIGN.md), the ones answered without running
/// rpm too: `already-installed` and `not-installed`.
#[test]
fn test_replies_say_so_even_without_rpm_running() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = RpmContainer::start(&BASE, false);
    let server = Server::start(&[]);
    let s = c.short();
    let (status, v) = server.put_rpm(s, rpm_file("ltrace-0.7.3-1.noarch"), "");
    assert_eq!(
        (status, v["status"].as_str()),
        (200, Some("installed")),
        "{v}"
    );
    let (status, v) = server.put_rpm(s, rpm_file("ltrace-0.7.3-1.noarch"), "?test=1");
    assert_eq!(
        (status, v["status"].as_str(), v["test"].as_bool()),
        (200, Some("already-installed"), Some(true)),
        "{v}"
    );
    let (status, v) = erase(&server, s, "no-such-package?test=1");
    assert_eq!(
        (status, v["status"].as_str(), v["test"].as_bool()),
        (404, Some("not-installed"), Some(true)),
        "{v}"
    );
}

/// rpm takes a missing Epoch for 0: the same package rebuilt with an explicit `Epoch: 0`
/// is `already-installed`, not a `failed` transaction with rpm's "is already installed".
#[test]
fn an_explicit_epoch_0_is_the_same_package() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = RpmContainer::start(&BASE, false);
    let server = Server::start(&[]);
    let s = c.short();
    let (status, v) = server.put_rpm(s, rpm_file("ltrace-0.7.3-1.noarch"), "");
    assert_eq!(
        (status, v["status"].as_str()),
        (200, Some("installed")),
        "{v}"
    );
    let top = TempDir::new("epoch0");
    let spec = top.path().join("ltrace.spec");
    std::fs::write(
        &spec,
        "Name: ltrace\nEpoch: 0\nVersion: 0.7.3\nRelease: 1\nSummary: test package\nLicense: MIT\nBuildArch: noarch\nAutoReqProv: no\n%description\ntest\n%install\nmkdir -p %{buildroot}/usr/bin\nprintf '#!/bin/sh\\necho 1\\n' > %{buildroot}/usr/bin/ltrace-test\n%files\n/usr/bin/ltrace-test\n",
    )
    .unwrap();
    let st = Command::new("rpmbuild")
        .args(["--quiet", "--define"])
        .arg(format!("_topdir {}", top.path().display()))
        .arg("-bb")
        .arg(&spec)
        .status()
        .unwrap();
    assert!(st.success());
    let rebuilt = top.path().join("RPMS/noarch/ltrace-0.7.3-1.noarch.rpm");
    let before = c.layer_state();
    let (status, v) = server.put_rpm(s, &rebuilt, "");
    assert_eq!(
        (status, v["status"].as_str()),
        (200, Some("already-installed")),
        "{v}"
    );
    assert_eq!(c.layer_state(), before);
}

/// The sidecar's peak memory, from /proc/<pid>/status (kB).
fn vm_hwm_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// An upload is never held whole in the sidecar's heap (issue 11), not even when it is
/// nearly all header: a package whose header declares 200 MiB of data (within the 256 MiB
/// upload limit) is refused as a bad package without the sidecar's memory growing by it.
#[test]
fn a_huge_header_is_not_read_into_memory() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = RpmContainer::start(&BASE, false);
    let server = Server::start(&[]);
    let good = std::fs::read(rpm_file("ltrace-0.7.3-1.noarch")).unwrap();
    // Lead (96 bytes), then the signature header: 16-byte intro, entries, data, padding to 8.
    let be = |at: usize| u32::from_be_bytes(good[at..at + 4].try_into().unwrap()) as usize;
    let (nindex, hsize) = (be(96 + 8), be(96 + 12));
    let sig_end = 96 + 16 + 16 * nindex + hsize;
    let main = sig_end.div_ceil(8) * 8;
    let data = 200usize << 20;
    let mut bytes = good[..main].to_vec();
    bytes.extend_from_slice(&[0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0]);
    bytes.extend_from_slice(&1u32.to_be_bytes());
    bytes.extend_from_slice(&(data as u32).to_be_bytes());
    // One entry: RPMTAG_NAME (1000), STRING (6), offset 0, count 1.
    for v in [1000u32, 6, 0, 1] {
        bytes.extend_from_slice(&v.to_be_bytes());
    }
    let dir = TempDir::new("hugehdr");
    let f = dir.path().join("huge.rpm");
    let file = std::fs::File::create(&f).unwrap();
    std::io::Write::write_all(&mut &file, &bytes).unwrap();
    file.set_len((bytes.len() + data) as u64).unwrap(); // zeros, sparse on disk
    drop(file);
    let pid = server.child.id();
    let before = vm_hwm_kb(pid);
    let (status, v) = server.put_rpm(c.short(), &f, "");
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (422, Some("bad_package")),
        "{v}"
    );
    let grew = vm_hwm_kb(pid).saturating_sub(before);
    assert!(
        grew < 64 << 10,
        "the sidecar's peak memory grew by {} MiB for a 200 MiB header",
        grew >> 10
    );
}
