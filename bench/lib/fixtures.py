"""The bench's pages, generated into bench/out/pages, and a local HTTP server for them.

The server listens on 127.0.0.1; `localhost` reaches it too, which makes a second site
for cross-site (out-of-process) iframes. `/doc/` serves rustdoc output, `/rust/` the
toolchain's own documentation (std, the book)."""

import functools
import html
import os
import random
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
REPO = os.path.dirname(BENCH)
OUT = os.path.join(BENCH, "out")
PAGES = os.path.join(OUT, "pages")
DOC_TARGET = os.path.join(OUT, "doc-target")
DOC_CRATE = "clap_builder"
DOC_PAGE = "clap_builder/builder/struct.Command.html"
# The Rust documentation of the toolchain in use (std and the book), served under /rust/.
RUST_DOCS = os.path.join(
    subprocess.run(["rustc", "--print", "sysroot"], capture_output=True, text=True).stdout.strip() or "/nonexistent",
    "share", "doc", "rust", "html")

WORDS = (
    "river stone light garden window paper market silver harbor meadow engine signal "
    "winter copper lantern orbit valley thunder canvas pocket ladder marble echo forest "
    "letter mirror station velvet anchor bridge candle desert feather glacier honey island "
    "jungle kettle lemon magnet needle ocean pepper quartz rocket saddle tiger umbrella"
).split()


def _sentence(rng, n=None):
    n = n or rng.randint(8, 18)
    w = [rng.choice(WORDS) for _ in range(n)]
    return " ".join(w).capitalize() + "."


def _para(rng, n=None):
    return " ".join(_sentence(rng) for _ in range(n or rng.randint(3, 6)))


PAGE_HEAD = '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>' \
    "<style>body{{font-family:sans-serif;margin:1em 2em}} td,th{{padding:2px 6px}}</style></head>\n<body>\n"


def form_page():
    return PAGE_HEAD.format(title="Sign up") + """
<header><nav aria-label="Main"><a href="/article.html">Articles</a> <a href="/big.html">Orders</a> <a href="#help">Help</a></nav></header>
<main>
<h1>Create your account</h1>
<p>All fields marked * are required.</p>
<form id="f" onsubmit="event.preventDefault(); document.getElementById('status').textContent = 'Sent';">
  <fieldset><legend>Identity</legend>
    <label>Full name * <input id="name" name="name" required></label><br>
    <label>Email <input type="email" name="email" placeholder="you@example.com"></label><br>
    <label>Password <input type="password" name="password"></label>
  </fieldset>
  <label>Country
    <select name="country"><option value="">Choose…</option><option>France</option><option selected>United Kingdom</option><option>Japan</option></select>
  </label><br>
  <label>Birthday <input type="date" name="birthday"></label><br>
  <label>Volume <input type="range" name="volume" min="0" max="10" value="5"></label><br>
  <fieldset><legend>Plan</legend>
    <label><input type="radio" name="plan" value="free" checked> Free</label>
    <label><input type="radio" name="plan" value="pro"> Pro</label>
  </fieldset>
  <label><input type="checkbox" name="news"> Send me the newsletter</label><br>
  <label>Comments <textarea name="comments"></textarea></label><br>
  <button type="button" id="save" onclick="saved()">Save draft</button>
  <button type="submit">Create account</button>
</form>
<div role="status" id="status">Not saved</div>
<h2 id="help">Help</h2>
<p>Questions? <a href="mailto:help@example.com">Write to us</a>.</p>
</main>
<script>
let n = 0;
function saved() { n += 1; document.getElementById('status').textContent = 'Draft saved (' + n + ')'; }
</script>
</body></html>
"""


def big_page(rows=1000):
    """rows x 5 interactive elements: checkbox, text field, select, button, link."""
    out = [PAGE_HEAD.format(title="Orders"), "<h1>Orders</h1>\n<p>One thousand orders, five controls each.</p>\n"]
    out.append('<table><thead><tr><th>Pick</th><th>Order</th><th>Note</th><th>Status</th><th>Action</th><th>Details</th></tr></thead><tbody>\n')
    for i in range(1, rows + 1):
        out.append(
            f'<tr><td><input type="checkbox" aria-label="Select order {i}"></td><td>Order {i}</td>'
            f'<td><input aria-label="Note for order {i}" value=""></td>'
            f'<td><select aria-label="Status of order {i}"><option>Open</option><option>Shipped</option></select></td>'
            f'<td><button type="button">Refund {i}</button></td>'
            f'<td><a href="#order-{i}">Details of order {i}</a></td></tr>\n'
        )
    out.append("</tbody></table>\n</body></html>\n")
    return "".join(out)


