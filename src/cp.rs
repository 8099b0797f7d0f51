//! `sidecar cp`: one file between this machine and a container, as people expect from `cp`
//! and `kubectl cp`. An argument names a container's file only when what stands before its
//! first `:` is a container that exists (or `pid:N`); anything else, and anything that starts
//! with `/` or `.`, is a local path (`./backup-22:34.sql`). `-` is stdin or stdout. Paths are
//! bytes: a name need not be UTF-8. A destination that is a directory, or ends in `/`, gets
//! the source's name inside it. Copies out keep the source's permission bits; copies in keep
//! the mode and owner of the file they replace (a new file gets the local file's permission
//! bits, or 0644 from a stream), unless `--mode`, `--uid`, `--gid` say otherwise. Holes stay
//! holes both ways (`files::copy`).
//!
//! Invariant: a destination is only ever replaced by a complete copy. The bytes go to a
//! temporary file beside it, renamed into place once the source has been read to its end
//! (and, with `--expect-size`, found to be that long). SIGINT, SIGTERM and SIGHUP stop the
//! copy at once: the sidecar blocks them in every thread, so a thread of ours waits for them,
//! removes the temporary file and ends the process with 128+N. An error, or a stream that
//! ends short of `--expect-size`, leaves the destination as it was.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use crate::containers::{self, LookupError};
use crate::files::{self, copy};
use crate::rootfs::Root;

/// What one argument of `cp` names.
#[derive(Debug, PartialEq, Eq)]
pub enum Place {
    /// `-` (also `/dev/stdin`, `/dev/stdout`): the sidecar's stdin or stdout.
    Std,
    Local(Vec<u8>),
    Container {
        name: String,
        path: Vec<u8>,
    },
}

/// Decides what `arg` names; `is_container` says whether a name is a container's. A path
/// that starts with `/` or `.` is always local; `pid:N:<path>` is always process N's.
pub fn place(arg: &[u8], is_container: impl Fn(&str) -> bool) -> Place {
    if matches!(arg, b"-" | b"/dev/stdin" | b"/dev/stdout") {
        return Place::Std;
    }
    let local = || Place::Local(arg.to_vec());
    if arg.starts_with(b"/") || arg.starts_with(b".") {
        return local();
    }
    let Some(colon) = arg.iter().position(|&b| b == b':') else {
        return local();
    };
    let (prefix, rest) = (&arg[..colon], &arg[colon + 1..]);
    if prefix == b"pid" {
        if let Some(c2) = rest.iter().position(|&b| b == b':') {
            let n = &rest[..c2];
            if !n.is_empty() && n.iter().all(u8::is_ascii_digit) {
                return Place::Container {
                    name: format!("pid:{}", String::from_utf8_lossy(n)),
                    path: rest[c2 + 1..].to_vec(),
                };
            }
        }
        return local();
    }
    match std::str::from_utf8(prefix) {
        Ok(name) if !name.is_empty() && is_container(name) => Place::Container {
            name: name.to_string(),
            path: rest.to_vec(),
        },
        _ => local(),
    }
}

/// `cp`'s options.
#[derive(Debug, Default, Clone)]
pub struct Options {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub parents: bool,
    /// The length the source must have: a stream that ends shorter (or longer) replaces
    /// nothing. The only way to tell a sender that died from one that finished.
    pub expect_size: Option<u64>,
}

fn shown(p: &[u8]) -> String {
    String::from_utf8_lossy(p).into_owned()
}

/// The last component of a path (what a copy into a directory is named).
fn base_name(p: &[u8]) -> Option<&[u8]> {
    let trimmed = &p[..p.len() - p.iter().rev().take_while(|&&b| b == b'/').count()];
    let name = trimmed.rsplit(|&b| b == b'/').next().unwrap_or(trimmed);
    (!name.is_empty() && name != b"." && name != b"..").then_some(name)
}

