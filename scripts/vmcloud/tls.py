"""tls.py - the certificates of vmodule-cloud's HTTPS servers.

ensure_certs(dir, hosts) makes, once, a CA (ca.crt/ca.key) and a server
certificate for the given host names and addresses signed by it
(server.crt/server.key) with the openssl command line (Python's ssl module
cannot make certificates); later runs reuse them, so a module configured with
the CA file keeps trusting the server. server_context() wraps them for
http.server. The CA path is what the user points the module at
(tencent.dynreg_ca_file, tencent.ota_ca_file)."""
import ipaddress
import os
import ssl
import subprocess

DEFAULT_HOSTS = ("127.0.0.1", "::1", "localhost")
# where the subcommands keep their CA unless told otherwise (--cert-dir)
DEFAULT_DIR = os.path.join(os.path.expanduser("~"), ".local", "state", "vmodule-cloud", "certs")


def _san(hosts):
    parts = []
    for h in hosts:
        try:
            ipaddress.ip_address(h)
            parts.append("IP:" + h)
        except ValueError:
            parts.append("DNS:" + h)
    return "subjectAltName=" + ",".join(parts) + "\n"


def _openssl(cwd, *args):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def ensure_certs(directory, hosts=DEFAULT_HOSTS, days=3650):
    """Returns (ca_crt, server_crt, server_key) paths under directory, making
    what is missing. A server certificate is remade when the host list
    changed (its SAN line is kept in server.san)."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    p = lambda n: os.path.join(directory, n)  # noqa: E731
    if not (os.path.exists(p("ca.crt")) and os.path.exists(p("ca.key"))):
        _openssl(directory, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", str(days),
                 "-subj", "/CN=vmodule-cloud CA", "-keyout", "ca.key", "-out", "ca.crt")
        for n in ("server.crt", "server.key", "server.san"):
            if os.path.exists(p(n)):
                os.unlink(p(n))
    san = _san(hosts)
    old = open(p("server.san")).read() if os.path.exists(p("server.san")) else None
    if old != san or not os.path.exists(p("server.crt")):
        with open(p("ext.cnf"), "w") as f:
            f.write(san)
        _openssl(directory, "req", "-newkey", "rsa:2048", "-nodes", "-subj",
                 "/CN=%s" % hosts[0], "-keyout", "server.key", "-out", "server.csr")
        _openssl(directory, "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey",
                 "ca.key", "-CAcreateserial", "-days", str(days), "-extfile", "ext.cnf",
                 "-out", "server.crt")
        with open(p("server.san"), "w") as f:
            f.write(san)
        os.unlink(p("server.csr"))
    return p("ca.crt"), p("server.crt"), p("server.key")


def server_context(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx
