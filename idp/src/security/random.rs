//! Random values straight from the operating system's CSPRNG.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct RandomError(String);

pub fn bytes<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| RandomError(e.to_string()))?;
    Ok(buf)
}

/// `N` random bytes as unpadded base64url: a token safe in URLs, headers and forms.
pub fn token<const N: usize>() -> Result<String, RandomError> {
    Ok(URL_SAFE_NO_PAD.encode(bytes::<N>()?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_differ_and_have_the_expected_length() {
        let (a, b) = (super::token::<32>(), super::token::<32>());
        assert!(matches!((&a, &b), (Ok(a), Ok(b)) if a != b && a.len() == 43));
    }
}