/// Runs `sidecar cp FROM TO`.
pub fn run(from: &[u8], to: &[u8], opts: &Options) -> Result<(), String> {
    describe(&shown(to));
    stop_on_signals();
    // Only an argument with a `:` that is not a path can name a container: list them then.
    let may_name = |a: &[u8]| !a.starts_with(b"/") && !a.starts_with(b".") && a.contains(&b':');
    let all = if may_name(from) || may_name(to) {
        containers::discover().map_err(|e| format!("cannot list /proc: {e}"))?
    } else {
        Vec::new()
    };
    let is_container =
        |n: &str| !matches!(containers::lookup(&all, n), Err(LookupError::NotFound(_)));
    let (src, dst) = (place(from, is_container), place(to, is_container));
    let root_of = |name: &str| -> Result<(Root, String), String> {
        let c = containers::lookup(&all, name).map_err(|e| e.to_string())?;
        // The process that stands for it, or the next one if it just exited.
        let root = c.root().map_err(|e| format!("container {}: {e}", c.id))?;
        Ok((root, c.id.clone()))
    };
    match (src, dst) {
        (Place::Container { .. }, Place::Container { .. }) => Err(
            "cp: both sides name a container; copy through this machine, or write a local path with ./ in front".into(),
        ),
        (Place::Container { name, path }, to) => {
            let (root, id) = root_of(&name)?;
            copy_out(&root, &id, &path, to, opts)
        }
        (from, Place::Container { name, path }) => {
            let (root, id) = root_of(&name)?;
            copy_in(&root, &id, &path, from, opts)
        }
        _ => {
            let hint: Vec<String> = [from, to]
                .iter()
                .filter(|a| may_name(a))
                .map(|a| {
                    let p = &a[..a.iter().position(|&b| b == b':').unwrap_or(0)];
                    format!("no container is named '{}'", shown(p))
                })
                .collect();
            let hint = if hint.is_empty() {
                String::new()
            } else {
                format!(" ({})", hint.join("; "))
            };
            Err(format!(
                "cp: exactly one side must be <container>:<path> (or pid:N:<path>){hint}"
            ))
        }
    }
}

/// The temporary file that a signal must remove, and whether the copy is already in place.
enum Stage {
    Preparing,
    Copying(OwnedFd, Vec<u8>),
    Done,
}

static STAGE: Mutex<Stage> = Mutex::new(Stage::Preparing);

/// The destination as the messages name it.
static DEST: Mutex<String> = Mutex::new(String::new());

fn describe(dest: &str) {
    *DEST.lock().unwrap_or_else(|e| e.into_inner()) = dest.to_string();
}

fn stage() -> std::sync::MutexGuard<'static, Stage> {
    STAGE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Registers the temporary file (directory and name) a signal must remove from now on.
fn arm(dir: BorrowedFd<'_>, tmp: &[u8]) -> Result<(), String> {
    let dir = dir
        .try_clone_to_owned()
        .map_err(|e| format!("cannot keep the temporary file's directory: {e}"))?;
    *stage() = Stage::Copying(dir, tmp.to_vec());
    Ok(())
}

/// Puts the copy in place while holding the stage: a signal arriving meanwhile waits for
/// the rename and then finds nothing to remove.
fn commit<T>(f: impl FnOnce() -> T) -> T {
    let mut s = stage();
    let out = f();
    *s = Stage::Done;
    out
}

/// Starts the thread that ends `cp` on SIGINT, SIGTERM or SIGHUP (blocked in every thread
/// since `main`): it removes the temporary file, if any, and exits 128+N at once, wherever
/// the copy stands (a blocking read of a pipe included).
fn stop_on_signals() {
    const STOP: [i32; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];
    std::thread::spawn(move || loop {
        let Some((sig, _)) = crate::sys::wait_signal(&STOP, 60_000) else {
            continue;
        };
        let name = match sig {
            libc::SIGINT => "SIGINT",
            libc::SIGTERM => "SIGTERM",
            _ => "SIGHUP",
        };
        let s = stage();
        let dest = DEST.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let what = match &*s {
            Stage::Copying(dir, tmp) => {
                let _ = rustix::fs::unlinkat(dir, tmp.as_slice(), AtFlags::empty());
                format!("{dest} is unchanged")
            }
            Stage::Preparing => format!("{dest} is unchanged"),
            Stage::Done => format!("the copy to {dest} had completed"),
        };
        eprintln!("sidecar: cp stopped by {name}: {what}");
        crate::sys::exit_now(128 + sig);
    });
}

