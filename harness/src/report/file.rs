//! Writing a report file whole or not at all.

use std::path::{Path, PathBuf};

/// Where a report being written is named before it is renamed over the
/// report (see [`write_atomically`]).
const TEMP_PREFIX: &str = ".hangup-report-";

/// Writes `bytes` to a temporary file beside `path`, then renames it over
/// `path`: an interrupted run never leaves a half-written report. The file
/// gets the permissions any new file would (0666 less the umask), and its
/// folder must exist: a report path with a typo is an error, not a new
/// folder.
///
/// Nothing is left beside the report when the process is killed while
/// writing: the file is written unnamed (`O_TMPFILE`), locked, and only
/// then linked under a temporary name and renamed. A temporary name that
/// nobody holds locked is a leftover of a run killed in the instant
/// between the two, and is removed here. (Where the filesystem has no
/// `O_TMPFILE`, the temporary file is named from the start, locked too.)
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("the folder {} does not exist", dir.display()),
        ));
    }
    remove_leftovers(dir);
    let (mut file, named) = match unnamed_file(dir) {
        Ok(file) => (file, None),
        Err(_) => {
            use std::os::unix::fs::PermissionsExt;
            let named = tempfile::Builder::new()
                .prefix(TEMP_PREFIX)
                .tempfile_in(dir)?;
            let (file, named) = named.into_parts();
            file.set_permissions(std::fs::Permissions::from_mode(0o666 & !umask()))?;
            (file, Some(named))
        }
    };
    lock(&file, false)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    let temp = match named {
        Some(named) => named.keep().map_err(|e| e.error)?,
        None => link_under_temp_name(&file, dir)?,
    };
    std::fs::rename(&temp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temp);
    })
}

/// An unnamed file in `dir`, mode 0666 less the umask (which `open`
/// applies), or an error where the filesystem does not support it.
fn unnamed_file(dir: &Path) -> std::io::Result<std::fs::File> {
    use nix::fcntl::OFlag;
    use nix::sys::stat::Mode;
    let fd = nix::fcntl::open(
        dir,
        OFlag::O_TMPFILE | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o666),
    )?;
    Ok(std::fs::File::from(fd))
}

/// Gives the unnamed `file` a temporary name in `dir` (a link through
/// `/proc/self/fd`, which needs no privilege, unlike `AT_EMPTY_PATH`;
/// tempfile picks the random name and retries on a collision).
fn link_under_temp_name(file: &std::fs::File, dir: &Path) -> std::io::Result<PathBuf> {
    use std::os::fd::AsRawFd;
    let source = format!("/proc/self/fd/{}", file.as_raw_fd());
    let named = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .make_in(dir, |temp| {
            nix::unistd::linkat(
                nix::fcntl::AT_FDCWD,
                source.as_str(),
                nix::fcntl::AT_FDCWD,
                temp,
                nix::fcntl::AtFlags::AT_SYMLINK_FOLLOW,
            )
            .map_err(std::io::Error::from)
        })?;
    let ((), temp) = named.keep().map_err(|e| e.error)?;
    Ok(temp)
}

/// Locks `file` exclusively (`flock`), waiting or not; whether it got the
/// lock. The lock lasts while the file is open and dies with the process,
/// which is what tells a leftover from a report being written.
fn lock(file: &std::fs::File, nonblocking: bool) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    let op = nix::libc::LOCK_EX | if nonblocking { nix::libc::LOCK_NB } else { 0 };
    // SAFETY: flock on a file descriptor this function borrows for the
    // call; it touches no memory.
    let rc = unsafe { nix::libc::flock(file.as_raw_fd(), op) };
    if rc == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.kind() == std::io::ErrorKind::WouldBlock {
        Ok(false)
    } else {
        Err(e)
    }
}

/// Removes the temporary reports in `dir` that no running writer holds.
/// Best effort: a leftover that cannot be removed is no reason to lose
/// this run's report.
fn remove_leftovers(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(TEMP_PREFIX) {
            continue;
        }
        let path = entry.path();
        let Ok(file) = std::fs::File::open(&path) else {
            continue;
        };
        if lock(&file, true).unwrap_or(false) {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// The process's umask, as `/proc/self/status` reports it (reading it
/// with umask(2) would have to change it, racing other threads).
fn umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Umask:"))
                .and_then(|value| u32::from_str_radix(value.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_killed_writer_s_leftover_is_removed_and_a_live_one_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        // What a run killed between linking and renaming leaves: a
        // temporary name nobody holds.
        let leftover = dir.path().join(format!("{TEMP_PREFIX}killed"));
        std::fs::write(&leftover, "half a report").expect("leftover");
        // A writer still at work holds its file locked.
        let live = dir.path().join(format!("{TEMP_PREFIX}live"));
        std::fs::write(&live, "being written").expect("live");
        let held = std::fs::File::open(&live).expect("open");
        assert!(lock(&held, true).expect("flock"));
        let other = dir.path().join("notes.txt");
        std::fs::write(&other, "not ours").expect("other");
        write_atomically(&dir.path().join("report.xml"), b"<testsuites/>").expect("write");
        assert!(!leftover.exists(), "the leftover stayed");
        assert!(live.exists(), "a live writer's file was removed");
        assert!(other.exists());
        drop(held);
    }

    #[test]
    fn the_report_is_unnamed_until_it_is_whole() {
        // Where the filesystem has O_TMPFILE (ext4, tmpfs, xfs, btrfs), the
        // file being written has no name a kill could leave behind.
        let dir = tempfile::tempdir().expect("temp dir");
        let file = unnamed_file(dir.path()).expect("O_TMPFILE in the temp folder");
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
        let temp = link_under_temp_name(&file, dir.path()).expect("link");
        assert!(
            temp.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(TEMP_PREFIX)
        );
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 1);
    }

    #[test]
    fn a_report_is_written_whole_with_a_new_file_s_permissions() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("out/report.json");
        // A missing folder is an error, not created behind the user's back.
        let err = write_atomically(&path, b"{}").unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        std::fs::create_dir(dir.path().join("out")).expect("mkdir");
        write_atomically(&path, b"first").expect("first write");
        write_atomically(&path, b"second").expect("second write replaces");
        assert_eq!(std::fs::read(&path).expect("read"), b"second");
        // The umask decides the permissions, as for any new file.
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o666 & !umask(), "{mode:o}");
        // Only the report itself is left: no temporary files beside it.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("out"))
            .expect("dir")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("report.json")]);
    }
}
