"""What the apps share: a threaded HTTP server from the standard library with a table of routes,
request bodies read only up to a limit, multipart uploads, images decoded only under byte and
pixel limits, JSON errors (a bad request is a 4xx answer, a bug a 500 answer; the server keeps
serving either way), and the frame of the pages (inline CSS, no external resource)."""

import html
import io
import ipaddress
import json
import sys
import threading
import traceback
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

MAX_BYTES = 20 * 2**20  # an upload's bytes
MAX_PIXELS = 50_000_000  # an image's pixels, checked from its header before the pixels are decoded
_DRAIN = 256 * 2**20  # a too-large body up to this size is read and dropped, so the client sees the 413


class HTTPError(Exception):
    """A request the app refuses: answered with ``status`` and ``{"error": message}``."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class Response:
    def __init__(self, body, content_type="application/json", status=200):
        self.body, self.content_type, self.status = body, content_type, status


def json_response(obj, status=200):
    return Response(json.dumps(obj).encode(), "application/json", status)


def html_response(text):
    return Response(text.encode(), "text/html; charset=utf-8")


class Request:
    def __init__(self, handler, method):
        url = urlsplit(handler.path)
        self.method, self.path = method, url.path
        self.query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        self.headers, self._handler, self._body = handler.headers, handler, None

    def body(self, limit):
        """The body's bytes; a body over ``limit`` bytes is a 413 (and is never held in memory)."""
        if self._body is not None:
            return self._body
        if self.headers.get("Transfer-Encoding"):
            raise HTTPError(411, "send the body with a Content-Length (chunked bodies are not accepted)")
        try:
            n = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            raise HTTPError(400, "the Content-Length is not a number") from None
        if n < 0:
            raise HTTPError(400, "the Content-Length is negative")
        if n > limit:
            self._drop(n)
            raise HTTPError(413, f"the request has {n} bytes; the limit is {limit}")
        try:
            data = self._handler.rfile.read(n)
        except TimeoutError:  # (socket.timeout) the client stopped sending
            raise HTTPError(408, f"the request body did not arrive within {self._handler.timeout} s") from None
        if len(data) < n:
            raise HTTPError(400, f"the request body ended after {len(data)} of its {n} bytes")
        self._body = data
        return data

    def _drop(self, n):
        self._handler.close_connection = True
        try:
            while 0 < n <= _DRAIN:  # a client that is still sending would see a reset instead of our answer
                chunk = self._handler.rfile.read(min(n, 2**20))
                if not chunk:
                    break
                n -= len(chunk)
        except OSError:  # a timeout or a reset: the answer goes out anyway, if it can
            pass

    def json(self, limit=2**20):
        """The body as JSON; the page sends it as application/json, which a cross-site form cannot."""
        if self.headers.get_content_type() != "application/json":
            raise HTTPError(415, "send the body as application/json")
        try:
            return json.loads(self.body(limit))
        except (ValueError, UnicodeDecodeError) as e:
            raise HTTPError(400, f"the body is not JSON: {e}") from None

    def upload(self, limit=MAX_BYTES):
        """An uploaded file's bytes: the file part of a multipart/form-data body, else the raw body."""
        data = self.body(limit + 2**16)  # room for the multipart headers
        if self.headers.get_content_type() == "multipart/form-data":
            data = _multipart_file(self.headers.get("Content-Type"), data)
        if not data:
            raise HTTPError(400, "the upload is empty")
        if len(data) > limit:
            raise HTTPError(413, f"the file has {len(data)} bytes; the limit is {limit}")
        return data


def _multipart_file(content_type, data):
    """The first part of a multipart/form-data body that carries a file (or a field named 'file')."""
    m = Message()
    m["Content-Type"] = content_type
    boundary = m.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise HTTPError(400, "a multipart/form-data body without a boundary")
    # Each part follows CRLF--boundary (the first may start the body): split there, exactly, as
    # bytes, so that the file is not decoded as text.
    chunks = (b"\r\n" + data).split(b"\r\n--" + boundary.encode("latin-1"))
    if len(chunks) < 3:
        raise HTTPError(400, "a malformed multipart/form-data body (no complete part)")
    for chunk in chunks[1:-1]:
        head, sep, content = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise HTTPError(400, "a malformed multipart/form-data part (no blank line after its headers)")
        part = Message()
        for line in head.split(b"\r\n")[1:]:  # [0] is the rest of the boundary line
            name, colon, value = line.decode("latin-1").partition(":")
            if colon:
                part[name.strip()] = value.strip()
        disposition = part.get_params(header="Content-Disposition") or []
        params = dict((k.lower(), v) for k, v in disposition)
        if "filename" in params or params.get("name") == "file":
            return content
    raise HTTPError(400, "the multipart/form-data body has no file (send the image as the field 'file')")


