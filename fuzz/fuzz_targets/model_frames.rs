//! Fuzzes `/flurry/model/1` as both sides read it (a server reads requests from any
//! peer; a puller reads layers, pieces and refusals), and model announcements as gossip
//! delivers them. Any bytes must give a message, an error or a refusal, never a panic.
#![no_main]

use flurry_primitives::ModelId;
use flurry_share::proto::{Request, read_answer, read_request};
use futures_util::FutureExt;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = flurry_share::Announcement::parse(data);
    let mut r = futures_util::io::Cursor::new(data);
    while let Some(Ok(Some(_))) = read_request(&mut r).now_or_never() {}
    let id = ModelId::from_bytes([0; 32]);
    for q in [Request::Layer(id), Request::Piece(id, 0)] {
        let mut r = futures_util::io::Cursor::new(data);
        if let Some(Ok(flurry_share::proto::Answer::Layer(l))) =
            read_answer(&mut r, &q, 4096).now_or_never()
        {
            let _ = l.check(&id);
        }
    }
});
