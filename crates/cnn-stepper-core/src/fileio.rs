//! Opening and writing files without surprises: every file this crate reads or writes goes
//! through here.
//!
//! - [`open_regular`] opens a file for reading only if it is a regular file (after following
//!   symbolic links). A named pipe would block the reader forever and a device or directory
//!   holds no data of ours, so each is refused by name and kind; a symlink loop is reported as
//!   one, not as a missing file.
//! - [`write_atomically`] replaces a file so that readers (and a crash) see the old contents or
//!   the new, never a part. A symbolic link is followed and its target replaced; a path that
//!   exists and is not a regular file (a device such as `/dev/full`, a named pipe, a directory)
//!   is refused instead of being replaced by a regular file.
//! - [`check_writable`] tells before a long run whether a save to a path can work at all.
//!
//! Every [`FileError`] message starts with the path the caller gave, so it can be shown as is.

use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File, Metadata};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// Symbolic links followed before a path counts as a loop (Linux's own limit).
const MAX_SYMLINK_HOPS: usize = 40;

/// Where no process table can be consulted, a temporary file of ours older than this is taken
/// to belong to a write that died.
const STALE_AGE: Duration = Duration::from_secs(60 * 60);

/// `ELOOP`, the OS error for a symlink loop: `io::ErrorKind::FilesystemLoop` is not stable.
#[cfg(any(target_os = "linux", target_os = "android"))]
const ELOOP: Option<i32> = Some(40);
#[cfg(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "openbsd",
    target_os = "netbsd",
    target_os = "dragonfly"
))]
const ELOOP: Option<i32> = Some(62);
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "openbsd",
    target_os = "netbsd",
    target_os = "dragonfly"
)))]
const ELOOP: Option<i32> = None;

/// What a path is when it is not a regular file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A directory (folder).
    Directory,
    /// A named pipe (FIFO): reading one with no writer blocks forever.
    NamedPipe,
    /// A character device such as `/dev/null` or `/dev/full`.
    CharDevice,
    /// A block device such as a disk.
    BlockDevice,
    /// A Unix domain socket.
    Socket,
    /// Anything else that is not a regular file.
    Other,
}

impl FileKind {
    /// The kind of a path's metadata (links followed), or `None` for a regular file.
    pub fn of(meta: &Metadata) -> Option<FileKind> {
        let t = meta.file_type();
        if t.is_file() {
            return None;
        }
        if t.is_dir() {
            return Some(FileKind::Directory);
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt;
            if t.is_fifo() {
                return Some(FileKind::NamedPipe);
            }
            if t.is_char_device() {
                return Some(FileKind::CharDevice);
            }
            if t.is_block_device() {
                return Some(FileKind::BlockDevice);
            }
            if t.is_socket() {
                return Some(FileKind::Socket);
            }
        }
        Some(FileKind::Other)
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::Directory => "a directory",
            FileKind::NamedPipe => "a named pipe (FIFO)",
            FileKind::CharDevice => "a character device",
            FileKind::BlockDevice => "a block device",
            FileKind::Socket => "a socket",
            FileKind::Other => "a special file",
        })
    }
}