def article_page(sections=40):
    rng = random.Random(7)
    out = [PAGE_HEAD.format(title="A long article")]
    out.append('<header><nav aria-label="Site"><a href="/">Home</a> <a href="/form.html">Sign up</a> <a href="/big.html">Orders</a></nav></header>\n<main><article>\n<h1>The field guide to quiet harbors</h1>\n')
    out.append(f"<p><em>By A. Writer</em>. {_para(rng, 3)}</p>\n")
    out.append('<nav aria-label="Contents"><h2>Contents</h2><ol>')
    for s in range(1, sections + 1):
        out.append(f'<li><a href="#s{s}">Section {s}</a></li>')
    out.append("</ol></nav>\n")
    for s in range(1, sections + 1):
        out.append(f'<section><h2 id="s{s}">Section {s}: {html.escape(_sentence(rng, 4)[:-1])}</h2>\n')
        for _ in range(3):
            out.append(f"<p>{_para(rng)} See <a href=\"#s{rng.randint(1, sections)}\">a related section</a> for more.</p>\n")
        if s % 4 == 0:
            out.append(f"<h3>Notes on {rng.choice(WORDS)}</h3>\n<ul>" + "".join(f"<li>{_sentence(rng, 6)}</li>" for _ in range(5)) + "</ul>\n")
        if s % 7 == 0:
            out.append("<table><caption>Sightings</caption><tr><th>Species</th><th>April</th><th>May</th></tr>"
                       + "".join(f"<tr><td>{rng.choice(WORDS)}</td><td>{rng.randint(0, 40)}</td><td>{rng.randint(0, 40)}</td></tr>" for _ in range(6))
                       + "</table>\n")
        if s % 5 == 0:
            out.append(f'<figure><img alt="A {rng.choice(WORDS)} at dusk" width="120" height="80" src="data:image/gif;base64,R0lGODlhAQABAAAAACw="><figcaption>{_sentence(rng, 7)}</figcaption></figure>\n')
            out.append(f"<blockquote>{_para(rng, 2)}</blockquote>\n")
        out.append("</section>\n")
    out.append('</article></main>\n<footer><p>Comments are closed. <a href="#s1">Back to top</a></p></footer>\n</body></html>\n')
    return "".join(out)


def frames_page():
    return PAGE_HEAD.format(title="Frames") + """
<h1>Checkout</h1>
<p>Payment and address come from two other documents.</p>
<button type="button">Apply coupon</button>
<iframe id="same" src="/frame-address.html" title="Address" width="500" height="260"></iframe>
<iframe id="cross" title="Payment" width="500" height="260"></iframe>
<script>document.getElementById('cross').src = 'http://localhost:' + location.port + '/frame-payment.html';</script>
<p><a href="/form.html">Back to the account</a></p>
</body></html>
"""


def frame_address():
    return PAGE_HEAD.format(title="Address") + """
<h2>Delivery address</h2>
<label>Street <input name="street"></label><br>
<label>City <input name="city"></label><br>
<label>Postcode <input name="postcode"></label><br>
<label><input type="checkbox" name="same"> Billing address is the same</label><br>
<button type="button">Check address</button>
</body></html>
"""


def frame_payment():
    return PAGE_HEAD.format(title="Payment") + """
<h2>Card payment</h2>
<label>Card number <input name="card" inputmode="numeric"></label><br>
<label>Expiry <input name="exp" placeholder="MM/YY"></label>
<label>CVC <input name="cvc"></label><br>
<select aria-label="Card type"><option>Visa</option><option>Mastercard</option></select>
<button type="button">Pay now</button>
<p><a href="/terms.html">Payment terms</a></p>
<iframe src="/frame-help.html" title="Help" width="400" height="80"></iframe>
</body></html>
"""


def frame_help():
    return PAGE_HEAD.format(title="Help") + """
<h3>Need help?</h3>
<a href="/help.html">Open the payment help</a>
</body></html>
"""


def soak_page():
    return PAGE_HEAD.format(title="Soak") + """
<h1 id="who">Soak</h1>
<label>Note <input id="note"></label>
<button type="button" id="b" onclick="clicks++; document.getElementById('c').textContent = 'clicks ' + clicks">Count</button>
<p id="c">clicks 0</p>
<script>
let clicks = 0;
const who = new URLSearchParams(location.search).get('who') || '?';
document.getElementById('who').textContent = 'Owner ' + who;
document.title = 'Soak ' + who;
</script>
</body></html>
"""


PAGE_SET = {
    "form.html": form_page,
    "big.html": big_page,
    "article.html": article_page,
    "frames.html": frames_page,
    "frame-address.html": frame_address,
    "frame-payment.html": frame_payment,
    "frame-help.html": frame_help,
    "soak.html": soak_page,
}


def build_pages():
    os.makedirs(PAGES, exist_ok=True)
    for name, fn in PAGE_SET.items():
        with open(os.path.join(PAGES, name), "w") as f:
            f.write(fn())


def build_docs(log=print):
    """rustdoc output of a crate from the project's own dependency tree."""
    page = os.path.join(DOC_TARGET, "doc", DOC_PAGE)
    if os.path.exists(page):
        return
    log(f"generating rustdoc pages (cargo doc -p {DOC_CRATE} --no-deps)")
    env = dict(os.environ, CARGO_TARGET_DIR=DOC_TARGET)
    subprocess.run(["cargo", "doc", "-q", "-p", DOC_CRATE, "--no-deps"], cwd=REPO, env=env, check=True)
    if not os.path.exists(page):
        raise SystemExit(f"rustdoc did not write {page}")


class _Handler(SimpleHTTPRequestHandler):
    def translate_path(self, path):
        path = path.split("?", 1)[0].split("#", 1)[0]
        if path.startswith("/doc/"):
            base, rel = os.path.join(DOC_TARGET, "doc"), path[len("/doc/"):]
        elif path.startswith("/rust/"):
            base, rel = RUST_DOCS, path[len("/rust/"):]
        else:
            base, rel = PAGES, path.lstrip("/")
        full = os.path.normpath(os.path.join(base, rel))
        if not full.startswith(base):
            return os.path.join(PAGES, "404")
        return full

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, *a):
        pass


class _Quiet(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # a browser that stopped reading (page closed mid-load) is not news


class Server:
    def __init__(self):
        self.httpd = _Quiet(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path, host="127.0.0.1"):
        return f"http://{host}:{self.port}/{path.lstrip('/')}"

    def close(self):
        self.httpd.shutdown()
