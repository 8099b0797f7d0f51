//! What changed in a container against its package database, as `rpm -V --nodeps
//! --noscripts` sees it (rpm 4.18's `rpmfilesVerify` and `verifyHeader`, read as the
//! specification): for each file of a package, size, mode, digest, device, link target,
//! owner, group, mtime and file capabilities are compared with what the header recorded,
//! and a line is shown for each file that differs, in rpm's own words
//! (`S.5....T.  c /etc/foo`, `missing     /usr/bin/bar`).
//!
//! Invariants: every file is looked up inside the container's root only (its directory
//! with `openat2` and `RESOLVE_IN_ROOT`, its base name relative to that directory), never
//! following a final symlink; only what `lstat` shows to be a regular file is opened for
//! reading, and nothing is written. Two ways, the first when the kernel allows it:
//! - through a read-only copy of the container's mounts, every one `nodev`
//!   (`Root::read_only_view`): `fstatat`, then, for a regular file,
//!   `openat(O_NOFOLLOW | O_NONBLOCK)`, as `rpm -V` compares its `lstat` and then opens the
//!   file to digest it. A device node cannot be opened there at all (the driver never sees
//!   the open), and a FIFO swapped in between the two calls cannot block us (only the
//!   container, racing on purpose, could make us open it for a moment);
//! - otherwise as an `O_PATH` probe checked with `fstat`, the regular file then opened as
//!   the very inode the probe names (`/proc/thread-self/fd/N`).
//!
//! Digests come from RustCrypto's crates, in the algorithm the header names.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use std::os::fd::OwnedFd;

use rustix::fs::{FileType, Mode, OFlags, Stat};
use serde::Serialize;

use super::digest::Hasher;
use super::ids::Ids;
use super::{caps, nevra, Database, Error};
use crate::rootfs::Root;
use crate::rpmdb::{FileEntry, Package};

const VERIFY_DIGEST: u32 = 1 << 0;
const VERIFY_SIZE: u32 = 1 << 1;
const VERIFY_LINKTO: u32 = 1 << 2;
const VERIFY_USER: u32 = 1 << 3;
const VERIFY_GROUP: u32 = 1 << 4;
const VERIFY_MTIME: u32 = 1 << 5;
const VERIFY_MODE: u32 = 1 << 6;
const VERIFY_RDEV: u32 = 1 << 7;
const VERIFY_CAPS: u32 = 1 << 8;
const VERIFY_READLINKFAIL: u32 = 1 << 28;
const VERIFY_READFAIL: u32 = 1 << 29;
const VERIFY_LSTATFAIL: u32 = 1 << 30;
const VERIFY_FAILURES: u32 = VERIFY_READLINKFAIL | VERIFY_READFAIL | VERIFY_LSTATFAIL;

const FILE_CONFIG: u32 = 1 << 0;
const FILE_DOC: u32 = 1 << 1;
const FILE_MISSINGOK: u32 = 1 << 3;
const FILE_NOREPLACE: u32 = 1 << 4;
const FILE_SPECFILE: u32 = 1 << 5;
const FILE_GHOST: u32 = 1 << 6;
const FILE_LICENSE: u32 = 1 << 7;
const FILE_README: u32 = 1 << 8;

const STATE_REPLACED: u8 = 1;
const STATE_NOTINSTALLED: u8 = 2;
const STATE_NETSHARED: u8 = 3;
const STATE_WRONGCOLOR: u8 = 4;
const STATE_MISSING: u8 = 255;

/// One file that differs (or a package whose file list cannot be verified at all).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The package, as `rpm -qa` names it.
    pub package: String,
    /// The file; `None` for a package whose file list is unreadable.
    pub path: Option<String>,
    /// rpm's nine characters (`S.5....T.`); `None` when the file is missing.
    pub flags: Option<String>,
    /// The first of rpm's file attribute letters (`c` config, `d` doc, `g` ghost, ...), or "".
    pub attr: String,
    pub missing: bool,
    /// Why the file could not be looked at (other than "not there"), or why the package's
    /// file list cannot be verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// rpm's file state when it is not the usual one (`replaced`, `no state`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<&'static str>,
    /// Not shown: a difference rpm counts (exit 1) without printing a line (a missing
    /// `%ghost` or `%missingok` file).
    #[serde(skip)]
    pub silent: bool,
}

