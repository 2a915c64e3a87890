//! `flurry chat`: an interactive terminal chat with history kept for the session.

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use flurry_infer::engine::{Event, GenerateRequest};
use flurry_infer::template::ChatMessage;

use crate::{ChatArgs, Setup};

/// Installs the Ctrl-C handler of the chat loops: while an answer is generated
/// (`generating`), Ctrl-C sets `cancel`; at the prompt it exits. Returns both flags.
pub(crate) fn ctrl_c_stops_answers() -> Result<(Arc<AtomicBool>, Arc<AtomicBool>)> {
    let generating = Arc::new(AtomicBool::new(false));
    let cancel = Arc::new(AtomicBool::new(false));
    let (g, c) = (generating.clone(), cancel.clone());
    ctrlc::set_handler(move || {
        if g.load(Ordering::SeqCst) {
            c.store(true, Ordering::SeqCst);
        } else {
            eprintln!();
            std::process::exit(130);
        }
    })?;
    Ok((generating, cancel))
}

pub(crate) fn run(ctx: &Setup, a: ChatArgs) -> Result<ExitCode> {
    if !a.local
        && let Some(r) = crate::remote::Remote::find(&ctx.paths)
    {
        return crate::node_cmd::chat_remote(&r, &a);
    }
    let (entry, engine) = ctx.engine(&a.model)?;
    let (generating, cancel) = ctrl_c_stops_answers()?;
    eprintln!(
        "Chatting with {} ({}). Ctrl-C stops an answer, Ctrl-D exits, /reset clears history.",
        entry.name,
        entry.model_id.short()
    );
    let mut history: Vec<ChatMessage> = Vec::new();
    if let Some(s) = &a.system {
        history.push(ChatMessage::new("system", s.clone()));
    }
    let stdin = std::io::stdin();
    let mut line = String::new();
    let mut seed = a.sample.seed;
    loop {
        eprint!(">>> ");
        std::io::stderr().flush()?;
        line.clear();
        if stdin.lock().read_line(&mut line)? == 0 {
            eprintln!();
            return Ok(ExitCode::SUCCESS);
        }
        let input = line.trim();
        if input.is_empty() {
            continue;
        }
        if input == "/reset" {
            history.retain(|m| m.role == "system");
            eprintln!("(history cleared)");
            continue;
        }
        if input == "/bye" || input == "/exit" {
            return Ok(ExitCode::SUCCESS);
        }
        history.push(ChatMessage::new("user", input));
        let mut params = a.sample.params();
        params.seed = seed;
        seed = seed.wrapping_add(1);
        let req = GenerateRequest::chat(history.clone())
            .with_sampling(params)
            .with_max_tokens(a.sample.max_tokens)
            .with_stop(a.sample.stop.clone());
        let rx = match engine.submit(req) {
            Ok(rx) => rx,
            Err(e) => {
                eprintln!("error: {e}");
                history.pop();
                continue;
            }
        };
        cancel.store(false, Ordering::SeqCst);
        generating.store(true, Ordering::SeqCst);
        let mut answer = String::new();
        let mut out = std::io::stdout().lock();
        let mut failed = None;
        loop {
            if cancel.load(Ordering::SeqCst) {
                // Dropping the receiver cancels the request in the engine.
                eprint!(" [stopped]");
                break;
            }
            match rx.recv_timeout(std::time::Duration::from_millis(50)) {
                Ok(Event::Token { text, .. }) => {
                    answer.push_str(&text);
                    out.write_all(text.as_bytes())?;
                    out.flush()?;
                }
                Ok(Event::Prefill { .. } | Event::Commitments(_)) => {}
                Ok(Event::Done { tail, .. }) => {
                    answer.push_str(&tail);
                    out.write_all(tail.as_bytes())?;
                    break;
                }
                Ok(Event::Error(e)) => {
                    failed = Some(e);
                    break;
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        drop(rx);
        generating.store(false, Ordering::SeqCst);
        writeln!(out)?;
        match failed {
            Some(e) => {
                eprintln!("error: {e}");
                history.pop();
            }
            None => history.push(ChatMessage::new("assistant", answer)),
        }
    }
}