/// Why a file could not be opened, written or checked. Every message starts with the path the
/// caller gave.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// Nothing exists at the path (a dangling symbolic link counts as nothing).
    #[error("{}: no such file", path.display())]
    Missing {
        /// The path asked for.
        path: PathBuf,
    },
    /// Following the path's symbolic links never ends.
    #[error("{}: too many levels of symbolic links (a symlink loop)", path.display())]
    SymlinkLoop {
        /// The path asked for.
        path: PathBuf,
    },
    /// The path exists but is not a regular file.
    #[error("{}{} is {kind}, not a regular file", path.display(), via(target.as_deref()))]
    NotRegular {
        /// The path asked for.
        path: PathBuf,
        /// Where its symbolic links lead, if anywhere else.
        target: Option<PathBuf>,
        /// What it is instead.
        kind: FileKind,
    },
    /// The folder that would hold the file does not exist.
    #[error("{}: the folder {} does not exist", path.display(), dir.display())]
    FolderMissing {
        /// The path asked for.
        path: PathBuf,
        /// The missing folder.
        dir: PathBuf,
    },
    /// What should be the file's folder is something else.
    #[error("{}: {} is not a folder", path.display(), dir.display())]
    NotAFolder {
        /// The path asked for.
        path: PathBuf,
        /// The path that is not a folder.
        dir: PathBuf,
    },
    /// The path ends in `/`, `..` or nothing: there is no file name to write.
    #[error("{}: does not name a file", path.display())]
    NoFileName {
        /// The path asked for.
        path: PathBuf,
    },
    /// The operating system refused access.
    #[error("{}: permission denied: cannot {action}", path.display())]
    PermissionDenied {
        /// The path asked for.
        path: PathBuf,
        /// What was being done, e.g. "create a file in /etc".
        action: String,
    },
    /// The file system is mounted read-only.
    #[error("{}: the file system is read-only: cannot {action}", path.display())]
    ReadOnly {
        /// The path asked for.
        path: PathBuf,
        /// What was being done.
        action: String,
    },
    /// The disk (or the user's quota) is full.
    #[error("{}: no space left on the device (disk or quota full): cannot {action}", path.display())]
    NoSpace {
        /// The path asked for.
        path: PathBuf,
        /// What was being done.
        action: String,
    },
    /// Any other failure, with what the operating system said.
    #[error("{}: cannot {action}: {source}", path.display())]
    Io {
        /// The path asked for.
        path: PathBuf,
        /// What was being done.
        action: String,
        /// What the operating system said.
        source: io::Error,
    },
}

fn via(target: Option<&Path>) -> String {
    target.map(|t| format!(" (a symbolic link to {})", t.display())).unwrap_or_default()
}

impl FileError {
    /// The path the caller gave.
    pub fn path(&self) -> &Path {
        match self {
            FileError::Missing { path }
            | FileError::SymlinkLoop { path }
            | FileError::NotRegular { path, .. }
            | FileError::FolderMissing { path, .. }
            | FileError::NotAFolder { path, .. }
            | FileError::NoFileName { path }
            | FileError::PermissionDenied { path, .. }
            | FileError::ReadOnly { path, .. }
            | FileError::NoSpace { path, .. }
            | FileError::Io { path, .. } => path,
        }
    }

    /// Classifies an OS error met while doing `action` on (something for) `path`. A missing
    /// file is not classified here: only the caller knows whether "not found" means the file.
    pub fn from_io(path: &Path, action: impl Into<String>, source: io::Error) -> Self {
        let path = path.to_path_buf();
        let action = action.into();
        if ELOOP.is_some() && source.raw_os_error() == ELOOP {
            return FileError::SymlinkLoop { path };
        }
        match source.kind() {
            io::ErrorKind::PermissionDenied => FileError::PermissionDenied { path, action },
            io::ErrorKind::ReadOnlyFilesystem => FileError::ReadOnly { path, action },
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => FileError::NoSpace { path, action },
            _ => FileError::Io { path, action, source },
        }
    }

    /// Like [`FileError::from_io`], but "not found" means the file itself is missing.
    fn reading(path: &Path, source: io::Error) -> Self {
        if source.kind() == io::ErrorKind::NotFound {
            FileError::Missing { path: path.to_path_buf() }
        } else {
            FileError::from_io(path, "read the file", source)
        }
    }
}

/// Refuses `meta` unless it describes a regular file.
fn require_regular(path: &Path, target: Option<&Path>, meta: &Metadata) -> Result<(), FileError> {
    match FileKind::of(meta) {
        None => Ok(()),
        Some(kind) => Err(FileError::NotRegular {
            path: path.to_path_buf(),
            target: target.filter(|t| *t != path).map(Path::to_path_buf),
            kind,
        }),
    }
}

/// Opens `path` for reading if it is a regular file (symbolic links followed).
///
/// The kind is checked before opening, so a named pipe is refused instead of blocking the
/// reader until some other program writes to it; it is checked again on the opened handle, so
/// a file swapped for something else in between is refused too.
pub fn open_regular(path: &Path) -> Result<File, FileError> {
    let meta = fs::metadata(path).map_err(|e| FileError::reading(path, e))?;
    require_regular(path, None, &meta)?;
    let file = File::open(path).map_err(|e| FileError::reading(path, e))?;
    let meta = file.metadata().map_err(|e| FileError::reading(path, e))?;
    require_regular(path, None, &meta)?;
    Ok(file)
}