impl Finding {
    /// The line `rpm -V` prints for it, or `None` when rpm prints nothing.
    pub fn line(&self) -> Option<String> {
        let path = self.path.as_deref()?;
        if self.silent {
            return None;
        }
        let ac = self.attr.chars().next().unwrap_or(' ');
        let mut line = match &self.flags {
            None => {
                let mut l = format!("missing   {ac} {path}");
                if let Some(e) = &self.error {
                    l.push_str(&format!(" ({e})"));
                }
                l
            }
            Some(flags) => format!("{flags}  {ac} {path}"),
        };
        if let Some(s) = self.state {
            line.push_str(&format!(" ({s})"));
        }
        Some(line)
    }
}

/// rpm's `rpmVerifyString`: the nine columns, `.` where nothing differs, `?` where the file
/// or link could not be read.
pub fn verify_string(r: u32) -> String {
    let col = |bit: u32, c: char| if r & bit != 0 { c } else { '.' };
    let digest = if r & VERIFY_READFAIL != 0 {
        '?'
    } else {
        col(VERIFY_DIGEST, '5')
    };
    let link = if r & VERIFY_READLINKFAIL != 0 {
        '?'
    } else {
        col(VERIFY_LINKTO, 'L')
    };
    [
        col(VERIFY_SIZE, 'S'),
        col(VERIFY_MODE, 'M'),
        digest,
        col(VERIFY_RDEV, 'D'),
        link,
        col(VERIFY_USER, 'U'),
        col(VERIFY_GROUP, 'G'),
        col(VERIFY_MTIME, 'T'),
        col(VERIFY_CAPS, 'P'),
    ]
    .iter()
    .collect()
}

/// rpm's `rpmFFlagsString` with no padding: the attribute letters of a file.
pub fn attr_string(flags: u32) -> String {
    [
        (FILE_DOC, 'd'),
        (FILE_CONFIG, 'c'),
        (FILE_SPECFILE, 's'),
        (FILE_MISSINGOK, 'm'),
        (FILE_NOREPLACE, 'n'),
        (FILE_GHOST, 'g'),
        (FILE_LICENSE, 'l'),
        (FILE_README, 'r'),
    ]
    .iter()
    .filter(|(bit, _)| flags & bit != 0)
    .map(|(_, c)| *c)
    .collect()
}

/// rpm's `stateStr` outside verbose mode.
fn state_str(state: u8) -> Option<&'static str> {
    match state {
        0 | STATE_NOTINSTALLED | STATE_NETSHARED | STATE_WRONGCOLOR => None,
        STATE_REPLACED => Some("replaced"),
        STATE_MISSING => Some("no state"),
        _ => Some("unknown state"),
    }
}

fn open_in_root(root: &Root, path: &str, flags: OFlags) -> io::Result<OwnedFd> {
    root.resolve(path.as_bytes(), flags)
}

/// A directory of the root held open while its files are verified (a package's files come
/// sorted, so those of one directory follow each other): each file is then looked at with
/// one `openat` of its base name instead of resolving its whole path inside the root.
struct Dir {
    path: String,
    fd: OwnedFd,
    dev: u64,
    /// The directory is on procfs or sysfs: its files are never read.
    special: bool,
}

/// A directory that could not be opened: its path, and the error (kept to answer again for
/// each of its files without asking the kernel again).
type DirFailure = (String, io::ErrorKind, Option<i32>);

/// Looks at the files of a root, one directory held open at a time, and digests regular
/// files into one reused buffer. One per thread (it holds the thread's
/// `/proc/thread-self/fd`, through which probes are reopened).
struct Looker<'r> {
    root: &'r Root,
    /// `root` is a `nodev` read-only view: regular files are opened directly.
    direct: bool,
    /// Device numbers seen in a view, and whether each is procfs or sysfs.
    file_systems: Vec<(u64, bool)>,
    /// The last few directories asked for, the latest first (a package's files alternate
    /// between a directory and its subdirectories: `/opt/x`, `/opt/x/y.d/*`, `/opt/x`...).
    dirs: Vec<Result<Dir, DirFailure>>,
    fd_dir: Option<crate::sys::FdDir>,
    buf: Vec<u8>,
}

