//! Native install and erase (issue 12), in containers made with `unshare` that have an RPM
//! database but no rpm: a tmpfs root holding only a static busybox, `/etc/passwd`,
//! `/etc/group` and a SQLite database seeded by Debian's rpm (`rpm --root … -i`). Packages
//! are built here with `rpmbuild`. After each native change, Debian's real rpm, pointed at
//! the container's root (`rpm --root /proc/<pid>/root`), must agree: `-qa`, `-q`, `-qf`, `-V`,
//! `-e`; and what the native path stored must be what rpm itself stores for the same
//! package (the header, save for the install time, and every index row).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use common::*;

const TOOLS: [&str; 6] = [
    "unshare",
    "curl",
    "rpm",
    "rpmbuild",
    "nsenter",
    "/bin/busybox",
];

/// name-version-release, extra preamble, %install lines, %files lines, scriptlets.
struct Pkg {
    nvr: (&'static str, &'static str, &'static str),
    preamble: &'static str,
    install: &'static str,
    files: &'static str,
    scripts: &'static str,
}

const SPECS: &[Pkg] = &[
    Pkg {
        nvr: ("base", "1", "1"),
        preamble: "Provides: /bin/sh",
        install: "mkdir -p %{buildroot}/etc && echo base > %{buildroot}/etc/base.txt",
        files: "/etc/base.txt",
        scripts: "",
    },
    Pkg {
        nvr: ("seeded", "1", "1"),
        preamble: "Requires: base",
        install: "mkdir -p %{buildroot}/usr/share/seeded %{buildroot}/etc\n\
                  echo one > %{buildroot}/usr/share/seeded/one\n\
                  echo conf > %{buildroot}/etc/seeded.conf\n\
                  ln -s one %{buildroot}/usr/share/seeded/link",
        files: "/usr/share/seeded\n%config /etc/seeded.conf",
        scripts: "%preun\necho bye",
    },
    Pkg {
        nvr: ("tool", "1", "1"),
        preamble: "Requires: base >= 1",
        install: "mkdir -p %{buildroot}/usr/bin %{buildroot}/usr/share/tool %{buildroot}/etc\n\
                  printf '#!/bin/sh\\necho tool 1\\n' > %{buildroot}/usr/bin/tool\n\
                  echo data > %{buildroot}/usr/share/tool/data.txt\n\
                  echo only-in-1 > %{buildroot}/usr/share/tool/old.txt\n\
                  echo same > %{buildroot}/usr/share/tool/h1\n\
                  ln %{buildroot}/usr/share/tool/h1 %{buildroot}/usr/share/tool/h2\n\
                  ln -s data.txt %{buildroot}/usr/share/tool/link\n\
                  echo conf-1 > %{buildroot}/etc/tool.conf",
        files: "%attr(0755,root,root) /usr/bin/tool\n/usr/share/tool\n%config(noreplace) /etc/tool.conf\n%ghost /var/log/tool.log",
        scripts: "%post\necho installed",
    },
    Pkg {
        nvr: ("tool", "2", "1"),
        preamble: "Requires: base >= 1",
        install: "mkdir -p %{buildroot}/usr/bin %{buildroot}/usr/share/tool %{buildroot}/etc\n\
                  printf '#!/bin/sh\\necho tool 2\\n' > %{buildroot}/usr/bin/tool\n\
                  echo data > %{buildroot}/usr/share/tool/data.txt\n\
                  echo conf-2 > %{buildroot}/etc/tool.conf",
        files: "%attr(0755,root,root) /usr/bin/tool\n/usr/share/tool\n%config(noreplace) /etc/tool.conf",
        scripts: "",
    },
    Pkg {
        nvr: ("needy", "1", "1"),
        preamble: "Requires: libmissing >= 2\nRequires: /etc/base.txt",
        install: "",
        files: "",
        scripts: "",
    },
    Pkg {
        nvr: ("clash", "1", "1"),
        preamble: "",
        install: "mkdir -p %{buildroot}/etc && echo other > %{buildroot}/etc/base.txt",
        files: "/etc/base.txt",
        scripts: "",
    },
    Pkg {
        nvr: ("suid", "1", "1"),
        preamble: "",
        install: "mkdir -p %{buildroot}/usr/bin && echo s > %{buildroot}/usr/bin/suid && echo c > %{buildroot}/usr/bin/capped",
        files: "%attr(4755,nosuchuser,nosuchgroup) /usr/bin/suid\n%caps(cap_net_raw=ep) %attr(0755,root,root) /usr/bin/capped",
        scripts: "",
    },
    Pkg {
        nvr: ("devnode", "1", "1"),
        preamble: "",
        install: "mkdir -p %{buildroot}/usr/share/devnode && echo x > %{buildroot}/usr/share/devnode/x",
        files: "/usr/share/devnode/x\n%dev(c,1,3) %attr(0666,root,root) /usr/share/devnode/null",
        scripts: "",
    },
    // Many files of owners the container does not know: a warning each, a long reply.
    Pkg {
        nvr: ("many", "1", "1"),
        preamble: "",
        install: "mkdir -p %{buildroot}/usr/share/many\n\
                  for i in $(seq 1 1500); do echo $i > %{buildroot}/usr/share/many/f$i; done",
        files: "%defattr(0644,nosuchuser,nosuchgroup,0755)\n/usr/share/many",
        scripts: "",
    },
    // Obsoletes tool, and puts its own /usr/bin/tool: rpm -U erases tool.
    Pkg {
        nvr: ("newtool", "1", "1"),
        preamble: "Obsoletes: tool",
        install: "mkdir -p %{buildroot}/usr/bin && echo newtool > %{buildroot}/usr/bin/tool",
        files: "/usr/bin/tool",
        scripts: "",
    },
    // base's /etc/base.txt under another name, where the container links /etc2 to etc.
    Pkg {
        nvr: ("alias", "1", "1"),
        preamble: "",
        install: "mkdir -p %{buildroot}/etc2 && echo other > %{buildroot}/etc2/base.txt",
        files: "/etc2/base.txt",
        scripts: "",
    },
    // For the hostile edits of tests/tools/repack.py: names of equal length to swap.
    Pkg {
        nvr: ("evil", "1", "1"),
        preamble: "",
        install: "mkdir -p %{buildroot}/opt/ev/lx %{buildroot}/opt/ev/zz\n\
                  echo payload-one > %{buildroot}/opt/ev/lx/f\n\
                  echo payload-two > %{buildroot}/opt/ev/zz/g\n\
                  ln -s /etc %{buildroot}/opt/ev/ln",
        files: "/opt/ev/lx/f\n/opt/ev/zz/g\n/opt/ev/ln",
        scripts: "",
    },
];

/// The packages, built once per test binary (uncompressed payloads for the hostile edits
/// of `evil`, xz for the rest as distributions ship): their files by NEVRA.
fn packages() -> &'static BTreeMap<String, PathBuf> {
    static BUILT: OnceLock<BTreeMap<String, PathBuf>> = OnceLock::new();
    BUILT.get_or_init(|| {
        let top = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("sidecar-native-rpms-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&top);
        std::fs::create_dir_all(&top).unwrap();
        let mut out = BTreeMap::new();
        for (i, p) in SPECS.iter().enumerate() {
            let (n, v, r) = p.nvr;
            let spec = format!(
                "Name: {n}\nVersion: {v}\nRelease: {r}\nSummary: test\nLicense: MIT\nBuildArch: noarch\nAutoReqProv: no\n{}\n%description\ntest\n%install\n{}\n%files\n{}\n{}\n",
                p.preamble, p.install, p.files, p.scripts
            );
            let f = top.join(format!("{i}.spec"));
            std::fs::write(&f, spec).unwrap();
            let payload = if n == "evil" { "w0.ufdio" } else { "w2.xzdio" };
            let out_ = Command::new("rpmbuild")
                .args(["--quiet", "--define"])
                .arg(format!("_topdir {}", top.display()))
                .args(["--define", &format!("_binary_payload {payload}")])
                .arg("-bb")
                .arg(&f)
                .output()
                .unwrap();
            assert!(out_.status.success(), "rpmbuild {n}: {}", String::from_utf8_lossy(&out_.stderr));
            let nevra = format!("{n}-{v}-{r}.noarch");
            out.insert(nevra.clone(), top.join("RPMS/noarch").join(format!("{nevra}.rpm")));
        }
        out
    })
}

fn rpm_file(nevra: &str) -> &'static Path {
    packages()
        .get(nevra)
        .unwrap_or_else(|| panic!("no package {nevra}"))
}