/// After a stream's end, a moment for a signal that is on its way: ^C at a terminal signals
/// the sender and `cp` together, and the sender's death shows as the end of the stream.
fn let_signals_arrive() {
    std::thread::sleep(Duration::from_millis(20));
}

fn check_size(got: u64, opts: &Options, dest: &str) -> Result<(), String> {
    match opts.expect_size {
        Some(want) if want != got => Err(format!(
            "the source gave {got} bytes, --expect-size is {want}: {dest} is unchanged"
        )),
        _ => Ok(()),
    }
}

/// Container → this machine (a file, a directory to copy into, a device or FIFO, stdout).
fn copy_out(root: &Root, id: &str, path: &[u8], to: Place, opts: &Options) -> Result<(), String> {
    let ctx = |e: files::Error| format!("{e} (container {id})");
    let mut src = match files::read(root, path).map_err(ctx)? {
        files::Found::File(f, _) => f,
        files::Found::Dir(_) => {
            return Err(format!(
                "{} is a directory in {id}: cp copies one file",
                shown(path)
            ))
        }
    };
    let st = rustix::fs::fstat(&src).map_err(|e| format!("{}: {e}", shown(path)))?;
    let mode = opts.mode.unwrap_or(st.st_mode & 0o777);
    let local = match to {
        Place::Std => {
            describe("stdout");
            let mut out = io::stdout().lock();
            let c = copy::stream(&mut src, &mut out).map_err(|e| format!("stdout: {e}"))?;
            return check_size(c.bytes, opts, "stdout");
        }
        Place::Local(p) => p,
        Place::Container { .. } => unreachable!("both sides a container is refused earlier"),
    };
    let name = base_name(path).unwrap_or(b"file");
    let target = local_target(&local, name)?;
    let shown_target = target.path.display().to_string();
    describe(&shown_target);
    if !target.replace {
        // A device or a FIFO: written into, as cp does; there is nothing to put in place.
        let mut out = File::options()
            .write(true)
            .open(&target.path)
            .map_err(|e| format!("{shown_target}: {e}"))?;
        let c = copy::stream(&mut src, &mut out).map_err(|e| format!("{shown_target}: {e}"))?;
        return check_size(c.bytes, opts, &shown_target);
    }
    let mut up = LocalUpload::begin(&target.path).map_err(|e| format!("{shown_target}: {e}"))?;
    arm(up.dir.as_fd(), &up.tmp)?;
    let c = copy::copy(&mut src, &mut up.file).map_err(|e| {
        format!(
            "copying {} to {shown_target}: {e}: it is unchanged",
            shown(path)
        )
    })?;
    check_size(c.bytes, opts, &shown_target)?;
    rustix::fs::fchmod(&up.file, Mode::from_raw_mode(mode))
        .map_err(|e| format!("{shown_target}: {e}"))?;
    commit(|| up.commit()).map_err(|e| format!("{shown_target}: {e}: it is unchanged"))
}

/// Where a copy out goes: `replace` a regular file (or make it) by rename, or write into
/// what is there (a device, a FIFO).
struct LocalTarget {
    path: PathBuf,
    replace: bool,
}

