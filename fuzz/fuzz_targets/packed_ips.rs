//! The decoder of packed IP batches, which come from untrusted guests: any input is either
//! refused or decodes to IPs that pack and decode to the same IPs again.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Packed {
    kinds: Vec<u8>,
    ends: Vec<u32>,
    data: Vec<u8>,
}

fuzz_target!(|packed: Packed| {
    let decoded =
        flowd::component::wasm::unpack_for_fuzzing(packed.kinds, packed.ends, packed.data);
    let Ok((ips, kinds, ends, data)) = decoded else {
        return;
    };
    let (again, ..) = flowd::component::wasm::unpack_for_fuzzing(kinds, ends, data)
        .expect("what was packed decodes");
    assert_eq!(again, ips);
});