/// A container with a database and no rpm: a tmpfs root in its own mount namespace.
struct Micro {
    ns: LayerContainer,
    /// The rpm that seeded the database and checks it: Debian's (SQLite) or the ndb one.
    rpm_bin: PathBuf,
    _seed: TempDir,
}

impl std::ops::Deref for Micro {
    type Target = LayerContainer;
    fn deref(&self) -> &LayerContainer {
        &self.ns
    }
}

impl Micro {
    fn start(installed: &[&str]) -> Micro {
        Micro::start_with(installed, Path::new("rpm"))
    }

    /// With the database made by `rpm_bin` (the ndb-capable rpm makes an ndb one).
    fn start_with(installed: &[&str], rpm_bin: &Path) -> Micro {
        Micro::start_opts(installed, rpm_bin, None)
    }

    /// With `drop` (capsh's `--drop` list) taken from the container's bounding set, as a
    /// runtime's default does: its root is then not all-powerful.
    fn start_opts(installed: &[&str], rpm_bin: &Path, drop: Option<&str>) -> Micro {
        let id = random_id();
        let seed = TempDir::new("nativeseed");
        let s = seed.path();
        for d in ["bin", "etc", "proc", "dev", "tmp", "var/lib/rpm"] {
            std::fs::create_dir_all(s.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", s.join("bin/busybox")).unwrap();
        for a in ["sh", "sleep", "cat", "ls", "grep", "mount"] {
            std::os::unix::fs::symlink("busybox", s.join("bin").join(a)).unwrap();
        }
        std::fs::write(
            s.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\ndaemon:x:2:2::/:/bin/false\n",
        )
        .unwrap();
        std::fs::write(s.join("etc/group"), "root:x:0:\ndaemon:x:2:\n").unwrap();
        real_rpm_with(rpm_bin, s, &["--initdb"]);
        for n in installed {
            real_rpm_with(
                rpm_bin,
                s,
                &[
                    "-i",
                    "--nodeps",
                    "--noscripts",
                    rpm_file(n).to_str().unwrap(),
                ],
            );
        }
        let layer = format!("/tmp/sidecar-native-{}", &id[..12]);
        let enter = match drop {
            None => "chroot $L /bin/sh -c".to_string(),
            Some(d) => format!("capsh --drop={d} --chroot=$L --shell=/bin/sh -- -c"),
        };
        let script = format!(
            "set -e; L={layer}; mkdir -p $L; mount -t tmpfs tmpfs $L; cp -a {seed}/. $L/; \
             mount --rbind /dev $L/dev; hostname {host}; mount -t proc proc $L/proc; \
             exec {enter} 'until grep -q libpod-{id} /proc/self/cgroup; do sleep 0.02; done; \
             exec sleep 100000'",
            seed = s.display(),
            host = &id[..12],
        );
        Micro {
            ns: LayerContainer::start(id, layer, &script),
            rpm_bin: rpm_bin.to_path_buf(),
            _seed: seed,
        }
    }

    /// The container's root as this machine reaches it.
    fn root(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.init))
    }