fn local_target(arg: &[u8], name: &[u8]) -> Result<LocalTarget, String> {
    let path = PathBuf::from(OsStr::from_bytes(arg));
    let is_dir = |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.is_dir());
    let path = if arg.ends_with(b"/") {
        if !is_dir(&path) {
            return Err(format!(
                "{}: no such directory (a trailing / names a directory)",
                shown(arg)
            ));
        }
        path.join(OsStr::from_bytes(name))
    } else if is_dir(&path) {
        path.join(OsStr::from_bytes(name))
    } else {
        path
    };
    match std::fs::metadata(&path) {
        Ok(m) if m.is_dir() => Err(format!(
            "{}: is a directory: cp does not replace a directory with a file",
            path.display()
        )),
        // A symlink to a file: the file it points to is replaced, as cp writes through it.
        Ok(m) if m.is_file() => Ok(LocalTarget {
            path: std::fs::canonicalize(&path).unwrap_or(path),
            replace: true,
        }),
        Ok(_) => Ok(LocalTarget {
            path,
            replace: false,
        }),
        Err(_) => Ok(LocalTarget {
            path,
            replace: true,
        }),
    }
}

/// A local file being written: a temporary file beside it, renamed over it by `commit`,
/// removed if dropped before.
struct LocalUpload {
    dir: OwnedFd,
    name: Vec<u8>,
    tmp: Vec<u8>,
    file: File,
    committed: bool,
}