/// A path's directory and base name, when the base name is one that `openat` on the
/// directory resolves without leaving it (not empty, not `.` or `..`).
fn dir_and_base(path: &str) -> Option<(&str, &str)> {
    let i = path.rfind('/')?;
    let (dir, base) = (&path[..i], &path[i + 1..]);
    (!matches!(base, "" | "." | "..")).then_some((if dir.is_empty() { "/" } else { dir }, base))
}

fn is_special(fd: &OwnedFd) -> io::Result<bool> {
    let magic = crate::sys::fs_magic(fd)?;
    Ok(magic == crate::sys::PROC_SUPER_MAGIC || magic == crate::sys::SYSFS_MAGIC)
}

impl<'r> Looker<'r> {
    fn new(root: &'r Root, direct: bool) -> Self {
        Looker {
            root,
            direct,
            file_systems: Vec::new(),
            dirs: Vec::with_capacity(DIRS_KEPT),
            fd_dir: None,
            buf: Vec::new(),
        }
    }

    /// This thread's `/proc/thread-self/fd`, opened on first use.
    fn fd_dir(&mut self) -> io::Result<&crate::sys::FdDir> {
        if self.fd_dir.is_none() {
            self.fd_dir = Some(crate::sys::FdDir::of_this_thread()?);
        }
        Ok(self.fd_dir.as_ref().expect("just set"))
    }

    /// The directory `dir` of the root, opened `O_PATH` inside it (symlinks followed inside
    /// the root), kept while it is one of the last [`DIRS_KEPT`] asked for.
    fn dir(&mut self, dir: &str) -> io::Result<&Dir> {
        let held = self.dirs.iter().position(|d| match d {
            Ok(d) => d.path == dir,
            Err((p, ..)) => p == dir,
        });
        if let Some(i) = held {
            self.dirs[..=i].rotate_right(1);
        } else {
            let (direct, known) = (self.direct, &mut self.file_systems);
            let opened =
                open_in_root(self.root, dir, OFlags::PATH | OFlags::DIRECTORY).and_then(|fd| {
                    let st = rustix::fs::fstat(&fd)?;
                    // In a view, whose mounts cannot change, a device number names one
                    // file system for as long as we look: it is asked about once.
                    let special = match known.iter().find(|(dev, _)| direct && *dev == st.st_dev) {
                        Some(&(_, special)) => special,
                        None => {
                            let special = is_special(&fd)?;
                            known.push((st.st_dev, special));
                            special
                        }
                    };
                    Ok(Dir {
                        path: dir.to_string(),
                        fd,
                        dev: st.st_dev,
                        special,
                    })
                });
            self.dirs.truncate(DIRS_KEPT - 1);
            self.dirs.insert(
                0,
                opened.map_err(|e| (dir.to_string(), e.kind(), e.raw_os_error())),
            );
        }
        match &self.dirs[0] {
            Ok(d) => Ok(d),
            Err((_, kind, raw)) => Err(match raw {
                Some(errno) => io::Error::from_raw_os_error(*errno),
                None => io::Error::from(*kind),
            }),
        }
    }

    /// `lstat` inside the root, through an `O_PATH` probe of the file itself (a final
    /// symlink not followed): the probe is what a symlink is read through and what a
    /// regular file is reopened from, so nothing can be swapped in between.
    ///
    /// On a `nodev` view, a file on its directory's file system (not procfs or sysfs) is
    /// looked at with `fstatat` instead, and a regular file opened for reading right away
    /// (see `open_direct`).
    fn lstat(&mut self, path: &str) -> io::Result<Probe> {
        let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let direct = self.direct;
        let (fd, dir) = match dir_and_base(path) {
            Some((dir, base)) => {
                let d = self.dir(dir)?;
                if direct && !d.special {
                    if let Some(p) = open_direct(d, base)? {
                        return Ok(p);
                    }
                }
                let fd = rustix::fs::openat(&d.fd, base, flags, Mode::empty())?;
                (fd, Some((d.dev, d.special)))
            }
            None => (open_in_root(self.root, path, flags)?, None),
        };
        let st = rustix::fs::fstat(&fd)?;
        Ok(Probe {
            fd: Some(fd),
            st,
            dir,
            readable: false,
        })
    }

