//! Wire primitives shared by every packet: integers, Variable Byte Integers, UTF-8
//! strings, binary data, and a bounds-checked reader over one packet body.
//!
//! The reader never panics and never reads past its slice: every accessor returns
//! [`DecodeError::Malformed`] when the bytes run out [MQTT-4.8.0-1 3.1.1, MQTT-4.13.1-1 5.0].

use bytes::{BufMut, Bytes};

use super::error::{DecodeError, EncodeError};

/// Largest value a Variable Byte Integer can hold (four bytes of seven bits).
pub const MAX_VARINT: u32 = 268_435_455;

/// A cursor over the body of one packet.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Takes the next `len` bytes as a slice.
    pub fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < len {
            return Err(DecodeError::Malformed(
                "field runs past the end of the packet",
            ));
        }
        let (head, tail) = self.buf.split_at(len);
        self.buf = tail;
        Ok(head)
    }

    /// Consumes everything that is left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A Variable Byte Integer in its minimal encoding [MQTT-1.5.5-1 5.0].
    pub fn varint(&mut self) -> Result<u32, DecodeError> {
        let (value, used) = match decode_varint(self.buf)? {
            Some(decoded) => decoded,
            None => return Err(DecodeError::Malformed("variable byte integer is truncated")),
        };
        if used != varint_len(value) {
            return Err(DecodeError::Malformed(
                "[MQTT-1.5.5-1 5.0] variable byte integer is not minimally encoded",
            ));
        }
        self.buf = &self.buf[used..];
        Ok(value)
    }

    /// Two-byte length followed by that many bytes.
    pub fn binary(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.u16()? as usize;
        self.take(len)
    }

    /// Two-byte length followed by a UTF-8 string that passes [`validate_utf8`].
    pub fn string(&mut self) -> Result<&'a str, DecodeError> {
        let bytes = self.binary()?;
        validate_utf8(bytes)
    }

    pub fn owned_string(&mut self) -> Result<String, DecodeError> {
        self.string().map(str::to_owned)
    }

    pub fn owned_binary(&mut self) -> Result<Bytes, DecodeError> {
        self.binary().map(Bytes::copy_from_slice)
    }
}

/// Checks an MQTT UTF-8 string and returns it as `&str`.
///
/// Rejects ill-formed UTF-8, overlong forms and surrogates [MQTT-1.5.4-1 5.0] (3.1.1:
/// [MQTT-1.5.3-1 3.1.1]), U+0000 [MQTT-1.5.4-2 5.0], and, as mosquitto 2.0 does under the
/// specs' "MAY close" for them (§1.5.4), the control characters U+0001..U+001F and
/// U+007F..U+009F and the Unicode non-characters. A BOM (U+FEFF) is kept [MQTT-1.5.4-3 5.0].
pub fn validate_utf8(bytes: &[u8]) -> Result<&str, DecodeError> {
    let text = std::str::from_utf8(bytes).map_err(|_| {
        DecodeError::Malformed("[MQTT-1.5.4-1 5.0] string is not well-formed UTF-8")
    })?;
    // Pure ASCII fast path: only control characters can be wrong.
    if text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Ok(text);
    }
    for c in text.chars() {
        let code = c as u32;
        if code == 0 {
            return Err(DecodeError::Malformed(
                "[MQTT-1.5.4-2 5.0] string contains U+0000",
            ));
        }
        if code < 0x20 || (0x7f..=0x9f).contains(&code) {
            return Err(DecodeError::Malformed(
                "string contains a control character",
            ));
        }
        if (0xfdd0..=0xfdef).contains(&code) || code & 0xfffe == 0xfffe {
            return Err(DecodeError::Malformed(
                "string contains a Unicode non-character",
            ));
        }
    }
    Ok(text)
}

/// Decodes a Variable Byte Integer from the front of `buf`.
///
/// Returns `Ok(None)` when more bytes are needed, `Ok(Some((value, bytes_used)))`
/// otherwise, and an error when a fifth byte would be needed. Non-minimal encodings are
/// returned as they are; callers that must refuse them compare `bytes_used` with
/// [`varint_len`].
pub fn decode_varint(buf: &[u8]) -> Result<Option<(u32, usize)>, DecodeError> {
    let mut value: u32 = 0;
    for (i, &byte) in buf.iter().enumerate().take(4) {
        value |= u32::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    if buf.len() >= 4 {
        return Err(DecodeError::Malformed(
            "variable byte integer is longer than four bytes",
        ));
    }
    Ok(None)
}

/// Number of bytes the minimal encoding of `value` takes.
pub fn varint_len(value: u32) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

pub fn put_varint(buf: &mut impl BufMut, mut value: u32) {
    loop {
        let mut byte = (value & 0x7f) as u8;
        value >>= 7;
        if value > 0 {
            byte |= 0x80;
        }
        buf.put_u8(byte);
        if value == 0 {
            break;
        }
    }
}

/// Writes a two-byte length and the bytes; refuses anything above 65,535 bytes.
pub fn put_binary(buf: &mut impl BufMut, bytes: &[u8]) -> Result<(), EncodeError> {
    let len = u16::try_from(bytes.len()).map_err(|_| EncodeError::FieldTooLong(bytes.len()))?;
    buf.put_u16(len);
    buf.put_slice(bytes);
    Ok(())
}

pub fn put_string(buf: &mut impl BufMut, text: &str) -> Result<(), EncodeError> {
    put_binary(buf, text.as_bytes())
}

/// Encoded size of a length-prefixed field.
pub fn binary_len(bytes: &[u8]) -> usize {
    2 + bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_boundaries_round_trip() {
        for value in [
            0, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, MAX_VARINT,
        ] {
            let mut buf = Vec::new();
            put_varint(&mut buf, value);
            assert_eq!(buf.len(), varint_len(value));
            assert_eq!(decode_varint(&buf), Ok(Some((value, buf.len()))));
        }
    }

    #[test]
    fn varint_of_five_bytes_is_malformed() {
        assert!(decode_varint(&[0x80, 0x80, 0x80, 0x80, 0x01]).is_err());
        assert_eq!(decode_varint(&[0x80, 0x80]), Ok(None));
    }

    #[test]
    fn non_minimal_varint_is_refused_by_the_reader() {
        let mut reader = Reader::new(&[0x80, 0x00]);
        assert!(matches!(reader.varint(), Err(DecodeError::Malformed(_))));
    }

    #[test]
    fn utf8_rules() {
        assert!(validate_utf8(b"a/b").is_ok());
        assert!(validate_utf8("caf\u{e9}/\u{feff}".as_bytes()).is_ok());
        assert!(validate_utf8(b"a\0b").is_err());
        assert!(validate_utf8(b"a\tb").is_err());
        assert!(validate_utf8(b"a\x7fb").is_err());
        assert!(validate_utf8("\u{85}".as_bytes()).is_err());
        assert!(validate_utf8("\u{fffe}".as_bytes()).is_err());
        assert!(validate_utf8("\u{fdd0}".as_bytes()).is_err());
        assert!(validate_utf8("\u{1ffff}".as_bytes()).is_err());
        // Encoded surrogate U+D800 and an overlong '/'.
        assert!(validate_utf8(&[0xed, 0xa0, 0x80]).is_err());
        assert!(validate_utf8(&[0xc0, 0xaf]).is_err());
    }

    #[test]
    fn reader_never_reads_past_the_end() {
        let mut reader = Reader::new(&[0x00, 0x05, b'a']);
        assert!(reader.string().is_err());
        let mut reader = Reader::new(&[0x01]);
        assert!(reader.u16().is_err());
    }
}