    /// Debian's rpm on the container's root and database: run in the container's mount
    /// namespace, where the root is a mount point rpm can name (SQLite resolves the path it
    /// opens, and `/proc/<pid>/root` resolves to a path of that namespace).
    fn rpm(&self, args: &[&str]) -> Output {
        Command::new("nsenter")
            .args(["-t", &self.init.to_string(), "-m", "--"])
            .arg(&self.rpm_bin)
            .args(["--root", &self.layer, "--dbpath", "/var/lib/rpm"])
            .args(args)
            .env("LC_ALL", "C")
            .output()
            .unwrap()
    }

    fn qa(&self) -> Vec<String> {
        let out = self.rpm(&["-qa"]);
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "rpm -qa: {}",
            text(&out)
        );
        let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        v.sort();
        v
    }

    /// Every file under the root (but /proc, /dev and SQLite's `-shm`) with its type, mode,
    /// owner, size and content digest: what a failed transaction must leave as it was.
    fn state(&self) -> String {
        let out = Command::new("nsenter")
            .args(["-t", &self.init.to_string(), "-m", "-r", "--", "/bin/sh", "-c"])
            .arg("cd / && for f in $(find / -path /proc -prune -o -path /dev -prune -o ! -name '*-shm' -print | sort); do \
                  if [ -f $f ]; then echo \"$f $(stat -c '%F %a %u:%g %s' $f) $(md5sum < $f)\"; else echo \"$f $(stat -c '%F %a %u:%g' $f)\"; fi; done")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn path(&self, p: &str) -> PathBuf {
        self.root().join(p.trim_start_matches('/'))
    }
}

fn real_rpm(root: &Path, args: &[&str]) {
    real_rpm_with(Path::new("rpm"), root, args)
}

