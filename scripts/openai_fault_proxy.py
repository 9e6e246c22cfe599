"""A fault-injecting HTTP proxy in front of a real OpenAI-compatible server, for
scripts/test-openai-server.sh: it forwards every request unchanged, except that the first
requests after a start can be answered with an error status, malformed JSON, or after a delay.

usage: openai_fault_proxy.py LISTEN_PORT UPSTREAM_URL [--status CODE:N] [--malformed N] [--slow SECONDS:N]
"""
import argparse
import http.server
import threading
import time
import urllib.error
import urllib.request

ap = argparse.ArgumentParser()
ap.add_argument("port", type=int)
ap.add_argument("upstream")
ap.add_argument("--status", default="")
ap.add_argument("--malformed", type=int, default=0)
ap.add_argument("--slow", default="")
a = ap.parse_args()

lock = threading.Lock()
plan = []  # what the next chat requests get, in order
if a.status:
    code, n = a.status.split(":")
    plan += [("status", int(code))] * int(n)
plan += [("malformed", None)] * a.malformed
if a.slow:
    secs, n = a.slow.split(":")
    plan += [("slow", float(secs))] * int(n)


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        print("proxy:", fmt % args, flush=True)

    def reply(self, code, body, ctype="application/json"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def forward(self, body=None):
        req = urllib.request.Request(a.upstream.rstrip("/") + self.path.removeprefix("/v1"), data=body,
                                     method=self.command, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=600) as r:
                self.reply(r.status, r.read())
        except urllib.error.HTTPError as e:
            self.reply(e.code, e.read())

    def do_GET(self):
        self.forward()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with lock:
            fault = plan.pop(0) if plan else None
        if fault and fault[0] == "status":
            print(f"proxy: injecting HTTP {fault[1]}", flush=True)
            return self.reply(fault[1], b'{"error": "injected by the fault proxy"}')
        if fault and fault[0] == "malformed":
            print("proxy: injecting malformed JSON", flush=True)
            return self.reply(200, b'{"choices": [{"message": {"content": "cut sh')
        if fault and fault[0] == "slow":
            print(f"proxy: delaying {fault[1]} s", flush=True)
            time.sleep(fault[1])
        self.forward(body)


http.server.ThreadingHTTPServer(("127.0.0.1", a.port), Proxy).serve_forever()