    /// Opens the regular file the probe names for reading (see [`Probe::open`]).
    fn open(&mut self, probe: &mut Probe) -> io::Result<std::fs::File> {
        if probe.readable {
            if let Some(fd) = probe.fd.take() {
                return Ok(std::fs::File::from(fd));
            }
        }
        probe.open(self.fd_dir()?)
    }
}

/// A regular file of directory `d` (of a `nodev` view) with its `fstatat`, opened for
/// reading; only the `fstatat` of anything else but a symlink; `None` for a symlink, a file
/// of another file system (a mount point), or a file that could not be opened (the caller
/// then looks again through an `O_PATH` probe).
fn open_direct(d: &Dir, base: &str) -> io::Result<Option<Probe>> {
    let st = rustix::fs::statat(&d.fd, base, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)?;
    let kind = FileType::from_raw_mode(st.st_mode);
    if kind != FileType::RegularFile && kind != FileType::Symlink {
        // A directory, FIFO, device or socket: its `lstat` is all that is looked at.
        return Ok(Some(Probe {
            fd: None,
            st,
            dir: Some((d.dev, d.special)),
            readable: false,
        }));
    }
    if kind != FileType::RegularFile || st.st_dev != d.dev {
        return Ok(None);
    }
    // What `fstatat` saw is what is compared, as rpm compares its `lstat` and then opens
    // the file to digest it. In a view nothing can be mounted meanwhile, so the file opened
    // is on the same file system; one swapped in meanwhile cannot be a device (not opened:
    // `nodev`), a symlink (`O_NOFOLLOW`) or a socket, and a FIFO (only a container racing on
    // purpose) does not block (`O_NONBLOCK`): its read fails or ends at once.
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY;
    let Ok(fd) = rustix::fs::openat(&d.fd, base, flags | OFlags::CLOEXEC, Mode::empty()) else {
        return Ok(None);
    };
    Ok(Some(Probe {
        fd: Some(fd),
        st,
        dir: Some((d.dev, false)),
        readable: true,
    }))
}

/// A file looked at: its `O_PATH` descriptor, its `fstat`, and its directory's device and
/// whether that is on procfs or sysfs (when it was looked up through an open directory).
struct Probe {
    /// Gone once a readable one has been handed out.
    fd: Option<OwnedFd>,
    st: Stat,
    dir: Option<(u64, bool)>,
    /// `fd` is open for reading already (a regular file of a `nodev` view).
    readable: bool,
}

impl Probe {
    fn fd(&self) -> io::Result<&OwnedFd> {
        self.fd
            .as_ref()
            .ok_or_else(|| io::Error::other("already opened"))
    }

    /// The target of the symlink the probe names.
    fn readlink(&self) -> io::Result<Vec<u8>> {
        Ok(rustix::fs::readlinkat(self.fd()?, "", Vec::new())?.into_bytes())
    }

    /// Opens for reading the very inode the probe names (`/proc/thread-self/fd/N`, through
    /// `fds`), only when it is a regular file and on no procfs or sysfs: never a FIFO or a
    /// device.
    fn open(&self, fds: &crate::sys::FdDir) -> io::Result<std::fs::File> {
        let kind = FileType::from_raw_mode(self.st.st_mode);
        if kind != FileType::RegularFile {
            return Err(io::Error::other(format!(
                "{}, not a regular file",
                crate::rootfs::kind_words(kind)
            )));
        }
        // A file on its directory's file system needs no second look at that file system.
        let special = match self.dir {
            Some((dev, special)) if dev == self.st.st_dev => special,
            _ => is_special(self.fd()?)?,
        };
        if special {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "refusing a file on procfs or sysfs",
            ));
        }
        let fd = fds.reopen(
            std::os::fd::AsFd::as_fd(self.fd()?),
            OFlags::RDONLY | OFlags::NOCTTY,
        )?;
        Ok(std::fs::File::from(fd))
    }
}

