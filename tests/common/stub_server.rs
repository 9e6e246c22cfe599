//! A small OpenAI-compatible HTTP server on loopback for the CI tests of the server backend:
//! answers come from a function of the request, and faults (error statuses, malformed JSON,
//! slowness, hang-ups) can be queued. The real-server tests (llama.cpp's server) are in
//! scripts/test-openai-server.sh.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{Value, json};

/// What the next request gets instead of an answer.
#[derive(Clone, Debug)]
pub enum Fault {
    Status(u16),
    Malformed,
    Slow(Duration),
    HangUp,
}

pub type Answer = fn(&Value) -> String;

pub struct StubServer {
    pub url: String,
    pub port: u16,
    /// Every chat request body received, in arrival order.
    pub requests: Arc<Mutex<Vec<Value>>>,
    faults: Arc<Mutex<VecDeque<Fault>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl StubServer {
    pub fn start(answer: Answer) -> Self {
        Self::start_on(0, answer)
    }

    /// Listen on `port` (0: any free port).
    pub fn start_on(port: u16, answer: Answer) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind loopback");
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let faults = Arc::new(Mutex::new(VecDeque::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (requests, faults, stop) = (requests.clone(), faults.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let (requests, faults) = (requests.clone(), faults.clone());
                            std::thread::spawn(move || {
                                let _ = serve(stream, answer, &requests, &faults);
                            });
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(2)),
                    }
                }
            })
        };
        StubServer {
            url: format!("http://127.0.0.1:{port}/v1"),
            port,
            requests,
            faults,
            stop,
            thread: Some(thread),
        }
    }

    pub fn push_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        self.faults.lock().unwrap().extend(faults);
    }

    pub fn chat_requests(&self) -> Vec<Value> {
        self.requests.lock().unwrap().clone()
    }

    /// Stop listening: later connections are refused.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for StubServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn serve(
    stream: TcpStream,
    answer: Answer,
    requests: &Mutex<Vec<Value>>,
    faults: &Mutex<VecDeque<Fault>>,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let mut stream = stream;
    if request_line.starts_with("GET") && request_line.contains("/models") {
        return respond(
            &mut stream,
            200,
            &json!({"data": [{"id": "stub"}]}).to_string(),
        );
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    requests.lock().unwrap().push(request.clone());
    let fault = faults.lock().unwrap().pop_front();
    match fault {
        Some(Fault::Status(code)) => respond(&mut stream, code, "{\"error\": \"injected\"}"),
        Some(Fault::Malformed) => respond(&mut stream, 200, "{\"choices\": [{\"mess"),
        Some(Fault::HangUp) => Ok(()),
        Some(Fault::Slow(d)) => {
            std::thread::sleep(d);
            respond(&mut stream, 200, &completion(&answer(&request)))
        }
        None => respond(&mut stream, 200, &completion(&answer(&request))),
    }
}

fn completion(text: &str) -> String {
    json!({
        "id": "stub",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": text.split_whitespace().count(), "total_tokens": 1},
    })
    .to_string()
}

fn respond(stream: &mut TcpStream, status: u16, body: &str) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}