fn real_rpm_with(rpm_bin: &Path, root: &Path, args: &[&str]) {
    let out = Command::new(rpm_bin)
        .arg("--root")
        .arg(root)
        .args(["--dbpath", "/var/lib/rpm"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rpm {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn install_natively_then_rpm_agrees() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = Micro::start(&["base-1-1.noarch"]);
    assert!(!c.path("/usr/bin/rpm").exists() && !c.path("/bin/rpm").exists());
    let server = Server::start(&[]);
    let (status, v) = server.put_rpm(c.short(), rpm_file("tool-1-1.noarch"), "");
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "installed", "{v}");
    assert_eq!(v["method"], "native", "{v}");
    assert_eq!(v["signature"], "not checked", "{v}");
    assert_eq!(v["skipped_scriptlets"], serde_json::json!(["%post"]), "{v}");
    assert_eq!(v["package"]["name"], "tool", "{v}");
    // The reply's package is the one the database now holds, install date included.
    let listed = server.json(&format!("/{}/rpms", c.short()));
    let stored = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "tool")
        .unwrap();
    for field in ["version", "release", "arch", "installdate"] {
        assert_eq!(
            v["package"][field], stored[field],
            "{field}: {v} vs {stored}"
        );
    }
    // The files, with the header's modes, links and content.
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let tool = std::fs::metadata(c.path("/usr/bin/tool")).unwrap();
    assert_eq!(tool.permissions().mode() & 0o7777, 0o755);
    assert_eq!(
        std::fs::read_to_string(c.path("/usr/bin/tool")).unwrap(),
        "#!/bin/sh\necho tool 1\n"
    );
    assert_eq!(
        std::fs::read_link(c.path("/usr/share/tool/link")).unwrap(),
        Path::new("data.txt")
    );
    let (h1, h2) = (
        std::fs::metadata(c.path("/usr/share/tool/h1")).unwrap(),
        std::fs::metadata(c.path("/usr/share/tool/h2")).unwrap(),
    );
    assert_eq!(
        (h1.ino(), h1.nlink()),
        (h2.ino(), 2),
        "a hardlink set stays one inode"
    );
    assert!(
        !c.path("/var/log/tool.log").exists(),
        "no %ghost file is created"
    );
    // No temporary name is left anywhere.
    let leftovers = Command::new("find")
        .arg(c.path("/usr"))
        .arg(c.path("/etc"))
        .args(["-name", "*;*"])
        .output()
        .unwrap();
    assert!(leftovers.stdout.is_empty(), "{}", text(&leftovers));
    // Debian's rpm agrees.
    assert_eq!(c.qa(), ["base-1-1.noarch", "tool-1-1.noarch"]);
    let q = c.rpm(&["-q", "tool"]);
    assert!(q.status.success(), "{}", text(&q));
    let v_ = c.rpm(&["-V", "--nodeps", "--noscripts", "tool"]);
    assert!(
        v_.status.success() && v_.stdout.is_empty(),
        "rpm -V: {}",
        text(&v_)
    );
    let qf = c.rpm(&["-qf", "/usr/bin/tool"]);
    assert_eq!(
        String::from_utf8_lossy(&qf.stdout),
        "tool-1-1.noarch\n",
        "{}",
        text(&qf)
    );
    let wp = c.rpm(&["-q", "--whatrequires", "base"]);
    assert_eq!(
        String::from_utf8_lossy(&wp.stdout),
        "tool-1-1.noarch\n",
        "{}",
        text(&wp)
    );
    let vdb = c.rpm(&["--verifydb"]);
    assert!(vdb.status.success(), "{}", text(&vdb));
    // What was stored is what rpm stores for the same package.
    same_as_rpm_stores(&c, "tool-1-1.noarch");
    // Replies that run nothing name the path too.
    let (status, v) = server.put_rpm(c.short(), rpm_file("tool-1-1.noarch"), "");
    assert_eq!(
        (status, v["status"].as_str(), v["method"].as_str()),
        (200, Some("already-installed"), Some("native")),
        "{v}"
    );
    let (status, v) = server.request("DELETE", &format!("/{}/rpms/no-such-package", c.short()));
    assert_eq!(
        (status, v["status"].as_str(), v["method"].as_str()),
        (404, Some("not-installed"), Some("native")),
        "{v}"
    );
    // And rpm can erase it.
    let e = c.rpm(&["-e", "--noscripts", "tool"]);
    assert!(e.status.success(), "{}", text(&e));
    assert!(!c.path("/usr/bin/tool").exists());
    assert_eq!(c.qa(), ["base-1-1.noarch"]);
}

/// Installs `nevra` with Debian's rpm into a scratch database and compares, row by row, what
/// it stored with what the container's database holds for the package of that name: the
/// header (all but INSTALLTIME, INSTALLTID) and every index table (keys and idx).
fn same_as_rpm_stores(c: &Micro, nevra: &str) {
    let scratch = TempDir::new("nativecmp");
    real_rpm(scratch.path(), &["--initdb"]);
    real_rpm(
        scratch.path(),
        &[
            "-i",
            "--justdb",
            "--nodeps",
            "--noscripts",
            rpm_file(nevra).to_str().unwrap(),
        ],
    );
    let name = nevra.split('-').next().unwrap();
    // Python's sqlite3 in the container's mount namespace (see `Micro::rpm`).
    let dump = |db: &Path| {
        let out = Command::new("nsenter")
            .args(["-t", &c.init.to_string(), "-m", "--", "python3", "-c"])
            .arg(DUMP_PY)
            .arg(db)
            .arg(name)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let theirs = dump(&scratch.path().join("var/lib/rpm/rpmdb.sqlite"));
    let ours = dump(&Path::new(&c.layer).join("var/lib/rpm/rpmdb.sqlite"));
    assert_eq!(ours, theirs);
}

/// Prints a package's header entries (tag, type, count, data; install time and TID left
/// out) and its rows in every index table, sorted.
const DUMP_PY: &str = r#"
import sqlite3, struct, sys
db = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
hnum = db.execute("select hnum from Name where key = ?", (sys.argv[2],)).fetchone()[0]
blob = db.execute("select blob from Packages where hnum = ?", (hnum,)).fetchone()[0]
il, dl = struct.unpack(">II", blob[:8])
data = blob[8 + 16 * il:]
ents = [struct.unpack(">IIiI", blob[8 + 16 * i:24 + 16 * i]) for i in range(il)]
offs = sorted(set([o for _, _, o, _ in ents] + [dl]))
for tag, ty, off, cnt in ents:
    if tag in (1008, 1128):
        print(tag, ty, cnt, "(time)")
        continue
    end = offs[offs.index(off) + 1]
    print(tag, ty, off, cnt, data[off:end].hex())
names = "Name Basenames Group Requirename Providename Conflictname Obsoletename Triggername Dirnames Installtid Sigmd5 Sha1header Filetriggername Transfiletriggername Recommendname Suggestname Supplementname Enhancename"
for t in names.split():
    rows = sorted((k.hex() if isinstance(k, bytes) else k, i) for k, i in db.execute("select key, idx from '%s' where hnum = ?" % t, (hnum,)) if t != 'Installtid')
    print(t, rows)
"#;

#[test]
fn erase_natively_what_rpm_installed() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = Micro::start(&["base-1-1.noarch", "seeded-1-1.noarch"]);
    // A modified %config file is kept as .rpmsave, as rpm keeps it.
    std::fs::write(c.path("/etc/seeded.conf"), "changed here\n").unwrap();
    let server = Server::start(&[]);
    // base is still required by seeded: rpm's problem, nothing erased.
    let before = c.state();
    let (status, v) = server.request("DELETE", &format!("/{}/rpms/base", c.short()));
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["method"], "native");
    let problems = v["problems"].as_array().unwrap();
    assert!(
        problems
            .iter()
            .any(|p| p[0] == "base is needed by (installed) seeded-1-1.noarch" && p[1][0] == 4),
        "{v}"
    );
    assert_eq!(c.state(), before, "a refused erase changes nothing");
    let (status, v) = server.request("DELETE", &format!("/{}/rpms/seeded", c.short()));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "erased", "{v}");
    assert_eq!(v["method"], "native");
    assert_eq!(
        v["skipped_scriptlets"],
        serde_json::json!(["%preun"]),
        "{v}"
    );
    assert!(
        v["output"]
            .as_str()
            .unwrap()
            .contains("/etc/seeded.conf saved as /etc/seeded.conf.rpmsave"),
        "{v}"
    );
    assert_eq!(c.qa(), ["base-1-1.noarch"]);
    assert!(
        !c.path("/usr/share/seeded").exists(),
        "its files and directory are gone"
    );
    assert!(!c.path("/etc/seeded.conf").exists());
    assert_eq!(
        std::fs::read_to_string(c.path("/etc/seeded.conf.rpmsave")).unwrap(),
        "changed here\n"
    );
    assert!(
        c.path("/etc/base.txt").exists(),
        "another package's file stays"
    );
    let vdb = c.rpm(&["--verifydb"]);
    assert!(vdb.status.success(), "{}", text(&vdb));
    let qf = c.rpm(&["-qf", "/usr/share/seeded/one"]);
    assert!(!qf.status.success(), "{}", text(&qf));
}