/// Where `path` leads once its final symbolic links are followed (`path` itself if it is no
/// link). A dangling link leads to where its target would be, so writing creates the target.
fn resolve(path: &Path) -> Result<PathBuf, FileError> {
    let mut current = path.to_path_buf();
    for _ in 0..MAX_SYMLINK_HOPS {
        match fs::symlink_metadata(&current) {
            Ok(m) if m.file_type().is_symlink() => {
                let target =
                    fs::read_link(&current).map_err(|e| FileError::from_io(path, "follow the symbolic link", e))?;
                current = match current.parent() {
                    Some(parent) if target.is_relative() => parent.join(target),
                    _ => target,
                };
            }
            Ok(_) => return Ok(current),
            // Nothing there (or a file where a folder should be, which the folder check
            // reports): the path is where a write would go.
            Err(e) if absent(&e) => return Ok(current),
            Err(e) => return Err(FileError::from_io(path, "look at the file", e)),
        }
    }
    Err(FileError::SymlinkLoop { path: path.to_path_buf() })
}

/// The folder and file name of a (resolved) path; an empty parent is the working directory.
fn split<'a>(path: &Path, target: &'a Path) -> Result<(&'a Path, &'a std::ffi::OsStr), FileError> {
    let name = target.file_name().ok_or_else(|| FileError::NoFileName { path: path.to_path_buf() })?;
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Ok((dir, name))
}

/// Whether a lookup failed because nothing is at the path: it does not exist, or one of its
/// folders is a file.
fn absent(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory)
}

/// Refuses an existing `target` that is not a regular file; `Ok(None)` if nothing is there.
fn existing_regular(path: &Path, target: &Path) -> Result<Option<Metadata>, FileError> {
    match fs::metadata(target) {
        Ok(meta) => {
            require_regular(path, Some(target), &meta)?;
            Ok(Some(meta))
        }
        Err(e) if absent(&e) => Ok(None),
        Err(e) => Err(FileError::from_io(path, "look at the file", e)),
    }
}

/// Refuses a `dir` that does not exist or is not a folder.
fn require_folder(path: &Path, dir: &Path) -> Result<(), FileError> {
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(FileError::NotAFolder { path: path.to_path_buf(), dir: dir.to_path_buf() }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(FileError::FolderMissing { path: path.to_path_buf(), dir: dir.to_path_buf() })
        }
        Err(e) => Err(FileError::from_io(path, format!("look at the folder {}", dir.display()), e)),
    }
}

/// Tells apart temporary files of concurrent writes from one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// `.NAME.tmp-`: the start of the names of our temporary files for `NAME`.
fn temp_prefix(name: &std::ffi::OsStr) -> OsString {
    let mut prefix = OsString::from(".");
    prefix.push(name);
    prefix.push(".tmp-");
    prefix
}

/// Creates a new, empty temporary file `.NAME.tmp-PID-N` in `dir`.
fn create_temp(path: &Path, dir: &Path, name: &std::ffi::OsStr) -> Result<(PathBuf, File), FileError> {
    loop {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut temp_name = temp_prefix(name);
        temp_name.push(format!("{}-{n}", std::process::id()));
        let temp = dir.join(temp_name);
        match File::options().write(true).create_new(true).open(&temp) {
            Ok(file) => return Ok((temp, file)),
            // Left by an earlier process that had our PID: take the next number.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(FileError::from_io(path, format!("create a file in the folder {}", dir.display()), e));
            }
        }
    }
}

/// The process id in a temporary file name of ours for `NAME` (`.NAME.tmp-PID-N`), if it is one.
fn temp_pid(file_name: &std::ffi::OsStr, prefix: &std::ffi::OsStr) -> Option<u32> {
    let rest = file_name.to_str()?.strip_prefix(prefix.to_str()?)?;
    let (pid, n) = rest.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(pid) && digits(n)).then(|| pid.parse().ok()).flatten()
}

/// Whether the process that named a temporary file is certainly gone. On Linux the process
/// table says; elsewhere a file older than [`STALE_AGE`] is taken as abandoned.
fn abandoned(pid: u32, meta: &Metadata) -> bool {
    if pid == std::process::id() {
        return false;
    }
    if Path::new("/proc/self").exists() {
        return !Path::new("/proc").join(pid.to_string()).exists();
    }
    meta.modified().ok().and_then(|m| SystemTime::now().duration_since(m).ok()).is_some_and(|age| age > STALE_AGE)
}

