//! What a run killed with SIGKILL leaves in the artifact folder, and how
//! the next run takes it away.
//!
//! A case's artifact folder is made while the case runs (its capture and
//! its program's log stream into it), and removed or kept when it ends. A
//! run killed meanwhile can do neither. So each run holds a lock file in
//! the artifact root (`hangup-run-*.lock`, locked with `flock` for as long
//! as the process lives: the kernel lets go of it when the process dies,
//! however it dies), and every folder it makes holds a mark ([`MARK`])
//! naming that lock until the folder is kept. The first folder a run makes
//! in a root first sweeps it: a lock file that can be locked belongs to a
//! dead run, and the folders that name it, with the lock file, are
//! removed. A live run's folders, and kept ones, are never touched; nor is
//! anything the sweeping user may not open (another user's run).

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use nix::fcntl::{Flock, FlockArg};

/// The file in a running case's folder that names its run's lock file.
pub const MARK: &str = ".hangup-running";

/// The start and end of a run's lock file's name.
const LOCK_PREFIX: &str = "hangup-run-";
const LOCK_SUFFIX: &str = ".lock";

/// A run's lock file's name, and the file, locked.
type RunLock = (String, Flock<File>);

/// This process's lock in each root it made folders in.
fn locks() -> MutexGuard<'static, HashMap<PathBuf, RunLock>> {
    static LOCKS: OnceLock<Mutex<HashMap<PathBuf, RunLock>>> = OnceLock::new();
    LOCKS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// Marks `folder`, just made in `root`, as this run's: sweeps `root` of
/// dead runs' folders and takes this run's lock there first, if this is
/// its first folder there.
pub fn mark(root: &Path, folder: &Path) -> std::io::Result<()> {
    let mut locks = locks();
    let name = match locks.get(root) {
        Some((name, _)) => name.clone(),
        None => {
            sweep(root);
            let (name, lock) = take_lock(root)?;
            locks.insert(root.to_path_buf(), (name.clone(), lock));
            name
        }
    };
    drop(locks);
    File::create(folder.join(MARK))?.write_all(name.as_bytes())
}

/// `folder` is kept: it is the user's now, and no sweep removes it.
pub fn unmark(folder: &Path) {
    let _ = std::fs::remove_file(folder.join(MARK));
}

/// The run is over: its lock files go (every folder it made has been kept
/// or removed by now). A folder still marked, of a case thread that never
/// came back, is the next run's to sweep once this process is gone.
pub fn release() {
    for (root, (name, lock)) in locks().drain() {
        let _ = std::fs::remove_file(root.join(&name));
        drop(lock);
    }
}

/// Makes and locks this run's lock file in `root`. It is locked under a
/// temporary name and then renamed, so that no sweep ever sees it
/// unlocked.
fn take_lock(root: &Path) -> std::io::Result<RunLock> {
    let file = tempfile::Builder::new()
        .prefix(".hangup-run-making-")
        .tempfile_in(root)?;
    let (file, path) = file.into_parts();
    let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock)
        .map_err(|(_, errno)| std::io::Error::from(errno))?;
    let name = format!(
        "{LOCK_PREFIX}{}{LOCK_SUFFIX}",
        path.file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix(".hangup-run-making-"))
            .unwrap_or("x")
    );
    path.persist(root.join(&name)).map_err(|e| e.error)?;
    Ok((name, lock))
}

/// Removes from `root` the folders of runs that are gone, and their lock
/// files; what it cannot read or remove, it leaves.
pub fn sweep(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let (mut dead, mut folders) = (Vec::new(), Vec::new());
    for entry in entries.flatten() {
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if name.starts_with(LOCK_PREFIX) && name.ends_with(LOCK_SUFFIX) {
            let Ok(file) = File::open(entry.path()) else {
                continue;
            };
            // Locked: its run lives. Locked by us: it is dead, and stays
            // locked until its folders and it are gone.
            if let Ok(lock) = Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                dead.push((name, lock));
            }
        } else if name.starts_with("hangup-") && entry.path().join(MARK).is_file() {
            folders.push(entry.path());
        }
    }
    let mut removed = Vec::new();
    for folder in folders {
        let Ok(owner) = std::fs::read_to_string(folder.join(MARK)) else {
            continue;
        };
        if dead.iter().any(|(name, _)| *name == owner) && std::fs::remove_dir_all(&folder).is_ok() {
            removed.push(folder);
        }
    }
    for (name, lock) in dead {
        let _ = std::fs::remove_file(root.join(name));
        drop(lock);
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder marked by a lock nobody holds is swept with the lock; one
    /// whose lock is held, and one without a mark, stay.
    #[test]
    fn only_a_dead_runs_folders_are_swept() {
        let root = tempfile::tempdir().expect("temp dir");
        let root = root.path();
        let folder = |name: &str, owner: Option<&str>| {
            let path = root.join(name);
            std::fs::create_dir(&path).expect("mkdir");
            if let Some(owner) = owner {
                std::fs::write(path.join(MARK), owner).expect("mark");
            }
            path
        };
        // A dead run: its lock file, not locked.
        std::fs::write(root.join("hangup-run-dead.lock"), "").expect("lock file");
        let dead = folder("hangup-s-c-dead", Some("hangup-run-dead.lock"));
        // A live run: its lock file, locked.
        let (live_name, live_lock) = take_lock(root).expect("lock");
        let live = folder("hangup-s-c-live", Some(&live_name));
        // A kept folder: no mark.
        let kept = folder("hangup-s-c-kept", None);

        assert_eq!(sweep(root), std::slice::from_ref(&dead));
        assert!(!dead.exists() && !root.join("hangup-run-dead.lock").exists());
        assert!(live.exists() && kept.exists() && root.join(&live_name).exists());
        drop(live_lock);
        assert_eq!(sweep(root), [live]);
        assert!(kept.exists());
        assert_eq!(
            std::fs::read_dir(root).expect("list").count(),
            1,
            "only the kept folder is left"
        );
    }
}