#[test]
fn update_natively_with_config_rules() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = Micro::start(&["base-1-1.noarch"]);
    let server = Server::start(&[]);
    let (status, v) = server.put_rpm(c.short(), rpm_file("tool-1-1.noarch"), "");
    assert_eq!(status, 200, "{v}");
    std::fs::write(c.path("/etc/tool.conf"), "mine\n").unwrap();
    let (status, v) = server.put_rpm(c.short(), rpm_file("tool-2-1.noarch"), "");
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "updated", "{v}");
    assert_eq!(c.qa(), ["base-1-1.noarch", "tool-2-1.noarch"]);
    assert_eq!(
        std::fs::read_to_string(c.path("/usr/bin/tool")).unwrap(),
        "#!/bin/sh\necho tool 2\n"
    );
    // A changed %config(noreplace): the engineer's file stays, the new one is .rpmnew.
    assert_eq!(
        std::fs::read_to_string(c.path("/etc/tool.conf")).unwrap(),
        "mine\n"
    );
    assert_eq!(
        std::fs::read_to_string(c.path("/etc/tool.conf.rpmnew")).unwrap(),
        "conf-2\n"
    );
    assert!(
        v["output"]
            .as_str()
            .unwrap()
            .contains("/etc/tool.conf created as /etc/tool.conf.rpmnew"),
        "{v}"
    );
    // A file only the old version had is gone.
    assert!(!c.path("/usr/share/tool/old.txt").exists());
    let v_ = c.rpm(&["-V", "--nodeps", "--noscripts", "tool"]);
    assert_eq!(
        String::from_utf8_lossy(&v_.stdout),
        "S.5....T.  c /etc/tool.conf\n",
        "{}",
        text(&v_)
    );
    same_as_rpm_stores(&c, "tool-2-1.noarch");
}

#[test]
fn native_problems_and_test_mode_change_nothing() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = Micro::start(&["base-1-1.noarch"]);
    let server = Server::start(&[]);
    let before = c.state();
    let (status, v) = server.put_rpm(c.short(), rpm_file("needy-1-1.noarch"), "");
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["status"], "failed");
    assert_eq!(
        v["problems"][0][0], "libmissing >= 2 is needed by needy-1-1.noarch",
        "{v}"
    );
    let (status, v) = server.put_rpm(c.short(), rpm_file("clash-1-1.noarch"), "");
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["problems"][0][1][0], 7, "a file conflict: {v}");
    let (status, v) = server.put_rpm(c.short(), rpm_file("tool-1-1.noarch"), "?test=1");
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["status"].as_str(), v["test"].as_bool()),
        (Some("installed"), Some(true)),
        "{v}"
    );
    assert_eq!(c.state(), before, "problems and test=1 change nothing");
    assert_eq!(c.qa(), ["base-1-1.noarch"]);
}

#[test]
fn owners_and_capabilities_as_rpm_sets_them() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = Micro::start(&["base-1-1.noarch"]);
    let server = Server::start(&[]);
    let (status, v) = server.put_rpm(c.short(), rpm_file("suid-1-1.noarch"), "");
    assert_eq!(status, 200, "{v}");
    let out = v["output"].as_str().unwrap_or("");
    assert!(
        out.contains("user nosuchuser does not exist - using root"),
        "{v}"
    );
    assert!(
        out.contains("group nosuchgroup does not exist - using root"),
        "{v}"
    );
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(c.path("/usr/bin/suid")).unwrap();
    assert_eq!(
        (m.uid(), m.gid(), m.mode() & 0o7777),
        (0, 0, 0o755),
        "an unknown owner loses the setuid bit"
    );
    let caps = Command::new("python3")
        .arg("-c")
        .arg("import os, sys; print(os.getxattr(sys.argv[1], 'security.capability').hex())")
        .arg(c.path("/usr/bin/capped"))
        .output()
        .unwrap();
    // VFS_CAP_REVISION_2 with the effective flag, CAP_NET_RAW (13) permitted.
    assert_eq!(
        String::from_utf8_lossy(&caps.stdout).trim(),
        "0100000200200000000000000000000000000000",
        "{}",
        text(&caps)
    );
    let v_ = c.rpm(&["-V", "--nodeps", "--noscripts", "suid"]);
    // rpm -V compares with what rpm itself would have made (`rpmfilesStat`: an unknown owner
    // is root, without the setuid bit) and the header's capabilities: nothing differs.
    assert!(
        v_.status.success() && v_.stdout.is_empty(),
        "rpm -V: {}",
        text(&v_)
    );
}

/// A process that holds rpm's lock of `c`'s database (as rpm takes it: `fcntl`) from when
/// this returns until its stdin is closed.
fn hold_rpm_lock(c: &Micro) -> std::process::Child {
    let mut holder = Command::new("python3")
        .arg("-c")
        .arg("import fcntl, sys; f = open(sys.argv[1], 'a'); fcntl.lockf(f, fcntl.LOCK_EX); print('locked', flush=True); sys.stdin.read()")
        .arg(c.path("/var/lib/rpm/.rpm.lock"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line, "locked\n");
    holder
}

/// `tests/tools/repack.py`: a hostile copy of `nevra` with its digests redone.
fn repack(nevra: &str, tag: &str, ops: &[&str]) -> PathBuf {
    let out = rpm_file(nevra).with_file_name(format!("{tag}-{nevra}.rpm"));
    let o = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/tools/repack.py"
        ))
        .arg(rpm_file(nevra))
        .arg(&out)
        .args(ops)
        .output()
        .unwrap();
    assert!(o.status.success(), "repack {tag}: {}", text(&o));
    out
}

