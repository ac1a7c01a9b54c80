//! The one place that turns values into bytes for disk: bincode 2 through serde, standard
//! configuration (little endian, variable-length integers). Golden-bytes tests pin the
//! format so it cannot change by accident.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// A payload that does not decode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodecError(pub String);

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot decode payload: {}", self.0)
    }
}

impl std::error::Error for CodecError {}

/// Encodes a value, appending to `out`.
pub fn encode_into<T: Serialize>(value: &T, out: &mut Vec<u8>) {
    bincode::serde::encode_into_std_write(value, out, config()).expect("writing to a Vec cannot fail");
}

/// Encodes a value.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(value, &mut out);
    out
}

/// Decodes a value that must span all of `bytes`.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (value, used) =
        bincode::serde::decode_from_slice(bytes, config()).map_err(|e| CodecError(e.to_string()))?;
    if used != bytes.len() {
        return Err(CodecError(format!("{} trailing bytes", bytes.len() - used)));
    }
    Ok(value)
}

/// Reads the first `N` unsigned integers of an encoding without decoding the rest (e.g. a
/// record's sequence number): the standard configuration's varints.
pub fn leading_varints<const N: usize>(bytes: &[u8]) -> Option<[u64; N]> {
    let mut out = [0u64; N];
    let mut at = 0usize;
    for slot in &mut out {
        let tag = *bytes.get(at)?;
        let (value, len) = match tag {
            0..=250 => (u64::from(tag), 1),
            251 => (u64::from(u16::from_le_bytes(bytes.get(at + 1..at + 3)?.try_into().ok()?)), 3),
            252 => (u64::from(u32::from_le_bytes(bytes.get(at + 1..at + 5)?.try_into().ok()?)), 5),
            253 => (u64::from_le_bytes(bytes.get(at + 1..at + 9)?.try_into().ok()?), 9),
            _ => return None,
        };
        *slot = value;
        at += len;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Command, Order, OrderKind, Outcome, RejectReason, Side, UbsRecord};

    // Expected bytes derived by hand from bincode's standard configuration: integers are
    // varints (< 251: one byte; else a tag 251/252/253 then u16/u32/u64 little endian),
    // enum variants are their index as a varint, structs are their fields in order.

    #[test]
    fn golden_place_record() {
        let record = UbsRecord {
            seq: 300,
            command: Command::Place(Order {
                order_id: 7,
                user: 70_000,
                symbol: 1,
                side: Side::Sell,
                kind: OrderKind::Ioc,
                price: 8_490_712,
                qty: 5,
            }),
            outcome: Outcome::Accepted,
        };
        let expected = [
            251, 0x2C, 0x01, // seq 300 = u16 tag + 0x012C
            2,    // Command::Place
            7,    // order_id
            252, 0x70, 0x11, 0x01, 0x00, // user 70_000 = 0x00011170
            1,    // symbol
            1,    // Side::Sell
            1,    // OrderKind::Ioc
            252, 0xD8, 0x8E, 0x81, 0x00, // price 8_490_712 = 0x00818ED8
            5,    // qty
            0,    // Outcome::Accepted
        ];
        assert_eq!(encode(&record), expected);
        assert_eq!(decode::<UbsRecord>(&expected), Ok(record));
    }

    #[test]
    fn golden_rejected_deposit() {
        let record = UbsRecord {
            seq: 1,
            command: Command::Deposit { request_id: 2, user: 3, asset: 4, amount: u64::MAX },
            outcome: Outcome::Rejected(RejectReason::Overflow),
        };
        let mut expected = vec![1, 0, 2, 3, 4, 253];
        expected.extend_from_slice(&[0xFF; 8]);
        expected.extend_from_slice(&[1, 7]); // Outcome::Rejected, RejectReason::Overflow
        assert_eq!(encode(&record), expected);
        assert_eq!(decode::<UbsRecord>(&expected), Ok(record));
    }

    #[test]
    fn leading_varints_read_what_decode_reads() {
        for (a, b, c) in [(0u64, 250u64, 251u64), (65_535, 65_536, u64::MAX), (7, 300, 70_000)] {
            let bytes = encode(&(a, b, c, String::from("rest")));
            assert_eq!(leading_varints::<3>(&bytes), Some([a, b, c]));
        }
        assert_eq!(leading_varints::<2>(&[5]), None);
        assert_eq!(leading_varints::<1>(&[254]), None);
    }

    #[test]
    fn trailing_and_truncated_bytes_are_errors() {
        let bytes = encode(&(1u64, 2u64));
        assert!(decode::<(u64, u64)>(&bytes[..1]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode::<(u64, u64)>(&longer).is_err());
    }
}
