//! The CRC family: `crc16` (`nc_crc16.c`), `crc32` and `crc32a` (`nc_crc32.c`).
//!
//! The tables are computed at compile time from the polynomials; they equal the literal tables
//! in twemproxy's source (checked by the tests below against a few of their entries).

/// CRC-16/XMODEM table (polynomial 0x1021, MSB first).
const CRC16_TABLE: [u16; 256] = crc16_table();

/// CRC-32/IEEE table (reflected polynomial 0xEDB88320).
const CRC32_TABLE: [u32; 256] = crc32_table();

const fn crc16_table() -> [u16; 256] {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

const fn crc32_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

/// `crc16`: table-driven CRC-16/XMODEM, except that twemproxy's accumulator is a `uint32_t`
/// that is never masked to 16 bits, so the bits shifted past bit 15 stay and the result is a
/// full 32-bit value. (The signed `char` of the key is masked with `& 0xff`, so no sign
/// extension shows here.)
pub(super) fn crc16(key: &[u8]) -> u32 {
    key.iter().fold(0u32, |crc, &byte| {
        let index = ((crc >> 8) ^ u32::from(byte)) & 0xff;
        (crc << 8) ^ u32::from(CRC16_TABLE[index as usize])
    })
}

/// Standard CRC-32/IEEE, the value zlib's `crc32()` returns.
fn crc32_ieee(key: &[u8]) -> u32 {
    !key.iter().fold(u32::MAX, |crc, &byte| CRC32_TABLE[((crc ^ u32::from(byte)) & 0xff) as usize] ^ (crc >> 8))
}

/// `crc32`, "libmemcached compatible": bits 16..31 of the standard CRC-32 masked to 15 bits, so
/// only 32768 distinct values exist.
pub(super) fn crc32(key: &[u8]) -> u32 {
    (crc32_ieee(key) >> 16) & 0x7fff
}

/// `crc32a`: the standard CRC-32/IEEE.
pub(super) fn crc32a(key: &[u8]) -> u32 {
    crc32_ieee(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_match_twemproxys_literals() {
        assert_eq!(&CRC16_TABLE[..4], &[0x0000, 0x1021, 0x2042, 0x3063]);
        assert_eq!(CRC16_TABLE[255], 0x1ef0);
        assert_eq!(&CRC32_TABLE[..4], &[0x0000_0000, 0x7707_3096, 0xee0e_612c, 0x9909_51ba]);
        assert_eq!(CRC32_TABLE[255], 0x2d02_ef8d);
    }

    #[test]
    fn crc32a_is_the_standard_check_value() {
        // The CRC catalogue's check value for CRC-32/ISO-HDLC.
        assert_eq!(crc32a(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn crc16_low_bits_are_xmodem() {
        // CRC-16/XMODEM's check value; the untruncated accumulator has extra high bits.
        assert_eq!(crc16(b"123456789") & 0xffff, 0x31C3);
    }
}