/// `stat` inside the root (symlinks followed inside it), through an `O_PATH` descriptor:
/// nothing is opened for reading.
pub(super) fn look_at(root: &Root, path: &str) -> io::Result<Stat> {
    let fd = open_in_root(root, path, OFlags::PATH)?;
    Ok(rustix::fs::fstat(&fd)?)
}

/// The digest of a file's content in rpm's algorithm `algo` (`PGPHASHALGO_*`), lowercase
/// hex, and the number of bytes read; `None` for an algorithm we do not know. `buf` is
/// reused from file to file; `size` (from `fstat`) sizes the first read, so that a small
/// file takes one `read`: a short read of a regular file is its end.
fn digest(
    algo: u32,
    file: &mut std::fs::File,
    size: u64,
    buf: &mut Vec<u8>,
) -> io::Result<Option<(String, u64)>> {
    let Some(mut hash) = Hasher::new(algo) else {
        return Ok(None);
    };
    let want = (size as usize).saturating_add(1).clamp(4096, 256 << 10);
    if buf.len() < want {
        buf.resize(want, 0);
    }
    let mut total = 0u64;
    loop {
        match file.read(buf) {
            Ok(n) => {
                hash.update(&buf[..n]);
                total += n as u64;
                if n < buf.len() {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(Some((hash.hex(), total)))
}

/// rpm's `rpmfilesVerify` for one file: the `RPMVERIFY_*` bits of what differs, and the
/// error of a failed `lstat` other than "not there".
fn verify_file(
    look: &mut Looker<'_>,
    ids: &Ids,
    algo: u32,
    f: &FileEntry,
) -> (u32, Option<io::Error>) {
    let mut flags = f.verify;
    match f.state {
        STATE_NETSHARED | STATE_NOTINSTALLED => return (0, None),
        // For replaced files rpm only checks that they exist.
        STATE_REPLACED => flags = VERIFY_LSTATFAIL,
        STATE_WRONGCOLOR => flags &= !(VERIFY_DIGEST | VERIFY_SIZE | VERIFY_MTIME | VERIFY_RDEV),
        _ => {}
    }
    let mut probe = match look.lstat(&f.path) {
        Ok(x) => x,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return (VERIFY_LSTATFAIL, None),
        Err(e) => return (VERIFY_LSTATFAIL, Some(e)),
    };
    let mut sb = probe.st;
    let fmode = u32::from(f.mode);
    let is = |mode: u32, t: FileType| FileType::from_raw_mode(mode) == t;
    // A directory that became a symlink to a directory (by root or the file's owner) is
    // verified as that directory.
    if is(fmode, FileType::Directory) && is(sb.st_mode, FileType::Symlink) {
        if let Ok(dsb) = look_at(look.root, &f.path) {
            let legit = sb.st_uid == 0 || ids.uid(&f.user).is_some_and(|u| u == sb.st_uid);
            if is(dsb.st_mode, FileType::Directory) && legit {
                sb = dsb;
            }
        }
    }
    if is(sb.st_mode, FileType::Symlink) {
        flags &= !VERIFY_MODE;
    } else {
        flags &= !VERIFY_LINKTO;
    }
    if !is(sb.st_mode, FileType::RegularFile) {
        flags &= !(VERIFY_DIGEST | VERIFY_SIZE | VERIFY_MTIME | VERIFY_CAPS);
    }
    if f.flags & FILE_GHOST != 0 {
        flags &= !(VERIFY_DIGEST | VERIFY_SIZE | VERIFY_MTIME | VERIFY_LINKTO);
    }
    // --nodeps --noscripts omit nothing of the file checks.
    flags &= !VERIFY_FAILURES;

    let mut r = 0u32;
    let mut size = sb.st_size as u64;
    // A regular file whose content or capabilities are compared is opened once for both.
    let mut file = if flags & (VERIFY_DIGEST | VERIFY_CAPS) != 0 {
        Some(look.open(&mut probe))
    } else {
        None
    };
    if flags & VERIFY_DIGEST != 0 {
        if f.digest.is_empty() {
            r |= VERIFY_DIGEST;
        } else {
            let got = match &mut file {
                Some(Ok(fh)) => digest(algo, fh, sb.st_size as u64, &mut look.buf),
                _ => Err(io::Error::other("not opened")),
            };
            match got {
                Ok(Some((hex, read))) => {
                    size = read;
                    if !hex.eq_ignore_ascii_case(&f.digest) {
                        r |= VERIFY_DIGEST;
                    }
                }
                Ok(None) | Err(_) => r |= VERIFY_READFAIL | VERIFY_DIGEST,
            }
        }
    }
    if flags & VERIFY_CAPS != 0 {
        // As rpm: capabilities that cannot be read or parsed count as none ("=").
        let want = caps::from_text(&f.caps).unwrap_or_default();
        let have = match &file {
            Some(Ok(fh)) => caps::of_file(fh),
            _ => caps::Caps::default(),
        };
        if want != have {
            r |= VERIFY_CAPS;
        }
    }
    if flags & VERIFY_LINKTO != 0 {
        match probe.readlink() {
            Ok(target) if target == f.linkto.as_bytes() => {}
            Ok(_) => r |= VERIFY_LINKTO,
            Err(_) => r |= VERIFY_READLINKFAIL | VERIFY_LINKTO,
        }
    }
    if flags & VERIFY_SIZE != 0 && size != f.size {
        r |= VERIFY_SIZE;
    }
    if flags & VERIFY_MODE != 0 {
        let (mut meta, mut file) = (fmode & 0xffff, sb.st_mode & 0xffff);
        if f.flags & FILE_GHOST != 0 {
            meta &= !0xf000;
            file &= !0xf000;
        }
        if meta != file {
            r |= VERIFY_MODE;
        }
    }
    if flags & VERIFY_RDEV != 0 {
        let chr = |m: u32| is(m, FileType::CharacterDevice);
        let blk = |m: u32| is(m, FileType::BlockDevice);
        let kind_differs = chr(fmode) != chr(sb.st_mode) || blk(fmode) != blk(sb.st_mode);
        let device = chr(fmode) || blk(fmode);
        if kind_differs || (device && (sb.st_rdev & 0xffff) as u16 != f.rdev) {
            r |= VERIFY_RDEV;
        }
    }
    if flags & VERIFY_MTIME != 0 && sb.st_mtime != i64::from(f.mtime) {
        r |= VERIFY_MTIME;
    }
    if flags & VERIFY_USER != 0 && !ids.user_matches(&f.user, sb.st_uid) {
        r |= VERIFY_USER;
    }
    if flags & VERIFY_GROUP != 0 && !ids.group_matches(&f.group, sb.st_gid) {
        r |= VERIFY_GROUP;
    }
    (r, None)
}

/// Verifies the packages called `name`, or every package (`rpm -Va`), in database order:
/// the files that differ, as rpm shows them. `db` must have been read with
/// [`crate::rpmdb::Detail::Files`].
///
/// Looking at files is nearly all system calls (per regular file, in the read-only view:
/// `fstatat`, `openat`, `read`, `flistxattr`, `close`; see the module's invariants), so
/// packages are verified on a few threads at once, each with its own open directories and
/// buffer; the findings keep the database's record order.
pub fn verify(root: &Root, db: &Database, name: Option<&str>) -> Result<Vec<Finding>, Error> {
    let pkgs: Vec<&Package> = match name {
        Some(n) => super::by_name(db, n)?,
        None => db.packages.iter().collect(),
    };
    // File lists are decoded by the workers (`Package::more`), so only packages are counted.
    let threads = pkgs.len() / PACKAGES_PER_THREAD + 1;
    let ((), results) = verify_fed(root, threads, |each| pkgs.into_iter().for_each(each));
    Ok(settle_mtimes(root, db, results))
}

/// `rpm -Va` while the database is being read: `read` (one read of it, as
/// `packages::read_root_observed` makes) hands over each package as soon as it is parsed,
/// and the workers verify it meanwhile (on two cores the read took an eighth of the time,
/// with the other core idle). `None` when that read did not succeed: nothing it handed over
/// counts, and the caller reads again and calls [`verify`].
pub fn verify_all_while_reading(
    root: &Root,
    read: impl FnOnce(&mut dyn FnMut(&Package)) -> Option<Database>,
) -> Option<(Database, Vec<Finding>)> {
    let (db, results) = verify_fed(root, MAX_THREADS, read);
    let db = db?;
    let found = settle_mtimes(root, &db, results);
    Some((db, found))
}

/// One package's record number and its findings, each with its `RPMVERIFY_*` bits.
type PackageFindings = (usize, Vec<(Finding, u32)>);

/// Verifies the packages `feed` hands over (its answer is returned beside the findings) on
/// up to `threads` workers, no more than this machine has cores; the findings by package,
/// in record order, each with its `RPMVERIFY_*` bits.
fn verify_fed<R>(
    root: &Root,
    threads: usize,
    feed: impl FnOnce(&mut dyn FnMut(&Package)) -> R,
) -> (R, Vec<PackageFindings>) {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_THREADS)
        .min(threads);
    // The users and the read-only view (see the module's invariants) are made by the first
    // worker while `feed` runs (the others wait for them).
    let prepared: std::sync::OnceLock<(Ids, Option<Root>)> = std::sync::OnceLock::new();
    let prepare = || prepared.get_or_init(|| (Ids::read(root), root.read_only_view().ok()));
    let (tx, rx) = std::sync::mpsc::channel::<Package>();
    let rx = std::sync::Mutex::new(rx);
    let (fed, mut results) = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let (ids, view) = prepare();
                    let mut look = match view {
                        Some(v) => Looker::new(v, true),
                        None => Looker::new(root, false),
                    };
                    let mut done = Vec::new();
                    // The lock is held while waiting: one worker waits, the others wait
                    // for it. A closed channel (the feed is over) ends them all.
                    while let Ok(p) = rx
                        .lock()
                        .map_err(|_| ())
                        .and_then(|r| r.recv().map_err(|_| ()))
                    {
                        done.push((p.instance as usize, verify_package(&mut look, ids, &p)));
                    }
                    done
                })
            })
            .collect();
        // A clone shares the header and its decoded file list (`Package::more`). The
        // sender goes with the feed: the workers then end once the channel is empty.
        let fed = {
            let tx = tx;
            feed(&mut |p| {
                let _ = tx.send(p.clone());
            })
        };
        let results: Vec<PackageFindings> = workers
            .into_iter()
            // A worker's panic is this call's panic: never a silently shorter answer.
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect();
        (fed, results)
    });
    results.sort_by_key(|(instance, _)| *instance);
    (fed, results)
}