def open_image(data, max_pixels=MAX_PIXELS):
    """The RGB PIL image in ``data``, refused with a 4xx HTTPError when it is not an image, has
    more than ``max_pixels`` pixels (read from the header, before decoding) or does not decode."""
    from PIL import Image

    try:
        img = Image.open(io.BytesIO(data))
        w, h = img.size
    except Image.DecompressionBombError as e:  # Pillow's own limit, met before ours when the header is huge
        raise HTTPError(413, f"the image is over the limit of {max_pixels / 1e6:g} megapixels: {e}") from None
    except (OSError, ValueError, SyntaxError):
        raise HTTPError(415, "the file is not an image that Pillow can read (JPEG, PNG, GIF, WebP, ...)") from None
    if w * h > max_pixels:
        size = f"{w}x{h} ({w * h / 1e6:.1f} megapixels)"
        raise HTTPError(413, f"the image is {size}; over the limit of {max_pixels / 1e6:g} megapixels")
    try:
        return img.convert("RGB")  # decodes: a truncated or corrupt file fails here
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise HTTPError(400, f"the image does not decode (truncated or corrupt?): {e}") from None


_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


class AppServer(ThreadingHTTPServer):
    """Serves ``routes`` ({(method, path): function(Request) -> Response}) in a thread per request.
    Bound to a loopback address, it answers only requests that name a loopback host, so that a web
    page elsewhere cannot reach it through a DNS name that points here."""

    daemon_threads = True
    request_queue_size = 128  # connections waiting to be accepted (socketserver's 5 resets a burst of uploads)

    def __init__(self, routes, host="127.0.0.1", port=0, quiet=False):
        self.routes, self.quiet = routes, quiet
        try:
            self.loopback_only = ipaddress.ip_address(host).is_loopback
        except ValueError:
            self.loopback_only = host == "localhost"
        super().__init__((host, port), _Handler)

    @property
    def url(self):
        host, port = self.server_address[:2]
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"

    def start(self):
        """Serves in a background thread (tests, notebooks); ``shutdown()`` stops it."""
        t = threading.Thread(target=self.serve_forever, daemon=True)
        t.start()
        return t

    def __enter__(self):
        """``with make_server(...) as s:`` serves in the background for the block, then closes."""
        self.start()
        return self

    def __exit__(self, *exc):
        self.shutdown()
        self.server_close()

    def run(self, what):
        """Serves in the foreground until Ctrl-C (the commands)."""
        print(f"fastkern {what}: serving on {self.url} (Ctrl-C stops)", flush=True)
        try:
            self.serve_forever()
        except KeyboardInterrupt:
            print()
        finally:
            self.server_close()
        return 0


class _Handler(BaseHTTPRequestHandler):
    server_version = "fastkern"
    timeout = 60  # seconds a client may sit idle mid-request before its thread gives up

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def _dispatch(self, method):
        req = Request(self, method)
        try:
            if self.server.loopback_only and _host_name(self.headers.get("Host", "")) not in _LOOPBACK_NAMES:
                raise HTTPError(403, "this server answers requests for localhost only")
            route = self.server.routes.get((method, req.path))
            if route is None:
                if any(path == req.path for _, path in self.server.routes):
                    raise HTTPError(405, f"{method} is not allowed on {req.path}")
                raise HTTPError(404, f"nothing at {req.path}")
            resp = route(req)
        except HTTPError as e:
            resp = json_response({"error": str(e)}, e.status)
        except Exception as e:  # a bug: say so, log it, keep serving
            traceback.print_exc(file=sys.stderr)
            resp = json_response({"error": f"internal error: {type(e).__name__}: {e}"}, 500)
        try:
            self.send_response(resp.status)
            self.send_header("Content-Type", resp.content_type)
            self.send_header("Content-Length", str(len(resp.body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            self.wfile.write(resp.body)
        except OSError:  # the client went away
            self.close_connection = True

    def log_message(self, format, *args):
        if not self.server.quiet:
            super().log_message(format, *args)


def _host_name(host):
    """The name in a Host header, without the port."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]")[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


STYLE = """
body { font-family: system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #222; }
header { background: #234; color: #fff; padding: 0.8em 1.5em; }
header h1 { margin: 0; font-size: 1.3em; }
header p { margin: 0.2em 0 0; opacity: 0.8; font-size: 0.9em; }
main { padding: 1em 1.5em; }
button, select { font: inherit; padding: 0.3em 0.7em; }
.error { color: #b00020; font-weight: 600; white-space: pre-wrap; }
.muted { color: #666; font-size: 0.9em; }
"""


# What both pages' scripts use: an element by id, and a new element with properties and children.
SCRIPT = """
const $ = (id) => document.getElementById(id);
function el(tag, props, ...children) {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
}
"""


def page(title, subtitle, body, script):
    """A whole page: everything inline, so it works with no network at all (``title`` and
    ``subtitle`` are text, escaped here)."""
    title, subtitle = html.escape(title), html.escape(subtitle)
    return (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{title}</title><style>{STYLE}</style></head>\n"
        f"<body><header><h1>{title}</h1><p id='subtitle'>{subtitle}</p></header>\n"
        f"<main>{body}</main>\n<script>{SCRIPT}{script}\n</script></body></html>\n"
    )
