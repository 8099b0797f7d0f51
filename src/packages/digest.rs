//! File digests in the algorithm an rpm header names (`FILEDIGESTALGO`, rpm's
//! `PGPHASHALGO_*`), from RustCrypto's crates: what `rpm -V` compares (`verify`) and what a
//! native install checks each file's content against (`native`).
//!
//! Invariant: lowercase hex, as headers record file digests.

/// A digest in rpm's algorithm (`PGPHASHALGO_*`: 1 MD5, 2 SHA-1, 8 SHA-256, 9 SHA-384,
/// 10 SHA-512, 11 SHA-224), fed as the bytes go by.
pub enum Hasher {
    Md5(md5::Md5),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
    Sha224(sha2::Sha224),
}

impl Hasher {
    /// `None` for an algorithm rpm does not define.
    pub fn new(algo: u32) -> Option<Hasher> {
        use sha2::Digest;
        Some(match algo {
            1 => Hasher::Md5(md5::Md5::new()),
            2 => Hasher::Sha1(sha1::Sha1::new()),
            8 => Hasher::Sha256(sha2::Sha256::new()),
            9 => Hasher::Sha384(sha2::Sha384::new()),
            10 => Hasher::Sha512(sha2::Sha512::new()),
            11 => Hasher::Sha224(sha2::Sha224::new()),
            _ => return None,
        })
    }

    pub fn update(&mut self, b: &[u8]) {
        use sha2::Digest;
        match self {
            Hasher::Md5(d) => d.update(b),
            Hasher::Sha1(d) => d.update(b),
            Hasher::Sha256(d) => d.update(b),
            Hasher::Sha384(d) => d.update(b),
            Hasher::Sha512(d) => d.update(b),
            Hasher::Sha224(d) => d.update(b),
        }
    }

    /// Lowercase hex, as headers record file digests (a table, not `write!` per byte:
    /// `rpm -V` formats one for every file).
    pub fn hex(self) -> String {
        use sha2::Digest;
        let bytes = match self {
            Hasher::Md5(d) => d.finalize().to_vec(),
            Hasher::Sha1(d) => d.finalize().to_vec(),
            Hasher::Sha256(d) => d.finalize().to_vec(),
            Hasher::Sha384(d) => d.finalize().to_vec(),
            Hasher::Sha512(d) => d.finalize().to_vec(),
            Hasher::Sha224(d) => d.finalize().to_vec(),
        };
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut hex = String::with_capacity(bytes.len() * 2);
        for b in bytes {
            hex.push(HEX[usize::from(b >> 4)] as char);
            hex.push(HEX[usize::from(b & 15)] as char);
        }
        hex
    }
}