/// The findings in order, without the mtime differences rpm ignores: those of files that
/// several packages own, found as `-qf` finds owners (same base name, same directory once
/// symlinks are followed). Only the base names of files whose mtime differs are looked
/// for, in one pass over every package's files.
fn settle_mtimes(root: &Root, db: &Database, results: Vec<PackageFindings>) -> Vec<Finding> {
    let base = |path: &str| path.rsplit('/').next().unwrap_or("").to_string();
    let wanted: HashSet<String> = results
        .iter()
        .flat_map(|(_, f)| f)
        .filter(|(_, r)| r & VERIFY_MTIME != 0)
        .filter_map(|(f, _)| f.path.as_deref().map(base))
        .collect();
    let mut candidates: HashMap<String, Vec<&Package>> = HashMap::new();
    if !wanted.is_empty() {
        for q in &db.packages {
            for e in &q.more().entries {
                let b = e.path.rsplit('/').next().unwrap_or("");
                if let Some(w) = wanted.get(b) {
                    let list = candidates.entry(w.clone()).or_default();
                    if list.last().is_none_or(|l| l.instance != q.instance) {
                        list.push(q);
                    }
                }
            }
        }
    }
    let shared = |path: &str| match candidates.get(&base(path)) {
        Some(c) if c.len() > 1 => super::owners::owning(root, c.iter().copied(), path).len() > 1,
        _ => false,
    };
    results
        .into_iter()
        .flat_map(|(_, f)| f)
        .filter_map(|(mut finding, r)| {
            let path = finding.path.as_deref().unwrap_or("");
            if r & VERIFY_MTIME == 0 || !shared(path) {
                return Some(finding);
            }
            let r = r & !VERIFY_MTIME;
            if r == 0 && finding.state.is_none() {
                return None;
            }
            finding.flags = Some(verify_string(r));
            Some(finding)
        })
        .collect()
}