#[test]
fn hostile_packages_are_refused_and_change_nothing() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = Micro::start(&["base-1-1.noarch"]);
    let server = Server::start(&[]);
    let cases = [
        (
            "dotdot",
            repack(
                "evil-1-1.noarch",
                "dotdot",
                &["sub:/opt/ev/lx/=/opt/ev/../"],
            ),
            "not a normal absolute path",
        ),
        (
            "through-own-symlink",
            repack(
                "evil-1-1.noarch",
                "through",
                &["sub:/opt/ev/lx/=/opt/ev/ln/"],
            ),
            "a symlink of the same package",
        ),
        (
            "size-lie",
            repack("evil-1-1.noarch", "sizelie", &["cpiosize:./opt/ev/zz/g=5"]),
            "payload",
        ),
        (
            "size-lie-up",
            repack(
                "evil-1-1.noarch",
                "sizelieup",
                &["cpiosize:./opt/ev/lx/f=4000"],
            ),
            "payload",
        ),
        (
            "ends-early",
            repack("evil-1-1.noarch", "short", &["truncate:200"]),
            "payload",
        ),
        (
            "device",
            rpm_file("devnode-1-1.noarch").to_path_buf(),
            "device node",
        ),
    ];
    // The genuine package goes in: the edits, not the package, are what is refused.
    let genuine_state = c.state();
    for (what, file, why) in &cases {
        let (status, v) = server.put_rpm(c.short(), file, "");
        assert_eq!(
            (status, v["status"].as_str()),
            (409, Some("failed")),
            "{what}: {v}"
        );
        assert_eq!(v["method"], "native", "{what}: {v}");
        let output = v["output"].as_str().unwrap_or("");
        assert!(output.contains(why), "{what}: {v}");
        assert_eq!(
            c.state(),
            genuine_state,
            "{what}: the container is as it was"
        );
        assert_eq!(c.qa(), ["base-1-1.noarch"], "{what}");
    }
    let (status, v) = server.put_rpm(c.short(), rpm_file("evil-1-1.noarch"), "");
    assert_eq!(status, 200, "the unedited package installs: {v}");
}

#[test]
fn symlinks_the_container_planted_are_replaced_or_stay_inside() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = Micro::start(&["base-1-1.noarch"]);
    // A symlink where the package puts a file: replaced, never written through.
    std::fs::create_dir_all(c.path("/usr/bin")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", c.path("/usr/bin/tool")).unwrap();
    // A directory the package uses, a symlink that climbs out of the root: it resolves
    // inside the container's root, never to this machine's directory of that name.
    let host_dir = format!("/tmp/sidecar-native-escape-{}", &c.id[..12]);
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::create_dir_all(c.path(&host_dir)).unwrap();
    std::fs::create_dir_all(c.path("/usr/share")).unwrap();
    std::os::unix::fs::symlink(
        format!("../../../../../..{host_dir}"),
        c.path("/usr/share/tool"),
    )
    .unwrap();
    let passwd = std::fs::read(c.path("/etc/passwd")).unwrap();
    let server = Server::start(&[]);
    let (status, v) = server.put_rpm(c.short(), rpm_file("tool-1-1.noarch"), "");
    let host_entries = std::fs::read_dir(&host_dir).unwrap().count();
    let _ = std::fs::remove_dir_all(&host_dir);
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        std::fs::read(c.path("/etc/passwd")).unwrap(),
        passwd,
        "nothing written through the symlink"
    );
    assert!(std::fs::symlink_metadata(c.path("/usr/bin/tool"))
        .unwrap()
        .file_type()
        .is_file());
    assert_eq!(
        host_entries, 0,
        "nothing written to this machine's {host_dir}"
    );
    assert!(
        c.path(&format!("{host_dir}/data.txt")).exists(),
        "the files went inside the container's root"
    );
}

#[test]
fn databases_the_native_path_does_not_write_are_refused() {
    if !privileged(&TOOLS) {
        return;
    }
    // A BerkeleyDB database (one of the fixtures, copied): refused, nothing touched.
    let c = Micro::start(&[]);
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rpmdb/sles12-sp4");
    let rpmdir = c.path("/var/lib/rpm");
    for e in std::fs::read_dir(&rpmdir).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    for e in std::fs::read_dir(&fixture).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() && e.file_name() != "SOURCE" {
            std::fs::copy(e.path(), rpmdir.join(e.file_name())).unwrap();
        }
    }
    let server = Server::start(&[]);
    let before = c.state();
    let (status, v) = server.put_rpm(c.short(), rpm_file("base-1-1.noarch"), "");
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (422, Some("native_unsupported")),
        "{v}"
    );
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("BerkeleyDB"), "{v}");
    // Why the native path was taken, said once.
    assert_eq!(
        message
            .matches("has no usable rpm (no `rpm` on its PATH)")
            .count(),
        1,
        "{v}"
    );
    assert_eq!(c.state(), before);
}