/// Removes the temporary files that earlier writes of `NAME` in `dir` left behind when they
/// were killed. Best effort: a folder that cannot be listed or a file that cannot be removed
/// changes nothing about the write at hand.
fn remove_stale_temporaries(dir: &Path, name: &std::ffi::OsStr) {
    let prefix = temp_prefix(name);
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let Some(pid) = temp_pid(&entry.file_name(), &prefix) else { continue };
        // Only regular files: never follow a link someone put under such a name.
        let Ok(meta) = fs::symlink_metadata(entry.path()) else { continue };
        if meta.file_type().is_file() && abandoned(pid, &meta) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Replaces the file at `path` with `bytes` so that readers see the old file or the new one,
/// never a part, and a crash at any moment leaves one of the two.
///
/// - A symbolic link is followed and its target replaced (the link stays a link).
/// - A path that exists and is not a regular file (device, named pipe, directory, socket) is
///   refused, naming it.
/// - The bytes go to `.NAME.tmp-PID-N` in the target's folder (same file system, so the
///   rename is atomic), are synced to disk, then renamed over the target, and the folder is
///   synced. An existing file's permissions are kept.
/// - Temporary files of earlier writes of the same name whose process is gone (Linux: no
///   `/proc/PID`; elsewhere: older than an hour) are removed first.
///
/// On any error the temporary file is removed and the old file is untouched.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let target = resolve(path)?;
    let existing = existing_regular(path, &target)?;
    let (dir, name) = split(path, &target)?;
    require_folder(path, dir)?;
    remove_stale_temporaries(dir, name);
    let (temp, mut file) = create_temp(path, dir, name)?;
    let written = (|| {
        if let Some(meta) = &existing {
            // Best effort: a file system without Unix permissions still gets the data.
            let _ = file.set_permissions(meta.permissions());
        }
        file.write_all(bytes).map_err(|e| FileError::from_io(path, format!("write {}", temp.display()), e))?;
        file.sync_all().map_err(|e| FileError::from_io(path, format!("write {} to disk", temp.display()), e))?;
        drop(file);
        fs::rename(&temp, &target)
            .map_err(|e| FileError::from_io(path, format!("replace {} with {}", target.display(), temp.display()), e))
    })();
    if let Err(e) = written {
        // Best effort: the write already failed, and that is the error worth reporting.
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    // Make the rename itself durable. Best effort: the data is already on disk, and some
    // platforms and file systems cannot open or sync a directory.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Checks, before a long run, that [`write_atomically`] to `path` can succeed: the folder
/// exists and is a folder, a file can be created in it (one is created and removed), and the
/// path, if it exists, is a regular file or a symbolic link to one.
///
/// It cannot promise the disk will still have room at the end.
pub fn check_writable(path: &Path) -> Result<(), FileError> {
    let target = resolve(path)?;
    existing_regular(path, &target)?;
    let (dir, name) = split(path, &target)?;
    require_folder(path, dir)?;
    let (temp, file) = create_temp(path, dir, name)?;
    drop(file);
    fs::remove_file(&temp).map_err(|e| FileError::from_io(path, format!("remove {}", temp.display()), e))
}

#[cfg(test)]
mod tests {
    use super::temp_pid;
    use std::ffi::OsStr;

    #[test]
    fn only_our_temporary_names_are_recognised() {
        let prefix = OsStr::new(".run.safetensors.tmp-");
        assert_eq!(temp_pid(OsStr::new(".run.safetensors.tmp-123-4"), prefix), Some(123));
        assert_eq!(temp_pid(OsStr::new(".run.safetensors.tmp-123-"), prefix), None);
        assert_eq!(temp_pid(OsStr::new(".run.safetensors.tmp-12a-4"), prefix), None);
        assert_eq!(temp_pid(OsStr::new(".run.safetensors.tmp-123-4.bak"), prefix), None);
        assert_eq!(temp_pid(OsStr::new(".other.tmp-123-4"), prefix), None);
        assert_eq!(temp_pid(OsStr::new("run.safetensors"), prefix), None);
    }
}
