//! Recovery codes: ten single-use codes of 80 random bits each, shown once, stored as keyed
//! hashes (like opaque tokens: their entropy makes a slow password hash unnecessary, and a
//! login that uses one costs no argon2 run).

use super::random::{self, RandomError};

pub const COUNT: usize = 10;
/// Letters and digits with nothing that reads alike (no o, 1, l, i).
const ALPHABET: &[u8; 32] = b"abcdefghjkmnpqrstuvwxyz023456789";

/// Ten new codes, formatted `xxxx-xxxx-xxxx-xxxx`.
pub fn generate() -> Result<Vec<String>, RandomError> {
    (0..COUNT).map(|_| one()).collect()
}

fn one() -> Result<String, RandomError> {
    // 16 symbols of 5 bits: 80 bits.
    let bytes = random::bytes::<16>()?;
    let symbols: Vec<char> = bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
        .collect();
    Ok(symbols
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-"))
}

/// The form a typed code is hashed in: case, spaces and dashes do not matter.
pub fn normalize(typed: &str) -> Option<String> {
    let symbols: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (symbols.len() == 16 && symbols.bytes().all(|b| ALPHABET.contains(&b))).then_some(symbols)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn codes_are_distinct_and_read_back_however_typed() {
        let codes = generate().unwrap();
        assert_eq!(codes.len(), COUNT);
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), COUNT);
        let code = &codes[0];
        assert_eq!(code.len(), 19);
        let plain = code.replace('-', "");
        assert_eq!(normalize(code), Some(plain.clone()));
        assert_eq!(normalize(&code.to_uppercase().replace('-', " ")), Some(plain));
        assert_eq!(normalize("123456"), None);
    }
}