#[test]
fn the_command_line_twins_go_native_too() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = Micro::start(&["base-1-1.noarch"]);
    let out = Command::new(SIDECAR)
        .args(["rpm-install", c.short()])
        .arg(rpm_file("tool-1-1.noarch"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(c.qa(), ["base-1-1.noarch", "tool-1-1.noarch"]);
    let out = Command::new(SIDECAR)
        .args(["rpm-erase", c.short(), "tool"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(c.qa(), ["base-1-1.noarch"]);
    assert!(!c.path("/usr/bin/tool").exists());
}

/// The ndb-capable rpm `scripts/build-ndb-rpm` builds (`make test-deps`); its absence fails
/// under `CI=true`.
fn ndb_rpm() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ndb-rpm/bin/rpm");
    if p.exists() {
        return Some(p);
    }
    let msg = format!(
        "no ndb-capable rpm at {} (run scripts/build-ndb-rpm)",
        p.display()
    );
    if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false") {
        panic!("{msg} (CI=true turns skips into failures)");
    }
    eprintln!("\n!!!!! SKIPPED: {msg} !!!!!\n");
    None
}

#[test]
fn an_ndb_database_natively_then_the_ndb_rpm_agrees() {
    if !privileged(&TOOLS) {
        return;
    }
    let Some(ndb) = ndb_rpm() else { return };
    let c = Micro::start_with(&["base-1-1.noarch", "seeded-1-1.noarch"], &ndb);
    assert!(
        c.path("/var/lib/rpm/Packages.db").exists() && c.path("/var/lib/rpm/Index.db").exists()
    );
    let server = Server::start(&[]);
    let (status, v) = server.put_rpm(c.short(), rpm_file("tool-1-1.noarch"), "");
    assert_eq!(
        (status, v["status"].as_str(), v["method"].as_str()),
        (200, Some("installed"), Some("native")),
        "{v}"
    );
    assert_eq!(
        c.qa(),
        ["base-1-1.noarch", "seeded-1-1.noarch", "tool-1-1.noarch"]
    );
    // A read-only query finds it through the indexes (it does not rebuild them).
    let ok = |args: &[&str]| {
        let o = c.rpm(args);
        let all = text(&o);
        assert!(
            o.status.success() && !all.contains("outdated") && !all.contains("rebuild"),
            "rpm {args:?}: {all}"
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert_eq!(ok(&["-q", "tool"]), "tool-1-1.noarch\n");
    assert_eq!(ok(&["-qf", "/usr/bin/tool"]), "tool-1-1.noarch\n");
    assert_eq!(ok(&["-q", "--whatrequires", "base"]).lines().count(), 2);
    assert_eq!(ok(&["-V", "--nodeps", "--noscripts", "tool"]), "");
    // An update, then an erase of what rpm installed, natively.
    let (status, v) = server.put_rpm(c.short(), rpm_file("tool-2-1.noarch"), "");
    assert_eq!(
        (status, v["status"].as_str()),
        (200, Some("updated")),
        "{v}"
    );
    let (status, v) = server.request("DELETE", &format!("/{}/rpms/seeded", c.short()));
    assert_eq!(
        (status, v["status"].as_str(), v["method"].as_str()),
        (200, Some("erased"), Some("native")),
        "{v}"
    );
    assert_eq!(c.qa(), ["base-1-1.noarch", "tool-2-1.noarch"]);
    assert!(!c.path("/usr/share/seeded/one").exists());
    assert_eq!(ok(&["-qf", "/usr/bin/tool"]), "tool-2-1.noarch\n");
    // The ndb rpm goes on with the database: erases what the sidecar installed.
    let e = c.rpm(&["-e", "--noscripts", "tool"]);
    assert!(e.status.success(), "{}", text(&e));
    assert_eq!(c.qa(), ["base-1-1.noarch"]);
    assert!(!c.path("/usr/bin/tool").exists());
}

/// The host PID of the native job's process (the enter helper's child, in the container's
/// PID namespace, running the sidecar's code), once it exists.
fn native_job_pid(c: &Micro) -> u32 {
    let ns = |p: u32| std::fs::read_link(format!("/proc/{p}/ns/pid")).ok();
    let exe = std::fs::canonicalize(SIDECAR).unwrap();
    let mut found = None;
    wait_until("the native job", Duration::from_secs(10), || {
        found = sidecar::procfs::pids().unwrap().into_iter().find(|&p| {
            p != c.init
                && ns(p).is_some()
                && ns(p) == ns(c.init)
                && std::fs::read_link(format!("/proc/{p}/exe")).is_ok_and(|e| e == exe)
        });
        found.is_some()
    });
    found.unwrap()
}

/// While the native job runs (here: waits for rpm's lock, which the container holds as a
/// concurrent rpm would, for as long as it likes), a root process of the container with the
/// container's own capabilities looks at the job's descriptors (`/proc/<job>/fd`). None may
/// be a handle of the sidecar's: the helper opened this machine's `/proc` before it joined
/// the container, and through it (`/proc/sys`, other processes) the container would reach
/// what its own mounts hide.
#[test]
fn the_native_job_hands_the_container_no_descriptor_of_the_sidecar() {
    if !privileged(&TOOLS) || !privileged(&["capsh", "python3"]) {
        return;
    }
    const DROP: &str = "cap_sys_admin,cap_sys_ptrace,cap_sys_module";
    let c = Micro::start_opts(&["base-1-1.noarch"], Path::new("rpm"), Some(DROP));
    let server = Server::start(&[]);
    let mut holder = hold_rpm_lock(&c);
    let (looked, (status, v)) = std::thread::scope(|s| {
        let job = s.spawn(|| server.put_rpm(c.short(), rpm_file("tool-1-1.noarch"), ""));
        let pid = native_job_pid(&c);
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let ns_pid = status
            .lines()
            .find_map(|l| l.strip_prefix("NSpid:"))
            .and_then(|l| l.split_whitespace().last())
            .unwrap()
            .to_string();
        // The container's root: its namespaces, its root, its capabilities.
        let out = Command::new("nsenter")
            .args(["-t", &c.init.to_string(), "-m", "-p", "-u", "-i", "-n", "--"])
            .args(["capsh", &format!("--drop={DROP}")])
            .arg(format!("--chroot={}", c.layer))
            .args(["--shell=/bin/sh", "--", "-c"])
            .arg(
                "[ -d /proc/$1 ] && echo 'HOST PIDS: the container sees them anyway'; \
                 for f in /proc/$0/fd/*; do [ -d \"$f/$1\" ] && echo \"HOST /proc through $f\"; done; \
                 ls -l /proc/$0/fd/ 2>&1; echo looked",
            )
            .arg(&ns_pid)
            .arg(std::process::id().to_string())
            .output()
            .unwrap();
        drop(holder.stdin.take());
        (text(&out), job.join().unwrap())
    });
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(status, 200, "{v}");
    assert!(
        looked.contains("looked") && !looked.contains("HOST"),
        "{looked}"
    );
}

/// A reply longer than a pipe holds (a warning for each of 1500 files whose owner the
/// container does not know, as rpm gives them): the helper must read it while the job
/// writes it, not wait for the job to end first.
#[test]
fn a_long_native_reply_does_not_stall_the_transaction() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = Micro::start(&["base-1-1.noarch"]);
    let server = Server::start(&[]);
    let (status, v) = server.put_rpm(c.short(), rpm_file("many-1-1.noarch"), "");
    assert_eq!(status, 200, "{v}");
    assert!(
        v["output"].as_str().unwrap_or("").len() > 128 << 10,
        "the reply is longer than a pipe holds: {}",
        v["output"].as_str().unwrap_or("").len()
    );
    assert_eq!(c.qa(), ["base-1-1.noarch", "many-1-1.noarch"]);
}

/// A file of the package where the container has a directory (one no package owns, so no
/// file conflict rpm would report): refused before anything is renamed into place or
/// registered, and the container is as it was (no file of the package half in place, no
/// temporary name, no directory made).
#[test]
fn a_file_over_a_directory_is_refused_and_changes_nothing() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = Micro::start(&["base-1-1.noarch"]);
    std::fs::create_dir_all(c.path("/usr/bin/tool")).unwrap();
    std::fs::write(c.path("/usr/bin/tool/keep"), "the container's\n").unwrap();
    let before = c.state();
    let server = Server::start(&[]);
    let (status, v) = server.put_rpm(c.short(), rpm_file("tool-1-1.noarch"), "");
    assert_eq!((status, v["status"].as_str()), (409, Some("failed")), "{v}");
    assert!(
        v["output"].as_str().unwrap_or("").contains("/usr/bin/tool"),
        "{v}"
    );
    assert_eq!(c.state(), before, "the container is as it was");
    assert_eq!(c.qa(), ["base-1-1.noarch"]);
}

/// A package that obsoletes an installed package of another name: rpm erases that one in
/// the same transaction (and so reports no file conflict with it). The native path replaces
/// only the package of the same name: it must not install the new one beside the obsoleted
/// one, over its files, both registered.
#[test]
fn obsoleting_another_package_is_refused_natively() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = Micro::start(&["base-1-1.noarch"]);
    let server = Server::start(&[]);
    let (status, v) = server.put_rpm(c.short(), rpm_file("tool-1-1.noarch"), "");
    assert_eq!(status, 200, "{v}");
    let before = c.state();
    let (status, v) = server.put_rpm(c.short(), rpm_file("newtool-1-1.noarch"), "");
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (422, Some("native_unsupported")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("obsoletes"),
        "{v}"
    );
    assert_eq!(c.state(), before, "nothing was changed");
    assert_eq!(c.qa(), ["base-1-1.noarch", "tool-1-1.noarch"]);
}