/// Directories a [`Looker`] holds open at a time.
const DIRS_KEPT: usize = 4;
/// At most this many threads look at files (more only contend on a small machine).
const MAX_THREADS: usize = 4;
/// A thread is worth starting for this many packages.
const PACKAGES_PER_THREAD: usize = 16;

/// What `rpm -V` finds in one package, each finding with its `RPMVERIFY_*` bits (an mtime
/// difference is checked against shared files afterwards, by `verify`).
fn verify_package(look: &mut Looker<'_>, ids: &Ids, p: &Package) -> Vec<(Finding, u32)> {
    let more = p.more();
    let mut out = Vec::new();
    if let Some(e) = &more.files_error {
        // rpm cannot build the file list: it verifies nothing and exits 1, silently.
        out.push((
            Finding {
                package: nevra(p),
                path: None,
                flags: None,
                attr: String::new(),
                missing: false,
                error: Some(format!("the file list cannot be verified: {e}")),
                state: None,
                silent: true,
            },
            0,
        ));
        return out;
    }
    for f in &more.entries {
        let (r, err) = verify_file(look, ids, more.digest_algo, f);
        let state = state_str(f.state);
        let attr = attr_string(f.flags);
        if r & VERIFY_LSTATFAIL != 0 {
            let quiet = f.flags & (FILE_MISSINGOK | FILE_GHOST) != 0;
            out.push((
                Finding {
                    package: nevra(p),
                    path: Some(f.path.clone()),
                    flags: None,
                    attr,
                    missing: true,
                    error: err.map(|e| strerror(&e)),
                    state,
                    silent: quiet,
                },
                0,
            ));
        } else if r != 0 || state.is_some() {
            out.push((
                Finding {
                    package: nevra(p),
                    path: Some(f.path.clone()),
                    flags: Some(verify_string(r)),
                    attr,
                    missing: false,
                    error: None,
                    state,
                    // A line for the state alone does not make rpm fail.
                    silent: false,
                },
                r,
            ));
        }
    }
    out
}

