//! Fuzzes `/flurry/locate/1` as both sides read it: a rendezvous point reads request
//! frames from any peer and opens the records handed to it; a node that looked a peer up
//! opens the record in the answer. Any bytes must give a frame, an error or a refused
//! record, never a panic.
#![no_main]

use flurry_net::locate::{
    LocateRequest, LocateResponse, MAX_FRAME_BYTES, addresses_of, open_record,
};
use futures_util::FutureExt;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = open_record(data);
    // Any valid peer id: the check that matters is that the record is signed by it.
    let target = "16Uiu2HAmJoRxG5XJvEnPfDsCN6i8BxT3C2oMM9vXkbiNzSxmYrR9";
    let mut r = futures_util::io::Cursor::new(data);
    while let Some(Ok(Some(req))) =
        flurry_net::infer::read_frame::<_, LocateRequest>(&mut r, MAX_FRAME_BYTES).now_or_never()
    {
        if let LocateRequest::Register { record } = req {
            let _ = addresses_of(target, &record);
        }
    }
    let mut r = futures_util::io::Cursor::new(data);
    while let Some(Ok(Some(answer))) =
        flurry_net::infer::read_frame::<_, LocateResponse>(&mut r, MAX_FRAME_BYTES).now_or_never()
    {
        if let LocateResponse::Found { record } = answer {
            let _ = addresses_of(target, &record);
        }
    }
});
