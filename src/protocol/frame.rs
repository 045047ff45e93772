//! Framing: decides from the fixed header whether a whole packet is buffered, without
//! allocating, and refuses oversized packets before their bodies are read.

use super::error::DecodeError;
use super::wire;

/// The fixed header of a buffered packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// The first byte: packet type in the high nibble, flags in the low nibble.
    pub first_byte: u8,
    /// Bytes taken by the first byte and the remaining length.
    pub header_len: usize,
    /// The remaining length: bytes after the fixed header.
    pub remaining_len: usize,
}

impl FrameHeader {
    /// Total size of the packet on the wire.
    pub fn frame_len(&self) -> usize {
        self.header_len + self.remaining_len
    }

    /// The packet type number (1..=15; 0 is reserved).
    pub fn packet_type(&self) -> u8 {
        self.first_byte >> 4
    }
}

/// What [`check_frame`] found at the front of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameStatus {
    /// A whole packet of `header.frame_len()` bytes is buffered.
    Complete(FrameHeader),
    /// At least `needed` more bytes must arrive before the packet is whole.
    Incomplete { needed: usize },
}

/// Checks whether `buf` starts with a whole packet of at most `max_packet_size` bytes.
///
/// The size check uses the remaining length alone, so a peer announcing 256 MB is
/// refused after at most five bytes; nothing is buffered or allocated here.
pub fn check_frame(buf: &[u8], max_packet_size: usize) -> Result<FrameStatus, DecodeError> {
    let Some(&first_byte) = buf.first() else {
        return Ok(FrameStatus::Incomplete { needed: 2 });
    };
    let Some((remaining, varint_len)) = wire::decode_varint(&buf[1..])? else {
        return Ok(FrameStatus::Incomplete { needed: 1 });
    };
    let header = FrameHeader {
        first_byte,
        header_len: 1 + varint_len,
        remaining_len: remaining as usize,
    };
    if header.frame_len() > max_packet_size {
        return Err(DecodeError::PacketTooLarge {
            size: header.frame_len(),
            max: max_packet_size,
        });
    }
    if buf.len() < header.frame_len() {
        return Ok(FrameStatus::Incomplete {
            needed: header.frame_len() - buf.len(),
        });
    }
    Ok(FrameStatus::Complete(header))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_how_many_bytes_are_missing() {
        assert_eq!(
            check_frame(&[], 100),
            Ok(FrameStatus::Incomplete { needed: 2 })
        );
        assert_eq!(
            check_frame(&[0x30], 100),
            Ok(FrameStatus::Incomplete { needed: 1 })
        );
        assert_eq!(
            check_frame(&[0x30, 0x80], 1000),
            Ok(FrameStatus::Incomplete { needed: 1 })
        );
        assert_eq!(
            check_frame(&[0x30, 5, 0, 1], 100),
            Ok(FrameStatus::Incomplete { needed: 3 })
        );
        let complete = check_frame(&[0xc0, 0, 0xff], 100);
        assert_eq!(
            complete,
            Ok(FrameStatus::Complete(FrameHeader {
                first_byte: 0xc0,
                header_len: 2,
                remaining_len: 0
            }))
        );
    }

    #[test]
    fn refuses_a_256_megabyte_connect_from_its_header() {
        let header = [0x10, 0xff, 0xff, 0xff, 0x7f];
        assert_eq!(
            check_frame(&header, 65_536),
            Err(DecodeError::PacketTooLarge {
                size: 5 + 268_435_455,
                max: 65_536
            })
        );
    }

    #[test]
    fn refuses_a_five_byte_remaining_length() {
        assert!(check_frame(&[0x30, 0xff, 0xff, 0xff, 0xff, 0x01], usize::MAX).is_err());
    }
}
