//! The package `sam build` ships for a `provided.al2023` function: a zip holding the
//! binary as `bootstrap`, deflated at zlib's default level as Python's zipfile does.

use std::io::{Cursor, Write};
use std::path::Path;

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

/// Sizes of one function's package, in bytes.
#[derive(Debug, Clone, Copy)]
pub struct PackageSize {
    pub binary: u64,
    pub zipped: u64,
}

/// Zips `binary` as `bootstrap` (in memory) and measures both.
pub fn measure(binary: &Path) -> std::io::Result<PackageSize> {
    let bytes = std::fs::read(binary)?;
    let mut zip = ZipWriter::new(Cursor::new(Vec::with_capacity(bytes.len() / 2)));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(6))
        .unix_permissions(0o755);
    zip.start_file("bootstrap", options)
        .map_err(std::io::Error::other)?;
    zip.write_all(&bytes)?;
    let zipped = zip.finish().map_err(std::io::Error::other)?.into_inner();
    Ok(PackageSize {
        binary: bytes.len() as u64,
        zipped: zipped.len() as u64,
    })
}

/// The machine an ELF binary is built for (`x86_64`, `aarch64`), from its header.
pub fn architecture(binary: &Path) -> String {
    let Ok(bytes) = std::fs::read(binary) else {
        return "unknown".into();
    };
    if bytes.len() < 20 || &bytes[..4] != b"\x7fELF" {
        return "not ELF".into();
    }
    // e_machine, little-endian on both targets Lambda runs.
    match u16::from_le_bytes([bytes[18], bytes[19]]) {
        0x3e => "x86_64".into(),
        0xb7 => "aarch64".into(),
        other => format!("machine {other:#x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressible_binaries_shrink_and_the_zip_reads_back() {
        let dir = std::env::temp_dir().join(format!("aicity-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("fn");
        std::fs::write(&file, vec![7u8; 100_000]).unwrap();
        let size = measure(&file).unwrap();
        assert_eq!(size.binary, 100_000);
        assert!(size.zipped < 2_000, "{size:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_test_binary_is_this_machines_architecture() {
        let me = std::env::current_exe().unwrap();
        assert_eq!(architecture(&me), std::env::consts::ARCH);
    }
}
