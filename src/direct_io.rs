//! Large bundle files written with direct I/O, where the file system takes it.
//!
//! A bundle at national scale is about 800 MB: the input copies and the row-level
//! tables. Written through the page cache, every byte is first copied into freshly
//! allocated cache pages by the kernel; on the virtual machines this project is measured
//! on, where freed memory is handed back to the host, that copy cost 0.2 to 2.7 s of CPU
//! for 800 MB (measured with `dd`), more than any step of the audit itself. Written with
//! `O_DIRECT` the same bytes go from our own buffer to the device: 0.05 s of CPU, and the
//! file is as durable after `fsync` as before. So [`DirectWriter`] writes whole aligned
//! pieces directly, and the unaligned tail through the page cache.
//!
//! Direct I/O is used only on the local disk file systems known to handle it well
//! (ext2/3/4, XFS, Btrfs, F2FS): on a network share, where each direct write would wait
//! for the server, and on any other file system, files are written through the page
//! cache. Where the file system refuses direct I/O all the same (at open, or on a
//! write), the file is written through the page cache from the first byte not yet
//! written: the bytes on disk are the same either way (tested on both paths). Off
//! Linux, files are always written through the page cache.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

/// Alignment of buffers, lengths and offsets for direct I/O: a page, which covers the
/// logical block size of the usual devices (512 or 4,096 bytes).
const ALIGN: usize = 4096;
/// Bytes gathered before each direct write (a multiple of [`ALIGN`]).
const STAGE: usize = 256 << 10;

/// A file being written, directly where possible. Call [`DirectWriter::finish`] to
/// write the last bytes; dropping it without does not write them.
pub struct DirectWriter {
    file: File,
    direct: bool,
    /// `STAGE + ALIGN` bytes, of which `STAGE` from `start` (aligned) are the stage.
    buf: Vec<u8>,
    start: usize,
    /// Bytes in the stage.
    len: usize,
    /// A write failed: the file's end is unknown, so nothing more is written.
    failed: bool,
}

impl DirectWriter {
    /// Creates (or truncates) the file at `path`.
    pub fn create(path: &Path) -> io::Result<DirectWriter> {
        let (file, direct) = match open_direct(path) {
            Some(file) => (file, true),
            None => (File::create(path)?, false),
        };
        Ok(DirectWriter::of(file, direct))
    }

    fn of(file: File, direct: bool) -> DirectWriter {
        let buf = if direct {
            vec![0u8; STAGE + ALIGN]
        } else {
            Vec::new()
        };
        let start = buf.as_ptr().align_offset(ALIGN).min(ALIGN);
        DirectWriter {
            file,
            direct,
            buf,
            start,
            len: 0,
            failed: false,
        }
    }

    /// True while the file is written directly.
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// Appends `data` to the file.
    pub fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        self.check_not_failed()?;
        while !data.is_empty() {
            if !self.direct {
                return self
                    .file
                    .write_all(data)
                    .inspect_err(|_| self.failed = true);
            }
            let n = (STAGE - self.len).min(data.len());
            let at = self.start + self.len;
            self.buf[at..at + n].copy_from_slice(&data[..n]);
            self.len += n;
            data = &data[n..];
            if self.len == STAGE {
                self.write_stage()?;
            }
        }
        Ok(())
    }

    /// Refuses to write after a failed write.
    fn check_not_failed(&self) -> io::Result<()> {
        if self.failed {
            return Err(io::Error::other("an earlier write to this file failed"));
        }
        Ok(())
    }

    /// Writes the stage: directly while that works, else through the page cache. After
    /// an error, nothing more is written ([`DirectWriter::check_not_failed`]).
    fn write_stage(&mut self) -> io::Result<()> {
        let written = self.write_stage_once();
        if written.is_err() {
            self.failed = true;
        }
        written
    }

    fn write_stage_once(&mut self) -> io::Result<()> {
        let mut done = 0;
        while done < self.len {
            let piece = &self.buf[self.start + done..self.start + self.len];
            match self.file.write(piece) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Direct I/O refused (a file system that takes the flag but not the
                // write, or an unaligned rest after a short write): carry on buffered.
                Err(e) if self.direct && e.raw_os_error() == Some(EINVAL) => {
                    self.stop_direct()?;
                }
                Err(e) => return Err(e),
            }
        }
        self.len = 0;
        Ok(())
    }

    /// Switches the file to writes through the page cache.
    fn stop_direct(&mut self) -> io::Result<()> {
        if self.direct {
            clear_direct(&self.file)?;
            self.direct = false;
        }
        Ok(())
    }

    /// Writes the last bytes (through the page cache: their length is not aligned) and
    /// returns the file, not yet fsynced.
    pub fn finish(mut self) -> io::Result<File> {
        self.check_not_failed()?;
        if self.len > 0 {
            self.stop_direct()?;
            let (start, len) = (self.start, self.len);
            self.file.write_all(&self.buf[start..start + len])?;
        }
        Ok(self.file)
    }
}

#[cfg(target_os = "linux")]
const EINVAL: i32 = rustix::io::Errno::INVAL.raw_os_error();
#[cfg(not(target_os = "linux"))]
const EINVAL: i32 = 22;

