//! Fuzzes the `/flurry/infer/1` codec as both sides read it: a serving node reads
//! request frames from any circle member, a requester reads answer frames from the
//! peer it asked. Any byte stream must give frames, a clean end or an error, never a
//! panic or a read beyond the frame bound; decoded answers then go through the
//! requester's [`AnswerGuard`], which must not panic either. The same properties run
//! as proptests in `crates/flurry-net/src/infer.rs`.
#![no_main]

use flurry_net::infer::{
    AnswerGuard, AnswerLimits, InferFrame, InferRequest, MAX_FRAME_BYTES, MAX_REQUEST_BYTES,
    read_frame,
};
use futures_util::FutureExt;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut r = futures_util::io::Cursor::new(data);
    let mut requests = Vec::new();
    // In-memory reads never wait, so every future is ready at once.
    while let Some(Ok(Some(req))) =
        read_frame::<_, InferRequest>(&mut r, MAX_REQUEST_BYTES).now_or_never()
    {
        let _ = req.validate();
        requests.push(req);
    }
    let limits = requests
        .first()
        .map(AnswerLimits::for_request)
        .unwrap_or(AnswerLimits {
            max_token_frames: 8,
            max_text_bytes: 64,
        });
    let mut guard = AnswerGuard::new(limits);
    let mut r = futures_util::io::Cursor::new(data);
    while let Some(Ok(Some(frame))) =
        read_frame::<_, InferFrame>(&mut r, MAX_FRAME_BYTES).now_or_never()
    {
        if guard.check(&frame).is_err() {
            break;
        }
    }
    let _ = flurry_net::infer::decode::<InferFrame>(data);
});
