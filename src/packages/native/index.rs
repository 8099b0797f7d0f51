//! The index keys rpm keeps for an installed header, as `rpmdbAdd` writes them (rpm 4.18's
//! `lib/rpmdb.c`: `dbiTags`, `tag2index`, `td2key`, `updateRichDep`): one key per value of
//! each indexed tag, with the header number and the value's position (`idx`). Both database
//! writers (SQLite and ndb) store exactly these, so a later `rpm -q NAME`, `-qf`,
//! `--whatprovides` finds the package without rebuilding its indexes.
//!
//! rpm's rules, reproduced here:
//! - `Group` is indexed as "Unknown" when the header has none (rpm's "legacy behavior");
//!   every other absent tag adds nothing.
//! - `Requirename` skips transient requirements (`isTransientReq`: install-time only, such as
//!   `rpmlib(...)` and `Requires(pre)`), and a rich dependency `(a or b)` also adds each
//!   simple name inside it (negated ones as `!name`, sorted, without duplicates, without
//!   `rpmlib(` names), with the same `idx`; the same for the weak dependency indexes and
//!   `Conflictname`.
//! - `Triggername` skips a name already seen in the same header.
//! - `Filetriggername` and `Transfiletriggername` take their `idx` from the trigger index
//!   tag, not from the position.
//! - `Installtid` is an INT32 key (four bytes in host order in both backends); `Sigmd5` is
//!   binary; the rest are strings.
//!
//! Invariant: pure over a header blob validated by `rpmdb::header::raw_entries`.

use crate::rpmdb::header::{raw_entries, HeaderError, RawEntry};

/// One index entry: which index (rpm's dbi name), the key, and the value's position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexKey {
    /// rpm's name of the index (`rpmTagGetName` of its tag): "Name", "Basenames", ….
    pub index: &'static str,
    pub key: Key,
    /// The position of the value in its tag (`dbiIndexItem.tagNum`).
    pub idx: u32,
}

/// A key as rpm's `td2key` makes it from the tag's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// STRING, STRING_ARRAY, I18NSTRING: the text without its NUL.
    Text(String),
    /// INT32 (`Installtid`): stored as its four bytes in host order.
    Int(u32),
    /// BIN (`Sigmd5`).
    Bin(Vec<u8>),
}

impl Key {
    /// The key's bytes as rpm hands them to a backend (`td2key`'s pointer and length).
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Key::Text(s) => s.as_bytes().to_vec(),
            Key::Int(n) => n.to_ne_bytes().to_vec(),
            Key::Bin(b) => b.clone(),
        }
    }
}

/// rpm's index databases in `rpmdbOpen`'s order, with the tag each indexes.
pub const INDEXES: [(&str, u32); 18] = [
    ("Name", 1000),
    ("Basenames", 1117),
    ("Group", 1016),
    ("Requirename", 1049),
    ("Providename", 1047),
    ("Conflictname", 1054),
    ("Obsoletename", 1090),
    ("Triggername", 1066),
    ("Dirnames", 1118),
    ("Installtid", 1128),
    ("Sigmd5", 261),
    ("Sha1header", 269),
    ("Filetriggername", 5069),
    ("Transfiletriggername", 5079),
    ("Recommendname", 5046),
    ("Suggestname", 5049),
    ("Supplementname", 5052),
    ("Enhancename", 5055),
];

const TAG_REQUIREFLAGS: u32 = 1048;
const TAG_FILETRIGGERINDEX: u32 = 5070;
const TAG_TRANSFILETRIGGERINDEX: u32 = 5080;

const TYPE_INT32: u32 = 4;
const TYPE_BIN: u32 = 7;