/// `statfs` magic numbers of the file systems direct writes are used on: ext2/3/4,
/// XFS, Btrfs, F2FS (local disks that take aligned direct writes at device speed).
#[cfg(target_os = "linux")]
const DIRECT_FILE_SYSTEMS: [u64; 4] = [0xEF53, 0x5846_5342, 0x9123_683E, 0xF2F5_2010];

/// Whether files in `folder` are written directly.
#[cfg(target_os = "linux")]
fn direct_file_system(folder: &Path) -> bool {
    rustix::fs::statfs(folder)
        .is_ok_and(|s| DIRECT_FILE_SYSTEMS.contains(&(s.f_type as u64 & 0xFFFF_FFFF)))
}

/// Opens `path` for direct writes, or `None` where that is not done or refused.
#[cfg(target_os = "linux")]
fn open_direct(path: &Path) -> Option<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !direct_file_system(folder) {
        return None;
    }
    let flags = rustix::fs::OFlags::DIRECT.bits() as i32;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(flags)
        .open(path)
        .ok()
}

#[cfg(not(target_os = "linux"))]
fn open_direct(_: &Path) -> Option<File> {
    None
}

#[cfg(target_os = "linux")]
fn clear_direct(file: &File) -> io::Result<()> {
    use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};
    let flags = fcntl_getfl(file)?;
    fcntl_setfl(file, flags - OFlags::DIRECT)?;
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn clear_direct(_: &File) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes of every length class: under a stage, exactly a stage, over several
    /// stages, with an unaligned tail.
    fn pieces() -> Vec<Vec<u8>> {
        vec![
            b"header\n".to_vec(),
            (0..=255u8).cycle().take(STAGE - 7).collect(),
            vec![b'x'; 3 * STAGE + 5],
            Vec::new(),
            (0..=250u8).cycle().take(ALIGN + 1).collect(),
        ]
    }

    fn write_and_read(direct: bool) -> (Vec<u8>, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        let mut w = if direct {
            DirectWriter::create(&path).unwrap()
        } else {
            DirectWriter::of(File::create(&path).unwrap(), false)
        };
        let mut expected = Vec::new();
        for p in pieces() {
            w.write_all(&p).unwrap();
            expected.extend_from_slice(&p);
        }
        #[cfg(target_os = "linux")]
        if direct && direct_file_system(dir.path()) {
            assert!(
                w.is_direct(),
                "a local disk file system refused direct writes"
            );
        }
        w.finish().unwrap().sync_all().unwrap();
        (std::fs::read(&path).unwrap(), expected)
    }

    #[test]
    fn a_direct_file_holds_exactly_the_bytes_written() {
        let (on_disk, expected) = write_and_read(true);
        assert!(on_disk == expected, "direct: the file differs");
    }

    #[test]
    fn a_file_of_whole_stages_is_written_directly_to_its_last_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.bin");
        let data: Vec<u8> = (0..=255u8).cycle().take(3 * STAGE).collect();
        let mut w = DirectWriter::create(&path).unwrap();
        w.write_all(&data).unwrap();
        w.finish().unwrap().sync_all().unwrap();
        assert!(std::fs::read(&path).unwrap() == data);
        // Nothing written at all: an empty file.
        DirectWriter::create(&path).unwrap().finish().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"");
    }

    #[test]
    fn a_buffered_file_holds_exactly_the_bytes_written() {
        let (on_disk, expected) = write_and_read(false);
        assert!(on_disk == expected, "buffered: the file differs");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_misaligned_direct_write_is_refused_and_the_file_written_buffered_without_a_byte_lost() {
        // A stage that is not aligned makes the kernel refuse the direct write with
        // EINVAL (where the file system takes direct I/O at all): the writer must carry
        // on through the page cache without losing or repeating a byte.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.bin");
        let Some(file) = open_direct(&path) else {
            return;
        };
        let mut w = DirectWriter::of(file, true);
        w.start += 1; // misaligned on purpose
        let data: Vec<u8> = (0..=255u8).cycle().take(2 * STAGE + 3).collect();
        w.write_all(&data).unwrap();
        // A local disk file system refuses it.
        assert!(!w.is_direct(), "a misaligned direct write was taken");
        w.finish().unwrap().sync_all().unwrap();
        assert!(std::fs::read(&path).unwrap() == data);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn only_local_disk_file_systems_are_written_directly() {
        // /proc and /dev are never written directly; the temporary folder is when it is
        // on a local disk.
        assert!(!direct_file_system(Path::new("/proc")));
        assert!(!direct_file_system(Path::new("/dev")));
        let dir = tempfile::tempdir().unwrap();
        let on_disk = direct_file_system(dir.path());
        let w = DirectWriter::create(&dir.path().join("t")).unwrap();
        assert_eq!(w.is_direct(), on_disk);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_full_device_is_an_error_not_a_short_file() {
        if !Path::new("/dev/full").exists() {
            return;
        }
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        for direct in [true, false] {
            let mut w = DirectWriter::of(file.try_clone().unwrap(), direct);
            let err = w.write_all(&vec![0u8; 2 * STAGE]).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(28), "{err}");
            // After a failed write nothing more is written, and the file is not
            // finished as if it were whole.
            assert!(w.write_all(b"more").is_err());
            assert!(w.finish().is_err());
        }
    }
}
