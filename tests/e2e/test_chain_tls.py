"""An RPC endpoint behind https: the chain client speaks TLS (before, an https URL could
not work at all), checks the certificate against the trusted roots, and refuses a
certificate nobody vouches for (a man in the middle) with a clear error.

The endpoint is a real anvil (the one `flurry up` starts) behind a TLS-terminating proxy
with a certificate from a throwaway CA; the client trusts that CA only when
SSL_CERT_FILE names it.
"""

from __future__ import annotations

import http.server
import json
import os
import ssl
import subprocess
import threading
import urllib.request

from conftest import flurry_bin, node_env


def make_ca_and_cert(d):
    """A CA and a certificate for localhost/127.0.0.1 signed by it (openssl CLI)."""
    def run(*args):
        r = subprocess.run(["openssl", *args], capture_output=True, text=True, cwd=d)
        assert r.returncode == 0, r.stderr

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=flurry test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "leaf.key", "-out", "leaf.csr",
        "-subj", "/CN=localhost")
    (d / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                               "basicConstraints=CA:FALSE\n"
                               "extendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "leaf.pem", "-days", "2", "-extfile", "ext.cnf")
    return d / "ca.pem", d / "leaf.pem", d / "leaf.key"


def tls_proxy(upstream: str, cert, key):
    """An https server that forwards JSON-RPC POSTs to `upstream`; returns its port."""
    class Proxy(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            req = urllib.request.Request(upstream, data=body,
                                         headers={"Content-Type": "application/json"})
            data = urllib.request.urlopen(req, timeout=30).read()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def chain_show(home, cert_file) -> dict:
    env = node_env(home)
    env["SSL_CERT_FILE"] = str(cert_file)
    env.pop("SSL_CERT_DIR", None)
    r = subprocess.run([flurry_bin(), "chain", "show", "--json"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_an_https_rpc_url_works_and_an_untrusted_certificate_is_refused(node_factory,
                                                                       tmp_path):
    node = node_factory()
    anvil = json.loads((node.home / "chain" / "local.json").read_text())["url"]
    ca, cert, key = make_ca_and_cert(tmp_path)
    srv = tls_proxy(anvil, cert, key)
    try:
        port = srv.server_address[1]
        home = tmp_path / "client"
        home.mkdir()
        (home / "flurry.toml").write_text(
            f'[chain]\nmode = "rpc"\nrpc_url = "https://localhost:{port}"\n')
        shown = chain_show(home, ca)
        assert shown["chain_id"] == 31337 and shown["error"] is None, shown
        assert shown["rpc_url"] == f"https://localhost:{port}"
        # Trusting only the system's roots, the same endpoint is a stranger: refused.
        system = "/etc/ssl/certs/ca-certificates.crt"
        assert os.path.exists(system)
        refused = chain_show(home, system)
        assert refused["chain_id"] is None, refused
        assert "certificate" in refused["error"].lower() or "tls" in refused["error"].lower(), \
            refused
    finally:
        srv.shutdown()