// rpmds.h: the masks behind `isTransientReq`.
const SENSE_POSTTRANS: u32 = 1 << 5;
const SENSE_PRETRANS: u32 = 1 << 7;
const SENSE_SCRIPT_PRE: u32 = 1 << 9;
const SENSE_SCRIPT_POST: u32 = 1 << 10;
const SENSE_SCRIPT_PREUN: u32 = 1 << 11;
const SENSE_SCRIPT_POSTUN: u32 = 1 << 12;
const SENSE_RPMLIB: u32 = 1 << 24;
const SENSE_KEYRING: u32 = 1 << 26;
const SENSE_META: u32 = 1 << 29;
const INSTALL_ONLY: u32 = SENSE_SCRIPT_PRE
    | SENSE_SCRIPT_POST
    | SENSE_RPMLIB
    | SENSE_KEYRING
    | SENSE_PRETRANS
    | SENSE_POSTTRANS;
const ERASE_ONLY: u32 = SENSE_SCRIPT_PREUN | SENSE_SCRIPT_POSTUN;

/// rpm's `isTransientReq`: needed only while installing, so not indexed.
fn is_transient(flags: u32) -> bool {
    flags & INSTALL_ONLY != 0 && flags & ERASE_ONLY == 0 && flags & SENSE_META == 0
}

/// Every index key of the header `blob` (as stored in the database), in `rpmdbAdd`'s order.
///
/// # Errors
/// [`HeaderError`] when the blob is not a header rpm would import.
pub fn index_keys(blob: &[u8]) -> Result<Vec<IndexKey>, HeaderError> {
    let entries = raw_entries(blob)?;
    let get = |tag: u32| entries.iter().rev().find(|e| e.tag == tag);
    let numbers = |tag: u32| get(tag).map(RawEntry::numbers).unwrap_or_default();
    let mut keys = Vec::new();
    for (index, tag) in INDEXES {
        let Some(e) = get(tag) else {
            if index == "Group" {
                keys.push(IndexKey {
                    index,
                    key: Key::Text("Unknown".into()),
                    idx: 0,
                });
            }
            continue;
        };
        match e.ty {
            TYPE_INT32 => {
                for (i, n) in e.numbers().into_iter().enumerate() {
                    keys.push(IndexKey {
                        index,
                        key: Key::Int(n as u32),
                        idx: i as u32,
                    });
                }
                continue;
            }
            TYPE_BIN => {
                keys.push(IndexKey {
                    index,
                    key: Key::Bin(e.data.to_vec()),
                    idx: 0,
                });
                continue;
            }
            _ => {}
        }
        let values = match index {
            // rpm reads an I18NSTRING in the C locale: the first translation only.
            "Group" => e.strings().into_iter().take(1).collect(),
            _ => e.strings(),
        };
        let flags = numbers(TAG_REQUIREFLAGS);
        let trigger_index = match index {
            "Filetriggername" => numbers(TAG_FILETRIGGERINDEX),
            "Transfiletriggername" => numbers(TAG_TRANSFILETRIGGERINDEX),
            _ => Vec::new(),
        };
        for (i, value) in values.iter().enumerate() {
            let idx = match index {
                "Filetriggername" | "Transfiletriggername" => {
                    trigger_index.get(i).copied().unwrap_or(0) as u32
                }
                _ => i as u32,
            };
            match index {
                "Requirename" if flags.get(i).is_some_and(|&f| is_transient(f as u32)) => continue,
                "Triggername" if values[..i].contains(value) => continue,
                _ => {}
            }
            // td2key: an empty string is a key too (of length 0).
            keys.push(IndexKey {
                index,
                key: Key::Text(value.clone()),
                idx,
            });
            let rich = matches!(
                index,
                "Requirename"
                    | "Conflictname"
                    | "Suggestname"
                    | "Supplementname"
                    | "Recommendname"
                    | "Enhancename"
            );
            if rich && value.starts_with('(') {
                for name in rich_names(value) {
                    keys.push(IndexKey {
                        index,
                        key: Key::Text(name),
                        idx,
                    });
                }
            }
        }
    }
    Ok(keys)
}