impl LocalUpload {
    fn begin(path: &Path) -> io::Result<LocalUpload> {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let name = path
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?
            .as_bytes()
            .to_vec();
        let dir = rustix::fs::open(
            parent,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let mut rnd = [0u8; 6];
        crate::sys::random_bytes(&mut rnd)?;
        let suffix = format!(".sidecar-{}", crate::auth::hash::hex(&rnd));
        let mut tmp = Vec::new();
        if name.len() + suffix.len() < 255 {
            tmp.push(b'.');
            tmp.extend_from_slice(&name);
        }
        tmp.extend_from_slice(suffix.as_bytes());
        let fd = rustix::fs::openat(
            &dir,
            tmp.as_slice(),
            OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::from_raw_mode(0o600),
        )?;
        Ok(LocalUpload {
            dir,
            name,
            tmp,
            file: File::from(fd),
            committed: false,
        })
    }

    fn commit(&mut self) -> io::Result<()> {
        rustix::fs::renameat(
            &self.dir,
            self.tmp.as_slice(),
            &self.dir,
            self.name.as_slice(),
        )?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for LocalUpload {
    fn drop(&mut self) {
        if !self.committed {
            let _ = rustix::fs::unlinkat(&self.dir, self.tmp.as_slice(), AtFlags::empty());
        }
    }
}

/// This machine (a file, stdin) → container.
fn copy_in(root: &Root, id: &str, path: &[u8], from: Place, opts: &Options) -> Result<(), String> {
    let (mut src, name, local_mode, what) = match from {
        Place::Std => {
            let fd = io::stdin()
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| format!("stdin: {e}"))?;
            (File::from(fd), None, None, "stdin".to_string())
        }
        Place::Local(p) => {
            let f = File::open(OsStr::from_bytes(&p)).map_err(|e| format!("{}: {e}", shown(&p)))?;
            let st = rustix::fs::fstat(&f).map_err(|e| format!("{}: {e}", shown(&p)))?;
            match FileType::from_raw_mode(st.st_mode) {
                FileType::Directory => {
                    return Err(format!("{} is a directory: cp copies one file", shown(&p)))
                }
                FileType::RegularFile => {}
                _ => {} // a FIFO or device: a stream
            }
            let regular = FileType::from_raw_mode(st.st_mode) == FileType::RegularFile;
            let name = base_name(&p).map(<[u8]>::to_vec);
            (f, name, regular.then_some(st.st_mode & 0o777), shown(&p))
        }
        Place::Container { .. } => unreachable!("both sides a container is refused earlier"),
    };
    let ctx = |e: files::Error| format!("{e} (container {id})");
    let mut dest = if path.is_empty() {
        b"/".to_vec()
    } else {
        path.to_vec()
    };
    let into_dir = dest.ends_with(b"/")
        || files::stat(root, &dest)
            .map_err(ctx)?
            .is_some_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory);
    if into_dir {
        if dest.ends_with(b"/") && !opts.parents && files::stat(root, &dest).map_err(ctx)?.is_none()
        {
            return Err(format!(
                "{}: no such directory in {id} (a trailing / names a directory; --parents makes it)",
                shown(&dest)
            ));
        }
        let Some(name) = name else {
            return Err(format!(
                "{} is a directory in {id}: name the file to write from {what} (<c>:{}/NAME)",
                shown(&dest),
                shown(dest.strip_suffix(b"/").unwrap_or(&dest))
            ));
        };
        while dest.ends_with(b"/") {
            dest.pop();
        }
        dest.push(b'/');
        dest.extend_from_slice(&name);
    }
    let shown_dest = format!("{} in {id}", shown(&dest));
    describe(&shown_dest);
    let wopts = files::WriteOptions {
        mode: opts.mode,
        new_mode: local_mode.unwrap_or(0o644),
        uid: opts.uid,
        gid: opts.gid,
        parents: opts.parents,
    };
    let mut up = files::Upload::begin(root, &dest, &wopts).map_err(ctx)?;
    let (dir, tmp) = up.temporary();
    arm(dir, tmp)?;
    let stream = !copy::is_regular(&src);
    let c = copy::copy(&mut src, up.file())
        .map_err(|e| format!("reading {what}: {e}: {shown_dest} is unchanged"))?;
    check_size(c.bytes, opts, &shown_dest)?;
    if stream {
        let_signals_arrive();
    }
    let w = commit(|| up.commit()).map_err(ctx)?;
    if w.in_place {
        eprintln!("sidecar: {shown_dest} is a bind mount: it was overwritten in place");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_c(n: &str) -> bool {
        matches!(n, "web" | "3f2a" | "host")
    }

    fn c(name: &str, path: &[u8]) -> Place {
        Place::Container {
            name: name.into(),
            path: path.to_vec(),
        }
    }

    #[test]
    fn what_an_argument_names() {
        let l = |a: &[u8]| Place::Local(a.to_vec());
        assert_eq!(
            place(b"web:/etc/app.conf", is_c),
            c("web", b"/etc/app.conf")
        );
        assert_eq!(place(b"3f2a:rel", is_c), c("3f2a", b"rel"));
        assert_eq!(place(b"pid:42:/x", is_c), c("pid:42", b"/x"));
        assert_eq!(place(b"web:/caf\xe9", is_c), c("web", b"/caf\xe9"));
        // Local: no container of that name, a path, ./ in front, no colon.
        assert_eq!(place(b"backup-22:34.sql", is_c), l(b"backup-22:34.sql"));
        assert_eq!(place(b"./web:/x", is_c), l(b"./web:/x"));
        assert_eq!(place(b"/tmp/web:x", is_c), l(b"/tmp/web:x"));
        assert_eq!(place(b"caf\xe9:x", is_c), l(b"caf\xe9:x"));
        assert_eq!(place(b"pid:x:/y", is_c), l(b"pid:x:/y"));
        assert_eq!(place(b"notes.txt", is_c), l(b"notes.txt"));
        assert_eq!(place(b":x", is_c), l(b":x"));
        for s in [&b"-"[..], b"/dev/stdin", b"/dev/stdout"] {
            assert_eq!(place(s, is_c), Place::Std);
        }
    }

    #[test]
    fn base_names() {
        assert_eq!(base_name(b"/etc/app.conf"), Some(&b"app.conf"[..]));
        assert_eq!(base_name(b"rel/dir/"), Some(&b"dir"[..]));
        assert_eq!(base_name(b"caf\xe9"), Some(&b"caf\xe9"[..]));
        assert_eq!(base_name(b"/"), None);
        assert_eq!(base_name(b"/x/.."), None);
    }
}