/// A file of the package that is another package's file through a directory symlink of
/// the container (`/etc2 -> etc`, as `/bin -> usr/bin` in merged-/usr images): rpm's
/// fingerprints make it a file conflict (Debian's rpm says so with `--test`); the native
/// path must not write over the other package's file.
#[test]
fn a_file_conflict_through_a_directory_symlink_is_refused() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = Micro::start(&["base-1-1.noarch"]);
    std::os::unix::fs::symlink("etc", c.path("/etc2")).unwrap();
    let alias = rpm_file("alias-1-1.noarch").to_str().unwrap();
    let real = c.rpm(&["-i", "--test", "--nodeps", alias]);
    assert!(
        !real.status.success()
            && text(&real).contains(
                "file /etc2/base.txt from install of alias-1-1.noarch conflicts with file from package base-1-1.noarch"
            ),
        "{}",
        text(&real)
    );
    let before = c.state();
    let server = Server::start(&[]);
    let (status, v) = server.put_rpm(c.short(), rpm_file("alias-1-1.noarch"), "");
    assert_eq!((status, v["status"].as_str()), (409, Some("failed")), "{v}");
    assert!(
        v["output"].as_str().unwrap_or("").contains(
            "file /etc2/base.txt from install of alias-1-1.noarch conflicts with file from package base-1-1.noarch"
        ),
        "{v}"
    );
    assert_eq!(c.state(), before, "base's file is as it was");
    assert_eq!(c.qa(), ["base-1-1.noarch"]);
}

/// The checks run on the server before rpm's lock is taken: when another transaction changes
/// the database in between (here Debian's rpm, told to use another lock file, while the test
/// holds `.rpm.lock`), the job refuses under the lock and changes nothing.
#[test]
fn a_database_changed_after_the_checks_is_not_written() {
    if !privileged(&TOOLS) || !privileged(&["python3"]) {
        return;
    }
    let c = Micro::start(&["base-1-1.noarch"]);
    let server = Server::start(&[]);
    let mut holder = hold_rpm_lock(&c);
    let (status, v) = std::thread::scope(|s| {
        let job = s.spawn(|| server.put_rpm(c.short(), rpm_file("tool-1-1.noarch"), ""));
        native_job_pid(&c); // the job waits for the lock now: its checks are done
        let other = c.rpm(&[
            "-i",
            "--justdb",
            "--nodeps",
            "--noscripts",
            "--define",
            "_rpmlock_path /tmp/other.lock",
            rpm_file("needy-1-1.noarch").to_str().unwrap(),
        ]);
        assert!(other.status.success(), "{}", text(&other));
        drop(holder.stdin.take());
        job.join().unwrap()
    });
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!((status, v["status"].as_str()), (409, Some("failed")), "{v}");
    assert!(
        v["output"]
            .as_str()
            .unwrap_or("")
            .contains("changed between the checks"),
        "{v}"
    );
    assert_eq!(c.qa(), ["base-1-1.noarch", "needy-1-1.noarch"]);
    assert!(!c.path("/usr/bin/tool").exists());
}