/// The simple names inside a rich dependency, as `updateRichDep` indexes them: each name
/// once, sorted by rpm's marked form (`' '` for a plain name, `'!'` for one under an odd
/// number of `if`/`unless` conditions), `rpmlib(` names left out.
fn rich_names(dep: &str) -> Vec<String> {
    let mut marked = Vec::new();
    parse_rich(&mut dep.trim().chars().peekable(), false, &mut marked);
    marked.sort();
    marked.dedup();
    marked
        .into_iter()
        .map(|m| m.strip_prefix(' ').map(str::to_string).unwrap_or(m))
        .collect()
}

/// One parenthesised rich expression, appending the marked names of its simple
/// dependencies. The operators that negate (`if`, `unless`: their condition; `else`: the
/// inverse) follow rpm's `updateRichDepCB`: the names after `if`/`unless` are negated, and
/// an `else` branch repeats the condition's names with the mark flipped.
fn parse_rich(it: &mut std::iter::Peekable<std::str::Chars<'_>>, neg: bool, out: &mut Vec<String>) {
    if it.peek() != Some(&'(') {
        return;
    }
    it.next();
    let mut neg = neg;
    let mut condition_start = out.len();
    loop {
        while it.peek().is_some_and(|c| c.is_whitespace()) {
            it.next();
        }
        match it.peek() {
            None => return,
            Some(')') => {
                it.next();
                return;
            }
            Some('(') => parse_rich(it, neg, out),
            Some(_) => {
                // A name may hold balanced parentheses of its own: `perl(Foo::Bar)`.
                let (mut word, mut depth) = (String::new(), 0u32);
                while let Some(&c) = it.peek() {
                    match c {
                        ')' if depth == 0 => break,
                        c if c.is_whitespace() && depth == 0 => break,
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    word.push(c);
                    it.next();
                }
                match word.as_str() {
                    "if" | "unless" => {
                        neg = !neg;
                        condition_start = out.len();
                    }
                    "else" => {
                        let start = condition_start;
                        let copied: Vec<String> = out[start..].iter().map(|n| flip(n)).collect();
                        out.extend(copied);
                        neg = !neg;
                    }
                    "and" | "or" | "with" | "without" => {}
                    // A version comparison after a name: skip the operator and version.
                    "=" | "<" | ">" | "<=" | ">=" => {
                        while it.peek().is_some_and(|c| c.is_whitespace()) {
                            it.next();
                        }
                        while it.peek().is_some_and(|&c| !c.is_whitespace() && c != ')') {
                            it.next();
                        }
                    }
                    name if !name.starts_with("rpmlib(") => {
                        out.push(format!("{}{name}", if neg { '!' } else { ' ' }));
                    }
                    _ => {}
                }
            }
        }
    }
}

fn flip(marked: &str) -> String {
    match marked.strip_prefix('!') {
        Some(n) => format!(" {n}"),
        None => format!("!{}", marked.trim_start_matches(' ')),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_requirements_are_not_indexed() {
        assert!(is_transient(SENSE_RPMLIB | 10));
        assert!(is_transient(SENSE_SCRIPT_PRE));
        assert!(!is_transient(SENSE_SCRIPT_PRE | SENSE_SCRIPT_PREUN));
        assert!(!is_transient(0));
        assert!(!is_transient(1 << 28 | 8)); // config(x) = v
    }

    #[test]
    fn rich_dependencies_add_their_names() {
        assert_eq!(rich_names("(a or b)"), ["a", "b"]);
        assert_eq!(rich_names("(b >= 1.0 with a)"), ["a", "b"]);
        assert_eq!(rich_names("(a if b)"), ["a", "!b"]);
        assert_eq!(rich_names("(a if b else c)"), ["a", "b", "c", "!b"]);
        assert_eq!(rich_names("((a or rpmlib(X)) and (a or c))"), ["a", "c"]);
    }
}