/// The findings as the API answers them: what `rpm -V` shows, and the packages whose file
/// list cannot be verified.
pub fn verify_json(found: &[Finding]) -> Vec<&Finding> {
    found
        .iter()
        .filter(|f| f.path.is_none() || f.line().is_some())
        .collect()
}

/// Whether rpm would exit non-zero for these findings: any difference counts, a state line
/// alone does not.
pub fn differs(found: &[Finding]) -> bool {
    found.iter().any(|f| {
        f.missing || f.path.is_none() || f.flags.as_deref().is_some_and(|s| s != ".........")
    })
}

/// `strerror`'s text for an error, as rpm prints it (`missing` lines, `-qf` errors).
pub fn strerror(e: &io::Error) -> String {
    let text = e.to_string();
    // std writes "Permission denied (os error 13)".
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpm_columns_and_attributes() {
        assert_eq!(verify_string(0), ".........");
        assert_eq!(
            verify_string(VERIFY_SIZE | VERIFY_DIGEST | VERIFY_MTIME),
            "S.5....T."
        );
        assert_eq!(verify_string(VERIFY_READFAIL | VERIFY_DIGEST), "..?......");
        assert_eq!(
            verify_string(VERIFY_MODE | VERIFY_USER | VERIFY_GROUP),
            ".M...UG.."
        );
        assert_eq!(attr_string(FILE_CONFIG | FILE_NOREPLACE), "cn");
        assert_eq!(attr_string(FILE_DOC | FILE_CONFIG), "dc");
        assert_eq!(attr_string(0), "");
        let f = Finding {
            package: "p-1-1.noarch".into(),
            path: Some("/etc/x".into()),
            flags: None,
            attr: "c".into(),
            missing: true,
            error: None,
            state: None,
            silent: false,
        };
        assert_eq!(f.line().unwrap(), "missing   c /etc/x");
        let g = Finding {
            flags: Some("S.5....T.".into()),
            missing: false,
            attr: String::new(),
            ..f
        };
        assert_eq!(g.line().unwrap(), "S.5....T.    /etc/x");
    }
}
