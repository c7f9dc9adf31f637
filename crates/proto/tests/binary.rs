//! The binary decoder on arbitrary bytes: it never panics, never claims more
//! bytes than it was given (but for a declared value it will discard as it
//! arrives), and a request it accepts encodes back to the same bytes.

use memshard_proto::binary::{self, Command, HEADER_LEN, Header, REQUEST_MAGIC, StoreOp, encode_request};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_input_is_decoded_or_refused(mut bytes in proptest::collection::vec(any::<u8>(), 0..400), magic: bool) {
        if magic && !bytes.is_empty() {
            bytes[0] = REQUEST_MAGIC;
        }
        match binary::decode(&bytes, 1 << 20) {
            Ok(None) => {}
            Ok(Some((_, used))) => prop_assert!(used >= HEADER_LEN && used <= bytes.len()),
            Err(e) => prop_assert!(e.consumed <= bytes.len()),
        }
    }

    #[test]
    fn a_set_encodes_back_to_its_bytes(key in "[a-z]{1,40}", value in proptest::collection::vec(any::<u8>(), 0..300),
                                       flags: u32, exptime: u32, cas: u64, opaque: u32) {
        let extras = [flags.to_be_bytes(), exptime.to_be_bytes()].concat();
        let mut wire = Vec::new();
        encode_request(&mut wire, &Header { opcode: binary::opcode::SET, opaque, cas, ..Header::default() }, &extras, key.as_bytes(), &value);
        let (req, used) = binary::decode(&wire, 1 << 20).expect("valid").expect("complete");
        prop_assert_eq!(used, wire.len());
        prop_assert_eq!((req.header.opaque, req.header.cas), (opaque, cas));
        prop_assert_eq!(req.command, Command::Store { op: StoreOp::Set, key: key.as_bytes(), flags, exptime, value: &value });
    }
}
