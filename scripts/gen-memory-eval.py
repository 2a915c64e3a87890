#!/usr/bin/env python3
"""The private-memory evaluation set: a mixed personal corpus and questions about it.

    scripts/gen-memory-eval.py OUT [--bulk N] [--seed S]

writes
    OUT/corpus/...            the documents to ingest: Markdown and text notes, HTML pages,
                              e-mails (.eml, English and Chinese, real MIME), one .mbox,
                              PDFs with a text layer
    OUT/expected/REL.txt      the decoded text of every .eml, .pdf and mbox message
                              (`expected/mail/x.mbox#N.txt`), for checking answers without
                              a MIME or PDF parser
    OUT/questions.jsonl       {"q", "doc", "answer", "type"}: `doc` is the path relative
                              to OUT/corpus (`name.mbox#N` for message N, 0-based),
                              `answer` a substring of that document's text that answers
                              the question, `type` keyword | paraphrase | chinese
    OUT/latency-queries.txt   more than 200 realistic queries, one per line (latency runs)
    OUT/manifest.json         counts

The household: Jing Chen (陈静), a backend engineer at Kestrel Analytics in Berlin, her
partner Alex Brenner, their daughter Mia (9) and the cat Luna; Jing's family writes in
Chinese. Fillers (journal entries, meeting notes, recipes, newsletters, receipts...) sit
next to the documents the questions are about, on the same topics, so the right answer
has to be told apart from near misses.

`--bulk N` adds N longer filler notes under OUT/corpus/bulk/ (for a large store). The
output depends only on the arguments (fixed seed, fixed dates); Python 3 stdlib only.
"""

import argparse
import base64
import datetime
import html
import json
import quopri
import random
import re
import shutil
import textwrap
from pathlib import Path

TZ_BERLIN = datetime.timezone(datetime.timedelta(hours=1))
TZ_CHINA = datetime.timezone(datetime.timedelta(hours=8))


def norm(s):
    """Whitespace-normalised text: the form answers are compared in."""
    return " ".join(s.split())


# --------------------------------------------------------------------------- mail


def encoded_words(text, charset):
    """RFC 2047 B encoded-words for a header value that is not ASCII, each at most
    75 characters long and split on character boundaries."""
    if all(ord(c) < 128 for c in text):
        return text
    words, cur = [], ""
    for ch in text:
        trial = cur + ch
        if len(base64.b64encode(trial.encode(charset))) + len(charset) + 7 > 75:
            words.append(cur)
            cur = ch
        else:
            cur = trial
    words.append(cur)
    return "\r\n ".join(
        "=?%s?B?%s?=" % (charset.upper(), base64.b64encode(w.encode(charset)).decode("ascii"))
        for w in words
    )


def address(name, addr, charset):
    if not name:
        return addr
    if all(ord(c) < 128 for c in name):
        return '"%s" <%s>' % (name, addr) if "," in name else "%s <%s>" % (name, addr)
    return "%s <%s>" % (encoded_words(name, charset), addr)


def encode_body(text, charset, cte):
    """The body bytes of `text` in `charset` with transfer encoding `cte`, CRLF lines."""
    raw = text.replace("\r\n", "\n").replace("\n", "\r\n").encode(charset)
    if cte == "base64":
        return base64.encodebytes(raw).replace(b"\n", b"\r\n")
    if cte == "quoted-printable":
        enc = quopri.encodestring(raw.replace(b"\r\n", b"\n"))
        return enc.replace(b"\n", b"\r\n")
    if cte == "7bit":
        raw.decode("ascii")
    return raw


def html_of(paragraphs, title):
    body = "".join("<p>%s</p>\n" % html.escape(p).replace("\n", "<br>\n") for p in paragraphs)
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>%s</title>'
        "<style>body{font-family:Arial,sans-serif;font-size:14px}</style></head>\n"
        '<body><div class="content">\n%s</div></body></html>\n' % (html.escape(title), body)
    )


class Mail:
    """One message. `body` is the plain text; `alt_html` adds a text/html alternative."""

    def __init__(self, frm, to, date, subject, body, charset="utf-8", cte="quoted-printable",
                 alt_html=False, html_cte="base64", msgid=None, extra_headers=()):
        self.frm, self.to, self.date = frm, to, date
        self.subject, self.body = subject, body.strip("\n") + "\n"
        self.charset, self.cte = charset, cte
        self.alt_html, self.html_cte = alt_html, html_cte
        self.msgid = msgid
        self.extra_headers = list(extra_headers)

    def to_bytes(self, nl=b"\r\n", rng=None):
        cs = self.charset
        h = [
            "From: " + address(self.frm[0], self.frm[1], cs),
            "To: " + address(self.to[0], self.to[1], cs),
            "Date: " + self.date.strftime("%a, %d %b %Y %H:%M:%S %z"),
            "Subject: " + encoded_words(self.subject, cs),
            "Message-ID: <%s>" % (self.msgid or "%s.%s" % (self.date.strftime("%Y%m%d%H%M%S"), self.frm[1])),
            "MIME-Version: 1.0",
        ] + self.extra_headers
        parts = []
        if self.alt_html:
            boundary = "=_alt_%08x" % ((rng or random.Random(0)).getrandbits(32))
            h.append('Content-Type: multipart/alternative; boundary="%s"' % boundary)
            paragraphs = [p for p in self.body.split("\n\n") if p.strip()]
            for ctype, text, cte in (
                ("text/plain", self.body, self.cte),
                ("text/html", html_of(paragraphs, self.subject), self.html_cte),
            ):
                parts.append(
                    ("--%s\r\nContent-Type: %s; charset=\"%s\"\r\nContent-Transfer-Encoding: %s\r\n\r\n"
                     % (boundary, ctype, cs.upper(), cte)).encode("ascii")
                    + encode_body(text, cs, cte)
                )
            body = b"This is a multi-part message in MIME format.\r\n\r\n" + b"\r\n".join(parts) + (
                "\r\n--%s--\r\n" % boundary).encode("ascii")
        else:
            h.append('Content-Type: text/plain; charset="%s"' % cs.upper())
            h.append("Content-Transfer-Encoding: %s" % self.cte)
            body = encode_body(self.body, cs, self.cte)
        out = ("\r\n".join(h) + "\r\n\r\n").encode("ascii") + body
        if nl != b"\r\n":
            out = out.replace(b"\r\n", nl)
        return out


# ---------------------------------------------------------------------------- PDF


def pdf_escape(s):
    return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def pdf_lines(paragraphs, width=92):
    """Lines of text as laid out on the page: each paragraph wrapped, blank line between."""
    lines = []
    for p in paragraphs:
        for raw in p.split("\n"):
            lines.extend(textwrap.wrap(raw, width) or [""])
        lines.append("")
    return lines[:-1] if lines and lines[-1] == "" else lines


def pdf_bytes(title, lines, per_page=46):
    """A PDF 1.4 file: catalog, page tree, Helvetica (WinAnsiEncoding), one content
    stream per page drawing `title` and `lines` with BT/Tf/Td/Tj/ET, and an xref table
    with the objects' byte offsets."""
    for line in [title] + lines:
        for ch in line:
            assert 32 <= ord(ch) < 127 or 0xA0 <= ord(ch) <= 0xFF, (title, line)
    pages = [lines[i:i + per_page] for i in range(0, max(len(lines), 1), per_page)]
    objs = {}
    n_pages = len(pages)
    page_ids = [5 + 2 * i for i in range(n_pages)]
    objs[1] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objs[2] = ("<< /Type /Pages /Kids [%s] /Count %d >>" % (
        " ".join("%d 0 R" % p for p in page_ids), n_pages)).encode("ascii")
    objs[3] = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
    objs[4] = ("<< /Title (%s) /Producer (gen-memory-eval.py) >>" % pdf_escape(title)).encode("latin-1")
    for i, page in enumerate(pages):
        ops = ["BT"]
        y = 742
        if i == 0:
            ops += ["/F1 16 Tf", "72 %d Td" % y, "(%s) Tj" % pdf_escape(title), "/F1 10.5 Tf", "0 -28 Td"]
        else:
            ops += ["/F1 10.5 Tf", "72 %d Td" % y]
        for j, line in enumerate(page):
            if j:
                ops.append("0 -14 Td")
            if line:
                ops.append("(%s) Tj" % pdf_escape(line))
        ops.append("ET")
        stream = ("\n".join(ops) + "\n").encode("latin-1")
        objs[page_ids[i]] = (
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            "/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (page_ids[i] + 1)
        ).encode("ascii")
        objs[page_ids[i] + 1] = b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"endstream"
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for k in sorted(objs):
        offsets[k] = len(out)
        out += b"%d 0 obj\n" % k + objs[k] + b"\nendobj\n"
    xref = len(out)
    size = max(objs) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for k in range(1, size):
        out += b"%010d 00000 n \n" % offsets[k]
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 4 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref)
    return bytes(out)


# ------------------------------------------------------------------------- corpus


class Corpus:
    def __init__(self, out):
        self.out = Path(out)
        self.root = self.out / "corpus"
        self.texts = {}  # rel path (or mbox#N) -> text the answers must occur in
        self.pdf_line_sets = {}  # rel -> lines (answers must not span two lines)
        self.questions = []
        self.kinds = {}
        self.rng = random.Random(20251201)

    def _write(self, rel, data):
        assert rel not in self.kinds, "duplicate document " + rel
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)

    def note(self, rel, text):
        text = textwrap.dedent(text).strip("\n") + "\n"
        self._write(rel, text.encode("utf-8"))
        self.texts[rel] = text
        self.kinds[rel] = "markdown" if rel.endswith(".md") else "text"

    def page(self, rel, title, paragraphs, lang="en"):
        """A saved web page: navigation, an article, a footer, a script and a style."""
        body = "\n".join(
            ("<h2>%s</h2>" % html.escape(p[3:]) if p.startswith("## ") else "<p>%s</p>" % html.escape(p))
            for p in paragraphs
        )
        doc = (
            '<!DOCTYPE html>\n<html lang="%s"><head><meta charset="utf-8">\n<title>%s</title>\n'
            "<style>nav a{margin-right:1em} .ad{display:none}</style>\n"
            "<script>window.dataLayer=window.dataLayer||[];function gtag(){dataLayer.push(arguments)}</script>\n"
            '</head><body>\n<nav><a href="/">Home</a><a href="/archive">Archive</a><a href="/about">About</a></nav>\n'
            "<article>\n<h1>%s</h1>\n%s\n</article>\n"
            "<footer><p>&copy; 2025 &middot; All rights reserved</p></footer>\n"
            "<script>document.querySelectorAll('.ad').forEach(e=>e.remove())</script>\n</body></html>\n"
            % (lang, html.escape(title), html.escape(title), body)
        )
        self._write(rel, doc.encode("utf-8"))
        self.texts[rel] = "\n".join([title] + [p[3:] if p.startswith("## ") else p for p in paragraphs])
        self.kinds[rel] = "html"

    def eml(self, rel, mail):
        self._write(rel, mail.to_bytes(rng=self.rng))
        self.texts[rel] = mail.body
        self.kinds[rel] = "email"

    def mbox(self, rel, mails):
        out = bytearray()
        for i, m in enumerate(mails):
            raw = m.to_bytes(nl=b"\n", rng=self.rng)
            # mboxrd: lines that look like a separator get one more '>'.
            raw = re.sub(rb"(?m)^(>*From )", rb">\1", raw)
            u = m.date.astimezone(datetime.timezone.utc)
            stamp = u.strftime("%a %b ") + "%2d" % u.day + u.strftime(" %H:%M:%S %Y")  # asctime
            out += b"From %s %s\n" % (m.frm[1].encode("ascii"), stamp.encode("ascii"))
            out += raw.rstrip(b"\n") + b"\n\n"
            self.texts["%s#%d" % (rel, i)] = m.body
            self.kinds["%s#%d" % (rel, i)] = "email"
        self._write(rel, bytes(out))
        self.kinds[rel] = "mbox"

    def pdf(self, rel, title, paragraphs):
        lines = pdf_lines(paragraphs)
        self._write(rel, pdf_bytes(title, lines))
        self.texts[rel] = "\n".join([title] + lines)
        self.pdf_line_sets[rel] = [title] + lines
        self.kinds[rel] = "pdf"

    def q(self, q, doc, answer, kind):
        assert kind in ("keyword", "paraphrase", "chinese"), kind
        self.questions.append({"q": q, "doc": doc, "answer": answer, "type": kind})

    def check(self):
        """Every answer occurs in its document's text (and in one line of a PDF)."""
        for q in self.questions:
            doc = q["doc"]
            assert doc in self.texts, "question about a missing document: %r" % q
            assert norm(q["answer"]) in norm(self.texts[doc]), "answer not in document: %r" % q
            if doc in self.pdf_line_sets:
                assert any(q["answer"] in line for line in self.pdf_line_sets[doc]), (
                    "answer spans PDF lines: %r" % q)

    def save(self, latency_queries):
        exp = self.out / "expected"
        for rel, text in self.texts.items():
            if self.kinds[rel] in ("email", "pdf"):
                p = exp / (rel + ".txt")
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_text(text, encoding="utf-8")
        with open(self.out / "questions.jsonl", "w", encoding="utf-8") as f:
            for q in self.questions:
                f.write(json.dumps(q, ensure_ascii=False) + "\n")
        (self.out / "latency-queries.txt").write_text("\n".join(latency_queries) + "\n", encoding="utf-8")
        files = [r for r in self.kinds if "#" not in r]
        documents = [r for r in self.kinds if self.kinds[r] != "mbox"]
        by_kind = {}
        for r in documents:
            by_kind[self.kinds[r]] = by_kind.get(self.kinds[r], 0) + 1
        by_type = {}
        for q in self.questions:
            by_type[q["type"]] = by_type.get(q["type"], 0) + 1
        manifest = {
            "files": len(files),
            "documents": len(documents),
            "documents_by_kind": by_kind,
            "questions": len(self.questions),
            "questions_by_type": by_type,
            "bytes": sum((self.root / r).stat().st_size for r in files),
        }
        (self.out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        return manifest


# ------------------------------------------------------------------ anchor notes


def anchor_notes(c):
    c.note("notes/recipes/sourdough.md", """
        # Sourdough (the version that finally works)

        Starter: "Bertha", lives in the fridge in the tall Weck jar. Feed her 1:5:5
        (starter : flour : water) the evening before baking; she peaks after about 8 hours at
        24 °C. If she smells of nail polish she is hungry, feed twice.

        ## Dough, one loaf

        - 450 g bread flour (Type 550) and 50 g whole rye
        - 375 g water (75 % hydration), 30 °C
        - 100 g active starter
        - 10 g salt, added after the autolyse with a splash of water

        ## Schedule

        Mix flour and water, autolyse 45 minutes. Add starter and salt, squeeze through until
        the dough is smooth. Four sets of stretch-and-folds every 30 minutes, then leave it
        alone until it has risen by about half (4 to 5 hours at 24 °C, longer in winter when the
        kitchen is at 20 °C). Pre-shape, rest 20 minutes, shape into a batard, into the banneton
        seam side up, cold retard in the fridge for 12 to 16 hours.

        ## Baking

        Preheat the cast-iron Dutch oven at 250 °C for a full hour. Tip the dough onto baking
        paper, score once along the length at a shallow angle. Bake 20 minutes with the lid on,
        then remove the lid, lower to 230 °C and bake another 25 minutes until the crust is deep
        brown. The inside should read 96 to 98 °C on the probe thermometer. Let it cool for at
        least an hour before cutting, it keeps cooking inside.

        ## What went wrong before

        - March: dense, gummy crumb. Starter was used long after its peak.
        - April: flat loaf that spread everywhere. Over-proofed on the counter on a 29 °C day;
          in summer do the bulk in the cooler hallway.
        - June: pale crust. Dutch oven was only preheated for 20 minutes.
        - Alex prefers it with 100 g of rye and caraway; Mia wants "the white one".
        """)
    c.q("How long does the loaf stay covered in the pot before I take the top off?",
        "notes/recipes/sourdough.md", "Bake 20 minutes with the lid on", "paraphrase")
    c.q("Bertha feeding ratio", "notes/recipes/sourdough.md", "1:5:5", "keyword")

    c.note("notes/recipes/focaccia.md", """
        # Focaccia for the Kita summer party

        500 g flour, 400 g water, 7 g dry yeast, 12 g salt, lots of olive oil.
        Mix in the evening, fridge overnight, two folds in the morning. Into the oiled tray, dimple
        with oily fingers, cherry tomatoes, rosemary and flaky salt on top.
        Oven 230 °C, fan off, 22 to 25 minutes on the lowest rack. Brush with oil straight after.
        Two trays were gone in 15 minutes, make three next year.
        """)

    c.note("notes/recipes/hongshaorou.md", """
        # 红烧肉（妈妈的做法）

        五花肉500克，切成三厘米的方块，冷水下锅焯水，撇去浮沫后捞出。
        锅里放少许油和冰糖30克，小火炒出糖色，颜色变成枣红色就下肉块翻炒上色。
        加入姜片、葱段、八角两颗、桂皮一小块，倒入料酒两勺、生抽两勺、老抽一勺。
        加开水没过肉，大火烧开后转小火炖60分钟，最后大火收汁。
        妈妈说：千万不要中途加冷水，肉会变硬。米娅喜欢配米饭和炒青菜。
        (Alex: less sugar next time, and the pork from the Turkish butcher on Turmstraße is best.)
        """)
    c.q("红烧肉要用小火炖多长时间？", "notes/recipes/hongshaorou.md", "小火炖60分钟", "chinese")

    c.note("notes/recipes/lentil-soup.txt", """
        Red lentil soup (weeknight, 30 min)

        1 onion, 2 carrots, 1 tbsp cumin, 1 tsp smoked paprika, 250 g red lentils, 1.2 l stock,
        1 tin tomatoes, juice of a lemon. Sweat onion and carrot, add spices, lentils, stock and
        tomatoes, simmer 20 min, blend half of it. Lemon at the end. Freezes well (portions in the
        square boxes, second drawer).
        """)

    c.note("notes/trips/japan-2025.md", """
        # Japan, October 2025

        Flights: Frankfurt to Tokyo Haneda on 10 October, back from Osaka Kansai on 26 October
        (details in the airline mail). Jing, Alex, Mia. Mia's passport expires 2029, fine.

        ## Rail

        JR Pass, 14 days, ordered online for all three. The exchange order number is
        JRX-88213-KT, exchange at the JR office in Haneda terminal 3 on arrival (bring all
        three passports). First use 14 October.

        Tokyo to Kyoto: Nozomi 23, departs Tokyo 09:33, arrives Kyoto 11:46, car 7, seats
        12A-12C (reserved with the pass, Nozomi needs the supplement). Mount Fuji is on the
        right-hand side going west, seat E would be better next time.

        ## Places

        Tokyo (4 nights): Hotel Gracery Shinjuku. teamLab Planets booked for 12 October 10:00.
        Ghibli Museum is sold out, try the lottery again in September.

        Kyoto (5 nights): ryokan near Ginkakuji, see the reservation PDF. Day trip to Nara, the
        deer bite paper maps. Arashiyama bamboo grove early in the morning.

        Osaka (3 nights): apartment in Namba via the booking site, key box code arrives a day
        before. Kaiyukan aquarium for Mia, Dotonbori for takoyaki.

        ## Money

        Budget 4,800 EUR for everything except flights. Japan is still cash-heavy: withdraw at
        7-Eleven ATMs, they take the Visa card. Suica cards on the phone for the metro.

        ## Things to remember

        - Pocket Wi-Fi pick-up at Haneda counter, reservation under Brenner.
        - Luggage forwarding (takkyubin) from Tokyo hotel to the ryokan, costs about 2,000 yen
          per suitcase, arrives the next day.
        - Mia wants to see a real sumo practice; the Arashio stable has morning practice that
          visitors can watch through the window.
        - Bring small gifts for the ryokan staff? Jing says not necessary.
        """)
    c.q("JR Pass exchange order number", "notes/trips/japan-2025.md", "JRX-88213-KT", "keyword")
    c.q("Which seats did we reserve on the bullet train from the capital to Kyoto?",
        "notes/trips/japan-2025.md", "car 7, seats 12A-12C", "paraphrase")
    c.q("how do we get our suitcases sent ahead between hotels in Japan",
        "notes/trips/japan-2025.md", "Luggage forwarding (takkyubin)", "paraphrase")

    c.note("notes/trips/lisbon-2024.md", """
        # Lisbon, Easter 2024

        Stayed in Alfama, apartment with the blue tiles, steep stairs (bad idea with the
        stroller-age memories, fine now). Tram 28 is packed, walk instead and take the 12E.

        Food: the best pastéis de nata were at Manteigaria in Chiado, warm, with cinnamon; the
        famous place in Belém had a 40-minute queue and was not better. Dinner at a tiny tasca
        near Graça, grilled sardines and vinho verde for 38 EUR for three.

        Day trip to Sintra: Pena Palace tickets online, take the 434 bus up, walk down through
        the forest. Mia loved the Initiation Well at Quinta da Regaleira.

        Beach day at Cascais, water cold (17 °C) in April.
        """)
    c.q("Where did we have the best custard tarts in Portugal?",
        "notes/trips/lisbon-2024.md", "Manteigaria in Chiado", "paraphrase")

    c.note("notes/trips/iceland-2023.txt", """
        Iceland, August 2023 - notes for next time

        Ring road in 10 days was too rushed; do the south coast and Snaefellsnes only.
        Rental car: 4x4 not needed in summer unless F-roads. Fuel is expensive, about 2.3 EUR/l.
        Best hot pool: the Secret Lagoon in Fludir, less crowded than the Blue Lagoon.
        Puffins at Dyrholaey in the evening. Bring an eye mask, it never gets dark.
        """)

    c.note("notes/trips/camping-checklist.md", """
        # Camping checklist

        - tent (the 3-person one, check the poles), footprint, 12 pegs extra
        - sleeping bags (comfort 5 °C), mats, pillows
        - stove, 2 gas cartridges, lighter, pot, pan, sponge
        - head torches + spare batteries, power bank
        - first aid kit, tick remover, sun cream, insect spray
        - Mia: cuddly rabbit, cards, book
        Book the campsite at Lake Stechlin early, it is full by May.
        """)

    c.note("notes/home/house-info.md", """
        # House info (for us and for the house sitter)

        Address: Knobelsdorffstraße 41, 14059 Berlin, 3rd floor right, name on the bell:
        Brenner/Chen.

        Spare key: in the magnetic box behind the rain barrel next to the bike shed in the
        courtyard. Frau Schulz (2nd floor left) also has one, she is home most afternoons.

        Rubbish: yellow bin on Tuesdays, paper every second Thursday, bio bin Friday. Glass
        containers are at the corner of Nehringstraße.

        Fuse box is in the hallway cupboard behind the coats; the kitchen is fuse 6.
        Main water tap under the kitchen sink, turn clockwise.

        Hausverwaltung: Köhler Immobilien, Herr Jürgen Köhler, emergency number on the notice
        board downstairs.
        """)
    c.q("If I lock myself out of the flat, how do I get back in?",
        "notes/home/house-info.md", "magnetic box behind the rain barrel", "paraphrase")
    c.q("which fuse is the kitchen", "notes/home/house-info.md", "the kitchen is fuse 6", "keyword")

    c.note("notes/home/network.txt", """
        Home network

        Router: FRITZ!Box 7590, admin page http://192.168.178.1, password in the password manager
        (entry "fritzbox admin").
        Main Wi-Fi: SSID "Knobi41", WPA3.
        Guest Wi-Fi: SSID "Knobi41-Guest", password lantern-otter-58 (changed September 2025,
        give this one to visitors).
        NAS: Synology DS220+, 192.168.178.23, two 4 TB disks in RAID 1, photo backup every night
        at 02:00, off-site copy to CloudNest.
        Printer: Brother HL-L2350DW at 192.168.178.40, toner TN-2420.
        Mia's tablet has the time limit profile "Kind" (90 minutes a day).
        """)
    c.q("guest wifi password", "notes/home/network.txt", "lantern-otter-58", "keyword")
    c.q("What is the IP address of the Synology?", "notes/home/network.txt", "192.168.178.23", "keyword")

    c.note("notes/home/boiler.txt", """
        Boiler: Vaillant ecoTEC plus VC 206/5-5, in the bathroom cupboard. Installed 2017.

        Error F.28 = ignition failure (no flame). Check that the yellow gas tap under the boiler is
        open, then press the reset button once. If it comes back, do not keep resetting.
        Error F.22 = too little water pressure. Top up to 1.5 bar with the grey filling loop.

        Service contract with Heizung Krämer, customer no. HK-5512, phone 030 3312 8870,
        yearly service in September (last one 18.09.2025, 129 EUR, chimney sweep measurement
        was fine).
        """)
    c.q("What does F.28 mean on the Vaillant?", "notes/home/boiler.txt", "ignition failure", "keyword")
    c.q("Who should I phone when the hot water and radiators stop working?",
        "notes/home/boiler.txt", "Heizung Krämer", "paraphrase")

    c.note("notes/health/allergies.md", """
        # Allergies and medication

        Mia: allergic to amoxicillin (red rash all over, March 2022, Dr. Weiß). Doctors should
        use clarithromycin instead. No food allergies.

        Alex: hay fever, birch pollen from late March to May. Takes cetirizine 10 mg in the evening,
        eye drops when bad.

        Jing: lactose intolerance (mild), lactase tablets in the kitchen drawer. Ibuprofen upsets
        the stomach, paracetamol is fine.

        Luna: no known allergies, but only renal diet food (see Luna's page).
        """)
    c.q("Which antibiotic must our daughter never be given?",
        "notes/health/allergies.md", "allergic to amoxicillin", "paraphrase")
    c.q("What does Alex take in spring against the sneezing?",
        "notes/health/allergies.md", "cetirizine 10 mg", "paraphrase")

    c.note("notes/health/physio-knee.md", """
        # Knee physio (left knee, patellar tendinopathy)

        Physio: Dr. Ada Okafor, Physiotherapie Moabit, Tuesdays 17:15, prescription for 12
        sessions (6 used by end of October).

        Home exercises, every other day:
        - Spanish squats with the band, 5 x 45 seconds hold
        - step-downs from the second stair, 3 x 12, slow
        - clamshells 3 x 20 each side
        - calf raises on one leg 3 x 15

        Pain rule: up to 3/10 during exercise is fine if it is gone the next morning. No running
        until the hold is pain-free; then start with 2 km on flat ground.
        """)
    c.q("When is my appointment with Okafor each week?",
        "notes/health/physio-knee.md", "Tuesdays 17:15", "keyword")
    c.q("how much knee pain is acceptable while doing the rehab exercises",
        "notes/health/physio-knee.md", "up to 3/10 during exercise is fine", "paraphrase")

    c.note("notes/health/bloodwork-2025-06.txt", """
        Blood test 17 June 2025 (Hausarzt Dr. Lindqvist), results by phone 20 June.

        Vitamin D 38 nmol/L (low) -> 1000 IU daily through the winter, retest in January.
        Ferritin 22 µg/L (low normal), eat more lentils/red meat, no tablets for now.
        TSH 1.9, normal. LDL cholesterol 2.9 mmol/L, fine. HbA1c 5.2 %.
        """)
    c.q("Was I short on the sunshine vitamin at my June checkup?",
        "notes/health/bloodwork-2025-06.txt", "Vitamin D 38 nmol/L (low)", "paraphrase")

    c.note("notes/finance/budget-2026.md", """
        # Budget 2026 (monthly, both salaries)

        | item | EUR |
        |---|---|
        | rent (warm) | 1,610 |
        | Kita/Hort + lunch | 95 |
        | groceries | 850 |
        | public transport (2 Deutschlandtickets) | 116 |
        | insurance (household, liability, Alex's BU) | 142 |
        | phones + internet | 78 |
        | Mia: swimming, Chinese school, music | 135 |
        | savings: ETF | 600 |
        | savings: holidays | 300 |

        The ETF is the Vanguard FTSE All-World, ISIN IE00BK5BQT80, accumulating, savings plan on
        the 2nd of each month at the online broker. Emergency fund target: 6 months of expenses
        (about 22,000 EUR), reached in August.
        """)
    c.q("ISIN of the ETF savings plan", "notes/finance/budget-2026.md", "IE00BK5BQT80", "keyword")
    c.q("How big should our rainy-day reserve be?",
        "notes/finance/budget-2026.md", "about 22,000 EUR", "paraphrase")

    c.note("notes/finance/tax-2025.md", """
        # Tax return 2025

        My tax ID (Steuer-ID): 47 036 892 815. Finanzamt Charlottenburg, tax number 27/614/05883.
        We file jointly with the advisor (Frau Demir, Lohnsteuerhilfe), her deadline is the end of
        February; the official one is 30 April 2027 because we use an advisor.

        To collect:
        - payslips / annual wage statement from Kestrel Analytics (Lohnsteuerbescheinigung)
        - home office: 143 days in 2025 (calendar export), at 6 EUR a day
        - donations: Ärzte ohne Grenzen 240 EUR, the school association 50 EUR
        - childcare costs: Hort invoices, Chinese school fees
        - craftsman costs from the Nebenkostenabrechnung (Haushaltsnahe Dienstleistungen)
        - new laptop bag and monitor (work equipment), receipts in the CloudNest folder "tax 2025"
        """)
    c.q("What's my Steuer-ID?", "notes/finance/tax-2025.md", "47 036 892 815", "keyword")
    c.q("How many days did I work from my flat last year for the return?",
        "notes/finance/tax-2025.md", "143 days in 2025", "paraphrase")

    c.note("notes/work/oncall-runbook.md", """
        # On-call runbook: Atlas ingest pipeline

        Pager rotation: one week, handover Monday 10:00 in #atlas-oncall. Escalation: after 15
        minutes without acknowledgement the page goes to the secondary, after 30 minutes to the
        engineering manager (Tom Richter).

        ## Alert: consumer lag high (KSTR-ALERT-17)

        Meaning: the kestrel-consumer instances are behind the broker by more than 5 minutes of
        events. Customers see stale dashboards.

        1. Check the consumer dashboard in Grafana ("Atlas / Ingest"). If only one partition is
           behind, it is usually a poison message: look for repeated deserialisation errors in
           the logs of that instance.
        2. If all partitions are behind and CPU is at 100 %, scale out:
           `kubectl -n atlas scale deploy/kestrel-consumer --replicas=12` (max 16; the broker
           has 16 partitions, more replicas do nothing).
        3. If a single instance is stuck (lag grows, CPU near 0), restart it:
           `kubectl -n atlas rollout restart deploy/kestrel-consumer`.
        4. Post in #atlas-status every 30 minutes while customers are affected.

        ## Alert: Postgres replication lag (KSTR-ALERT-22)

        The read replica is behind the primary. Usually a long-running analytical query on the
        replica holds back the WAL replay. Find it with `SELECT pid, now() - query_start, query
        FROM pg_stat_activity WHERE state = 'active' ORDER BY 2 DESC;` and cancel it with
        `pg_cancel_backend(pid)` if it runs for more than 20 minutes. Do not terminate
        replication slots.

        ## Alert: disk almost full on broker (KSTR-ALERT-09)

        Retention on the raw topics is 72 hours. If the disk is above 85 %, lower retention on
        `atlas.raw.clicks` to 48 hours temporarily (`kafka-configs --alter --add-config
        retention.ms=172800000`) and open a ticket for more disk. Never delete segment files by
        hand.

        ## After an incident

        Write the incident note within two working days (template in Confluence, "Atlas
        postmortem"), blameless, with a timeline and at least one follow-up ticket.
        """)
    c.q("What should I do when the event processors fall behind and one of them looks frozen?",
        "notes/work/oncall-runbook.md", "kubectl -n atlas rollout restart deploy/kestrel-consumer",
        "paraphrase")
    c.q("KSTR-ALERT-22", "notes/work/oncall-runbook.md", "pg_cancel_backend(pid)", "keyword")
    c.q("how long do the raw kafka topics keep data", "notes/work/oncall-runbook.md",
        "Retention on the raw topics is 72 hours", "keyword")

    c.note("notes/work/meetings/2025-10-14-atlas-sync.md", """
        # Atlas sync, 14 October 2025

        Present: Jing, Priya Raman, Tom Richter, Lena Vogt, Marco Bianchi

        ## Status
        - Ingest p99 latency back under 2 s since the consumer fix (PR #482).
        - Dashboard export to CSV shipped to 30 % of customers.

        ## Decisions
        - We move the metadata database from Postgres 12 to Postgres 16 this quarter. Priya owns
          the Postgres 16 migration; target is the end of November, with a rehearsal on staging
          first.
        - No new features on the legacy export service; it is switched off in Q1.

        ## Action items
        - Priya: migration plan and rollback plan in ATLAS-1207 by 24 October.
        - Jing: load test of the new partitioning scheme, results in next sync.
        - Marco: ask the customer success team which customers still use the legacy export.
        """)
    c.q("Who is in charge of the Postgres 16 migration?",
        "notes/work/meetings/2025-10-14-atlas-sync.md", "Priya owns the Postgres 16 migration", "keyword")

    c.note("notes/work/1on1-lena.md", """
        # 1:1 with Lena (I am her mentor)

        2025-09-18: Lena wants to move towards data engineering in the next year; she enjoys the
        pipeline work more than the API work. Agreed: she shadows the ingest on-call in Q4 and
        takes the partition rebalancing ticket. Book recommendation: "Designing Data-Intensive
        Applications".

        2025-10-16: Shadowing went well, she handled the KSTR-ALERT-09 page herself. Wants
        feedback on her design doc writing: too long, decisions buried at the end. Suggested the
        "decision first" template.

        2025-11-13: Promotion case for next cycle? Tom is supportive, needs one project she leads
        end to end. Candidate: the CSV export rework.
        """)
    c.q("What new direction does Lena want for her career?",
        "notes/work/1on1-lena.md", "move towards data engineering", "paraphrase")

    c.note("notes/people/birthdays.md", """
        # Birthdays

        - Mia — 3 February
        - Alex — 21 July
        - Mama (外婆 for Mia) — 12 September (lunar 8/8 some years, ask)
        - Baba — 30 December
        - Uncle Tomasz (Alex's side) — 17 March, likes single malt and crime novels
        - Hannah — 6 December (40 in 2025!)
        - Frau Schulz downstairs — 2 May, bring flowers
        - Priya — 11 August
        """)
    c.q("When is Tomasz's birthday?", "notes/people/birthdays.md", "Uncle Tomasz (Alex's side) — 17 March", "keyword")

    c.note("notes/pets/luna.md", """
        # Luna

        British shorthair, born 14 April 2016, neutered. Microchip 276098106543211, registered
        with TASSO. Vet: Tierarztpraxis Westend, Dr. Marek Nowak.

        Since the kidney values were high in 2024 she gets renal diet food only: 55 g of wet food
        twice a day plus a handful of the renal dry food at night. No treats from Mia!

        When we travel: Frau Schulz feeds her, key with her. Litter: clumping, change fully every
        two weeks.
        """)
    c.q("Luna microchip number", "notes/pets/luna.md", "276098106543211", "keyword")
    c.q("How much should the cat eat every day?", "notes/pets/luna.md",
        "55 g of wet food twice a day", "paraphrase")

    c.note("notes/car/maintenance-log.txt", """
        Car: Skoda Octavia Combi 1.5 TSI, 2019, plate B-KX 4471.
        Tyre pressure (normal load): 2.5 bar front, 2.4 bar rear. Winter tyres stored at the
        dealer, storage no. 7731.

        2024-05-03  91,000 km  inspection + brake fluid, Autohaus Lindner, 412.80 EUR
        2024-11-02  93,900 km  winter tyres on, 60 EUR
        2025-04-12  96,200 km  summer tyres on, wiper blades, 84 EUR
        2025-06-12  97,650 km  oil change 5W-30 (VW 504 00) at Autohaus Lindner, 189.40 EUR
        2025-09-30  99,120 km  TÜV passed, no defects (report in the PDF)
        """)
    c.q("When did we last get the engine oil replaced?",
        "notes/car/maintenance-log.txt", "2025-06-12  97,650 km  oil change", "paraphrase")
    c.q("tyre pressure Octavia front", "notes/car/maintenance-log.txt", "2.5 bar front", "keyword")

    c.note("notes/reading/books-2025.md", """
        # Books 2025

        - **The Overstory** (Richard Powers): 5/5. Nine people whose lives are changed by trees;
          the chestnut chapter made me cry. Best book of the year.
        - **Project Hail Mary** (Andy Weir): 4/5, fun, read it with Alex on the train.
        - **三体** (刘慈欣), re-read in Chinese: 5/5, the first book is still the best.
        - **Tomorrow, and Tomorrow, and Tomorrow**: 3/5, too long in the middle.
        - **Designing Data-Intensive Applications**: re-read chapters 5 to 9 for work.
        - **Klara and the Sun**: 4/5, quiet and sad.
        """)
    c.q("Which novel about forests and the people around them did I rate best this year?",
        "notes/reading/books-2025.md", "The Overstory", "paraphrase")

    c.note("notes/garden/balcony-plan.md", """
        # Balcony garden 2026

        South-west balcony, about 5 hours of sun. Last year the tomatoes got blossom end rot:
        water more regularly, never let the pots dry out.

        Tomatoes: 'Sungold' and 'Black Krim', sow indoors on 15 March on the windowsill in Mia's
        room, prick out after two true leaves. Put them outside only after the Ice Saints
        (15 May), nights in Berlin can still be 3 °C before that.
        Herbs: basil, chives, Thai basil (from seed), the rosemary survived the winter inside.
        Strawberries in the hanging pot for Mia.
        Order: 40 l tomato soil, organic fertiliser, two more 20 l pots.
        """)
    c.q("When is it safe to move the seedlings out onto the balcony?",
        "notes/garden/balcony-plan.md", "after the Ice Saints", "paraphrase")

    c.note("notes/learning/rust-lifetimes.md", """
        # Rust notes: lifetimes and borrowing

        A reference can never outlive the value it points to. Returning `&String` from a function
        that created the String locally fails because the String is dropped at the end of the
        function; return the owned `String` instead, or take the buffer as a parameter.

        Lifetime elision: with exactly one input reference, the output gets its lifetime. With
        `&self` methods, outputs borrow from `self`. Otherwise write them out: `fn longest<'a>(a:
        &'a str, b: &'a str) -> &'a str`.

        `'static` does not mean "lives forever", it means "could live forever": owned types like
        `String` satisfy `T: 'static`. Thread spawn needs `'static` because the thread may outlive
        the caller; scoped threads (`std::thread::scope`) lift that.

        Interior mutability: `Cell` for Copy values, `RefCell` for borrow checks at run time
        (panics on double mutable borrow), `Mutex`/`RwLock` across threads. `Rc` is not Send.

        Common fix for "cannot borrow as mutable because it is also borrowed as immutable":
        finish using the immutable borrow first (copy the value out, or collect indices), then
        mutate. Non-lexical lifetimes make this much easier than it used to be.

        Iterators: `iter()` borrows, `iter_mut()` borrows mutably, `into_iter()` consumes.
        `collect::<Result<Vec<_>, _>>()` stops at the first error.
        """)
    c.q("why can't a function hand back a borrow of something it made itself",
        "notes/learning/rust-lifetimes.md", "A reference can never outlive the value it points to",
        "paraphrase")


# ------------------------------------------------------------------- anchor web


def anchor_pages(c):
    c.page("web/saved/cast-iron-care.html", "How to care for a cast-iron pan", [
        "Cast iron lasts for generations if you treat it right, and most of the rules people worry about are myths.",
        "## Cleaning",
        "Wash it with hot water and a brush while it is still warm. A drop of dish soap is fine on a well-seasoned pan; what you must avoid is leaving it to soak in the sink overnight.",
        "## Preventing rust",
        "Water is the enemy. Dry it on the stove over low heat for a minute or two until every trace of moisture is gone, then wipe a very thin film of oil over the inside with a paper towel.",
        "## Re-seasoning",
        "If the surface turns patchy or orange spots appear, scrub them off with steel wool, coat the whole pan thinly with flaxseed or sunflower oil and bake it upside down at 230 °C for an hour. Repeat three times for a dark, slick finish.",
        "## What to cook first",
        "Fry bacon, shallow-fry potatoes or bake cornbread in a new pan. Acidic tomato sauces can wait until the seasoning is established.",
    ])
    c.q("How do I stop my skillet from going rusty after washing it?",
        "web/saved/cast-iron-care.html", "Dry it on the stove over low heat", "paraphrase")

    c.page("web/saved/heat-pump-faq.html", "Heat pumps in older buildings: questions and answers", [
        "Many owners of buildings from the 1960s and 70s ask whether an air-source heat pump can replace their gas boiler. In most cases it can, if the flow temperature can be kept low.",
        "## What does the coefficient of performance mean?",
        "The COP is the ratio of heat delivered to electricity used. A typical air-to-water unit reaches a COP of 4.2 at 7 °C outside and a COP of 2.6 at -7 °C outside with a flow temperature of 45 °C.",
        "## Do I need underfloor heating?",
        "No. Larger radiators, or replacing two or three of the smallest radiators in the coldest rooms, are often enough to bring the flow temperature down to 50 °C or below.",
        "## How loud is the outdoor unit?",
        "Modern units produce about 35 dB(A) at three metres at night, comparable to a quiet fridge. Check the local rules for distance to the property line.",
        "## Funding",
        "Federal funding covers 30 % of the eligible costs, plus bonuses for low-income households and for replacing a working fossil boiler early.",
    ])
    c.q("How efficient is an air-to-water unit when it is freezing outside?",
        "web/saved/heat-pump-faq.html", "a COP of 2.6 at -7 °C outside", "paraphrase")

    c.page("web/saved/kyoto-temples.html", "Kyoto temples without the crowds", [
        "Kyoto has more than 1,600 temples, but the famous ones are packed from 9 in the morning. A few tips from two years of living near Demachiyanagi.",
        "## Fushimi Inari",
        "The shrine with thousands of vermilion torii is open 24 hours and free. Go before 7 am, or after sunset with a torch: above the Yotsutsuji intersection, halfway up the mountain, most visitors turn back and you have the gates to yourself.",
        "## Kinkaku-ji",
        "Opens at 9:00; the light on the golden pavilion is best in the late afternoon when the pond is still.",
        "## Ginkaku-ji and the Philosopher's Path",
        "Walk the path from Ginkaku-ji south to Nanzen-ji early in the morning. In November the maples along the canal are at their peak around the 20th.",
        "## Tofuku-ji",
        "The Tsutenkyo bridge is the most photographed autumn view in the city; on weekends in late November the queue to cross it takes an hour.",
    ])
    c.q("When should we visit the shrine with the thousands of red gates to avoid tourists?",
        "web/saved/kyoto-temples.html", "Go before 7 am", "paraphrase")

    c.page("web/saved/kita-fees-berlin.html", "After-school care (Hort) in Berlin: what it costs", [
        "Since August 2018 daycare in Berlin is free of charge for all children; parents only pay a contribution to lunch of 23 EUR a month.",
        "## Hort for primary school children",
        "For grades 1 and 2 after-school care is also free. From grade 3 parents need a voucher (Gutschein) from the youth welfare office and the care is free as well, but the voucher must be renewed every school year, ideally by the end of April.",
        "## Holidays",
        "Hort covers the school holidays except for about three weeks in summer and the days between Christmas and New Year.",
    ])


# ------------------------------------------------------------ anchor English mail


JING = ("Jing Chen", "jing.chen@posteo.example")
ALEX = ("Alex Brenner", "alex.brenner@posteo.example")


def d(y, m, day, hh=9, mm=0, tz=TZ_BERLIN):
    if tz is TZ_BERLIN and datetime.date(2025, 3, 30) <= datetime.date(y, m, day) < datetime.date(2025, 10, 26):
        tz = datetime.timezone(datetime.timedelta(hours=2))  # summer time
    return datetime.datetime(y, m, day, hh, mm, tzinfo=tz)


def anchor_mail_en(c):
    c.eml("mail/2025-09-02-booking-confirmation.eml", Mail(
        ("Lufthansa", "booking-confirmation@lufthansa.example"), JING, d(2025, 9, 2, 21, 14),
        "Your booking confirmation QX7P2M: Frankfurt - Tokyo", """
Dear Ms Chen,

Thank you for booking with us. Your booking reference is QX7P2M. Please keep it at hand for all enquiries.

Outbound: LH 716, Friday 10 October 2025, Frankfurt (FRA) 13:45 - Tokyo Haneda (HND) 09:15 (+1 day), Airbus A350-900, Economy.
Return: LH 741, Sunday 26 October 2025, Osaka Kansai (KIX) 10:25 - Frankfurt (FRA) 17:20, Economy.

Passengers: CHEN/JING MS, BRENNER/ALEX MR, BRENNER/MIA MISS (child)
Seats outbound: 34H, 34J, 34K.

Baggage allowance: one checked bag of 23 kg per passenger and one piece of hand luggage of 8 kg.

Online check-in opens 23 hours before departure. Please make sure your passports are valid for the whole stay.

Total price: EUR 3,184.47 (paid by Visa ending 9912).

We wish you a pleasant flight.
Your booking team
""", cte="quoted-printable", alt_html=True))
    c.q("What's the booking reference for our Tokyo flight?",
        "mail/2025-09-02-booking-confirmation.eml", "QX7P2M", "keyword")
    c.q("How much luggage may each of us check in on the flight to Japan?",
        "mail/2025-09-02-booking-confirmation.eml", "one checked bag of 23 kg per passenger", "paraphrase")

    c.eml("mail/2025-10-20-rent-adjustment.eml", Mail(
        ("Jürgen Köhler", "j.koehler@koehler-immobilien.example"), JING, d(2025, 10, 20, 11, 2),
        "Mietanpassung / rent adjustment Knobelsdorffstraße 41", """
Dear Ms Chen, dear Mr Brenner,

as announced in the letter we sent by post, the net monthly rent (Kaltmiete) for your flat on the 3rd floor right will rise from €1,180 to €1,240 from 1 January 2026, in line with the current Berlin rent index (Mietspiegel 2025). Operating costs (Nebenkosten) stay at €370 per month for now.

Please adjust your standing order by the end of December. The formal request for your consent is enclosed with the paper letter; you have until 31 December to agree.

If you have questions, I am in the office Monday to Thursday, 9:00–13:00.

Kind regards
Jürgen Köhler
Köhler Immobilien GmbH
""", cte="quoted-printable"))
    c.q("How much more will the flat cost every month from next year?",
        "mail/2025-10-20-rent-adjustment.eml", "from €1,180 to €1,240", "paraphrase")

    c.eml("mail/2025-11-03-dentist-reminder.eml", Mail(
        ("Praxis am Lietzensee", "termine@zahnarzt-lietzensee.example"), JING, d(2025, 11, 3, 8, 0),
        "Appointment reminder for Mia Brenner", """
Hello,

this is a reminder of the appointment for Mia Brenner with Dr. Sabine Haas on Friday, 14 November 2025 at 08:40 (check-up and fluoride varnish, about 30 minutes).

Please bring the insurance card. If you cannot come, cancel at least 24 hours in advance by phone (030 3021 7760) or by replying to this e-mail; missed appointments may be charged.

Your team of the Praxis am Lietzensee
""", cte="7bit"))
    c.q("When is Mia's appointment with Dr. Haas?",
        "mail/2025-11-03-dentist-reminder.eml", "Friday, 14 November 2025 at 08:40", "keyword")

    c.eml("mail/2025-08-27-claim-approved.eml", Mail(
        ("HanseSchutz Claims", "claims@hanseschutz.example"), JING, d(2025, 8, 27, 15, 31),
        "Claim CLM-2025-088341: decision", """
Dear Ms Chen,

we have reviewed your claim CLM-2025-088341 (water damage in the kitchen on 12 August 2025, leaking connection under the sink) under household policy HP-77120934.

Your claim has been approved. After the deductible of EUR 150.00 we will transfer EUR 2,365.00 to your account ending 4410 within five business days. This covers the replacement of the base cabinets and the laminate in the kitchen as per the quote from Tischlerei Graf.

The drying of the walls was paid by the building insurance of your landlord and is therefore not included.

Kind regards
Claims department
""", cte="base64", alt_html=True, html_cte="quoted-printable"))
    c.q("status of claim CLM-2025-088341", "mail/2025-08-27-claim-approved.eml",
        "Your claim has been approved", "keyword")
    c.q("How much are they reimbursing us for the leak under the sink?",
        "mail/2025-08-27-claim-approved.eml", "EUR 2,365.00", "paraphrase")

    c.eml("mail/2025-10-01-offsite.eml", Mail(
        ("Tom Richter", "tom.richter@kestrel-analytics.example"), ("Atlas team", "atlas-team@kestrel-analytics.example"),
        d(2025, 10, 1, 16, 45), "Offsite 22-24 October: logistics", """
Hi all,

the offsite is confirmed: 22 to 24 October at Hotel Seeblick in Konstanz, on Lake Constance.

Travel: the coach leaves from the office courtyard on Wednesday at 07:30 sharp and we should arrive around 15:00. If you prefer the train, book it yourself and expense it (second class).

Rooms are single rooms. Bring your laptop, hiking shoes for Thursday afternoon and a swimsuit if you are brave. Dinner on Thursday is in the old town, vegetarian and vegan options are arranged, tell Sarah about any allergies by Friday.

Agenda draft is in the shared folder. Day one is roadmap 2026, day two is the platform reliability workshop.

Tom
""", cte="quoted-printable"))
    c.q("What time does the bus to the team retreat leave?",
        "mail/2025-10-01-offsite.eml", "07:30 sharp", "paraphrase")

    c.eml("mail/2025-09-15-class-trip.eml", Mail(
        ("Jens Albers", "j.albers@grundschule-westend.example"), ("Parents 4b", "eltern-4b@grundschule-westend.example"),
        d(2025, 9, 15, 19, 5), "Class 4b: trip to the Natural History Museum on 2 October", """
Dear parents of class 4b,

on Thursday 2 October we will visit the Museum für Naturkunde. We leave school at 8:15 by U-Bahn and are back by 13:00, so the Hort schedule is not affected.

Please return the signed permission slip by Friday 26 September, together with 12 euros in an envelope with your child's name (entrance, workshop "Dinosaur detectives" and the drawing booklet).

Children need a packed lunch, a drink and weather-appropriate clothes. No money for the shop please.

We are still looking for two parents to accompany us. Please reply to this e-mail if you can.

Best wishes
Jens Albers
""", cte="8bit"))
    c.q("How much cash does Mia need to bring for the museum excursion?",
        "mail/2025-09-15-class-trip.eml", "12 euros in an envelope", "paraphrase")

    c.eml("mail/2025-11-12-order-shipped.eml", Mail(
        ("Online Shop", "shipment-tracking@shop.example"), ALEX, d(2025, 11, 12, 7, 12),
        "Your order 302-8841177-5521 has shipped", """
Hello Alex,

good news: your order 302-8841177-5521 is on its way.

Bosch Professional GSR 12V-35 cordless drill, 2 batteries, case: 1 x EUR 149.99

Carrier: DHL. Tracking number: JJD000390007788412
Expected delivery: Friday 14 November, 8:00 - 18:00. If you are not at home, the parcel goes to the Packstation 127 on Kaiserdamm.

Returns are free within 30 days.
""", cte="quoted-printable", alt_html=True))
    c.q("tracking number for the cordless drill", "mail/2025-11-12-order-shipped.eml",
        "JJD000390007788412", "keyword")

    c.eml("mail/2025-11-18-cutover.eml", Mail(
        ("Priya Raman", "priya.raman@kestrel-analytics.example"), ("Atlas team", "atlas-team@kestrel-analytics.example"),
        d(2025, 11, 18, 14, 20), "Postgres 16 cutover moved", """
Hi everyone,

after the staging rehearsal on Monday (went fine, 47 minutes end to end) we moved the production cutover to Saturday 29 November, 06:00 UTC. The maintenance window is two hours; the status page announcement goes out on Wednesday.

Roles: I run the migration, Jing watches the ingest consumers and pauses them at the start, Marco is on the customer channel. The rollback plan is in ATLAS-1207 and we decide go/no-go at 07:15 UTC at the latest.

Please keep your phones on. Breakfast is on me.

Priya
""", cte="base64"))
    c.q("When is the Atlas database cutover happening?",
        "mail/2025-11-18-cutover.eml", "Saturday 29 November, 06:00 UTC", "keyword")
    c.q("What's my job during the Postgres switchover weekend?",
        "mail/2025-11-18-cutover.eml", "Jing watches the ingest consumers", "paraphrase")

    c.eml("mail/2025-12-02-vet-reminder.eml", Mail(
        ("Tierarztpraxis Westend", "praxis@tierarzt-westend.example"), JING, d(2025, 12, 2, 10, 30),
        "Vaccination reminder for Luna", """
Dear Ms Chen,

according to our records, Luna (British shorthair) is due for her rabies booster and the yearly check-up on 9 January 2026. We have reserved 16:20 with Dr. Marek Nowak for you; please confirm or choose another time online.

At this visit we would also like to repeat the kidney blood values (creatinine, SDMA). Please do not feed her for 6 hours before the appointment.

Best regards
Your Tierarztpraxis Westend
""", cte="quoted-printable"))
    c.q("When does the cat get her next jab?", "mail/2025-12-02-vet-reminder.eml", "9 January 2026", "paraphrase")

    c.eml("mail/2025-11-10-hannah-40.eml", Mail(
        ("Hannah Lorenz", "hannah.lorenz@mailbox.example"), JING, d(2025, 11, 10, 20, 48),
        "Save the date!!", """
Hi Jing,

I'm turning 40 (help) and want to celebrate properly: Saturday 6 December from 19:00 at the Kranzler Eck rooftop bar, we have the small room to ourselves. Partners welcome, kids better not, it will get loud.

No presents please. If you insist, a contribution to my Lisbon trip fund is very welcome.

Tell me by the 25th if you can come so I can tell the bar the numbers.

Hugs
Hannah
""", cte="8bit"))
    c.q("When and where is the party for Hannah turning forty?",
        "mail/2025-11-10-hannah-40.eml", "Saturday 6 December from 19:00 at the Kranzler Eck rooftop bar", "paraphrase")

    c.eml("mail/2025-09-22-electricity-prices.eml", Mail(
        ("Stromwerk Berlin", "kundenservice@stromwerk.example"), JING, d(2025, 9, 22, 6, 0),
        "Price change for your electricity contract 4410-228-19", """
Dear customer,

we are adjusting the prices of your electricity tariff "Stromwerk Öko 24" (contract 4410-228-19) from 1 November 2025:

Working price: 31.9 ct/kWh (previously 34.2 ct/kWh)
Basic fee: 12.50 EUR per month (unchanged)

Your monthly instalment will be recalculated with the annual statement. You do not need to do anything. Because the price goes down, there is no special right of termination.

Your Stromwerk team
""", cte="quoted-printable", alt_html=True))
    c.q("new price per kWh from November", "mail/2025-09-22-electricity-prices.eml", "31.9 ct/kWh", "keyword")

    c.eml("mail/2025-11-28-rowing-club.eml", Mail(
        ("Ruderclub Spandau", "kasse@ruderclub-spandau.example"), ALEX, d(2025, 11, 28, 18, 0),
        "Membership 2026", """
Dear Alex,

thank you for being a member of the Ruderclub Spandau in 2025. The annual fee for 2026 is 240 EUR for adult members and will be collected by direct debit on 15 January 2026.

The boat house closes for the winter from 13 December; indoor training on the rowing machines continues on Tuesdays and Thursdays from 18:30.

Your club treasurer
""", cte="7bit"))
    c.q("How much is Alex's rowing club membership next year?",
        "mail/2025-11-28-rowing-club.eml", "240 EUR for adult members", "keyword")


# ------------------------------------------------------------ anchor Chinese mail


MAMA = ("妈妈", "chen.mama@163.example")
BABA = ("陈建华", "chen.jianhua@qq.example")


def anchor_mail_zh(c):
    c.eml("mail/zh/2025-12-20-chunjie.eml", Mail(
        MAMA, JING, d(2025, 12, 20, 21, 5, TZ_CHINA), "春节回家的安排", """
静静：

你们春节回来的机票订好了吗？你爸说今年除夕是2月16日，让你们最好2月13日之前到家，这样还能一起去外婆家住两天。

外婆最近身体还不错，饭量也好，就是膝盖不太好，上下楼梯要人扶着。她一直念叨着想见米娅，说米娅的中文肯定又进步了。

家里的房间我已经收拾好了，被子也晒过了。米娅喜欢的那个兔子灯笼我也买好了，还给她做了一件红色的小棉袄。

你们从柏林飞的话，是在北京转机还是上海转机？到了告诉我航班号，你爸开车去萧山机场接你们。

Alex 吃不吃辣？年夜饭我想做一个水煮鱼。

妈妈
""", charset="utf-8", cte="base64"))
    c.q("妈妈让我们春节前哪天之前到家？", "mail/zh/2025-12-20-chunjie.eml", "2月13日之前到家", "chinese")
    c.q("外婆的身体哪里不好？", "mail/zh/2025-12-20-chunjie.eml", "膝盖不太好", "chinese")

    c.eml("mail/zh/2025-11-06-hangzhou-lease.eml", Mail(
        ("安居房产 赵经理", "zhao.jingli@anju-fangchan.example"), JING, d(2025, 11, 6, 10, 12, TZ_CHINA),
        "杭州滨江房子续租的事情", """
陈女士您好：

您在杭州滨江区江南大道的那套房子，现在的租客刘先生一家想续租两年。他们一直按时交租，房子也保持得很好。

我跟他们谈了一下，新的租金从每月4200元调整到每月4500元，从2026年3月1日开始执行，押金还是两个月，租金每三个月付一次。

如果您同意，我这边准备新合同，您可以远程电子签字。另外厨房的热水器已经用了八年，租客反映最近打火不太灵，建议换一台新的，大概两千元左右，您看是否可以？

麻烦您本周内回复一下。

安居房产 赵明
""", charset="gbk", cte="base64"))
    c.q("杭州那套房子续租以后每个月租金是多少？", "mail/zh/2025-11-06-hangzhou-lease.eml", "每月4500元", "chinese")
    c.q("杭州房子的新租金从哪天开始？",
        "mail/zh/2025-11-06-hangzhou-lease.eml", "2026年3月1日开始执行", "chinese")

    c.eml("mail/zh/2025-10-15-reunion.eml", Mail(
        ("李浩", "lihao1988@sina.example"), JING, d(2025, 10, 15, 22, 40, TZ_CHINA), "高中毕业二十周年聚会通知", """
各位老同学：

时间过得真快，我们杭二中06届毕业已经二十年了！经过大家在群里的讨论，聚会定在2026年1月3日（星期六）晚上6点半，地点在湖滨的老地方火锅店二楼。

费用AA制，每人200元，多退少补。现场会准备抽奖和老照片展示，有老照片的同学请发给我。

报名请在12月20日之前回复这封邮件或者在群里接龙。在国外的同学如果赶不回来，我们会开视频连线。

班长 李浩
""", charset="gbk", cte="quoted-printable"))
    c.q("高中同学聚会每个人要交多少钱？", "mail/zh/2025-10-15-reunion.eml", "每人200元", "chinese")
    c.q("同学聚会在哪里举行？", "mail/zh/2025-10-15-reunion.eml", "湖滨的老地方火锅店二楼", "chinese")

    c.eml("mail/zh/2025-11-20-baoguo.eml", Mail(
        BABA, JING, d(2025, 11, 20, 8, 3, TZ_CHINA), "给你们寄了个包裹", """
静静：

今天上午在邮局给你们寄了一个包裹，EMS单号是EE482917305CN，邮局说大概两到三周能到柏林，可能要过海关。

包裹里有茶叶、腊肠和米娅的毛衣。茶叶是今年的龙井，你妈特意去梅家坞买的。腊肠是你二姨自己做的，不知道德国海关让不让进，如果被扣了也没关系。

毛衣是你妈织的，按照米娅去年的尺寸放大了一号。

收到了告诉我们一声。

爸爸
""", charset="gb18030", cte="base64"))
    c.q("爸爸寄来的包裹里有什么东西？", "mail/zh/2025-11-20-baoguo.eml", "茶叶、腊肠和米娅的毛衣", "chinese")
    c.q("EE482917305CN", "mail/zh/2025-11-20-baoguo.eml", "EE482917305CN", "keyword")

    c.eml("mail/zh/2025-09-28-tijian.eml", Mail(
        ("陈琳", "chenlin.sister@126.example"), JING, d(2025, 9, 28, 19, 30, TZ_CHINA), "爸爸的体检结果", """
姐：

爸爸上周在市一医院做的体检，结果今天出来了，我先跟你说一下大概情况。

血压142/90，偏高，医生建议少吃盐，每天早晚各量一次血压，记下来，三个月后复查，如果还高就要开始吃药。

血糖正常。总胆固醇稍微高一点，6.1，医生说先控制饮食，多走路。肝功能、肾功能都正常。胸片没问题。

爸爸自己觉得没事，还是每天喝酒，你有空给他打个电话劝劝他。

琳琳
""", charset="utf-8", cte="quoted-printable", alt_html=True))
    c.q("医生说爸爸多久以后要复查血压？", "mail/zh/2025-09-28-tijian.eml", "三个月后复查", "chinese")
    c.q("爸爸体检的血压是多少？", "mail/zh/2025-09-28-tijian.eml", "血压142/90", "chinese")

    c.eml("mail/zh/2025-12-01-qingniao-weekly.eml", Mail(
        ("周涛", "zhou.tao@kestrel-analytics.example"), ("Atlas team", "atlas-team@kestrel-analytics.example"),
        d(2025, 12, 1, 18, 0, TZ_CHINA), "青鸟项目周报（第48周）", """
各位好，

以下是青鸟项目（上海办公室客户数据平台迁移）第48周的进展：

一、进度
1. 历史数据迁移已完成85%，剩余部分主要是2019年以前的归档数据。
2. 新的权限系统已经在测试环境上线，正在做安全审查。

二、计划变更
由于客户方的接口文档一直没有更新，联调比预期慢，上线日期从12月15日推迟到2026年1月12日。客户方已经同意。

三、风险
供应商的接口文档不全，部分字段含义需要当面确认。下周二我会去客户那边开会。

四、需要支持
需要柏林团队（Jing）帮忙确认数据管道在高峰期的吞吐量，最好能在12月10日之前给出压测结果。

周涛
""", charset="utf-8", cte="base64", alt_html=True))
    c.q("青鸟项目什么时候正式上线？", "mail/zh/2025-12-01-qingniao-weekly.eml", "推迟到2026年1月12日", "chinese")
    c.q("周涛需要我在什么时候之前给出压测结果？", "mail/zh/2025-12-01-qingniao-weekly.eml", "12月10日之前", "chinese")

    c.eml("mail/zh/2026-01-05-wedding.eml", Mail(
        ("林小雨", "linxiaoyu@163.example"), JING, d(2026, 1, 5, 12, 0, TZ_CHINA), "婚礼邀请｜小雨和阿哲", """
亲爱的表姐：

我和阿哲要结婚啦！婚礼定在2026年5月1日中午11点58分，地点在杭州西湖边的湖畔花园酒店三楼宴会厅。

我知道你们在德国回来一趟不容易，但是真的很希望你、姐夫和米娅都能来。米娅可以当花童！

如果能来，请告诉我你们几个人，我好安排座位和酒店房间。酒店我们已经包了一层，住宿不用担心。

小雨
""", charset="utf-8", cte="8bit"))
    c.q("表妹的婚礼在哪里办？", "mail/zh/2026-01-05-wedding.eml", "湖畔花园酒店三楼宴会厅", "chinese")

    c.eml("mail/zh/2025-10-08-zhongwen-xuexiao.eml", Mail(
        ("柏林华德中文学校", "info@huade-schule.example"), ("家长", "eltern@huade-schule.example"),
        d(2025, 10, 8, 20, 15), "三年级B班家长通知：学费和期中考试", """
各位家长好：

新学期已经开始一个月了，感谢大家的支持。以下几件事请家长注意：

一、本学期学费每位学生280欧元，请在10月31日前转账到学校账户，备注学生姓名和班级。

二、期中考试定在11月22日（星期六）上午10点，考试内容是第一到第四课的生字和课文朗读。

三、11月29日学校举办中秋和国庆联欢会（补办），欢迎家长带孩子参加，每家可以带一道菜。

如有问题请联系班主任王老师。

柏林华德中文学校
""", charset="gb2312", cte="quoted-printable"))
    c.q("米娅中文学校的学费要在什么时候之前交？", "mail/zh/2025-10-08-zhongwen-xuexiao.eml", "10月31日前", "chinese")

    c.eml("mail/zh/2025-11-11-wangfang-visit.eml", Mail(
        ("王芳", "wangfang.sh@qq.example"), JING, d(2025, 11, 11, 23, 10, TZ_CHINA), "明年想去柏林看你", """
静静，好久不见！

我跟老公商量好了，明年四月想带孩子去欧洲玩两周，先到柏林找你，然后去布拉格和维也纳。

想问问你几个问题：四月柏林冷不冷？要带羽绒服吗？住在哪个区比较方便又安全？你们家附近有没有适合带小孩的酒店或者公寓？

还有，申根签证现在要提前多久办？我们打算在上海德国领事馆办。

等你回复，想你！
芳芳
""", charset="gbk", cte="base64"))
    c.q("王芳打算什么时候来柏林？", "mail/zh/2025-11-11-wangfang-visit.eml", "明年四月", "chinese")


# ----------------------------------------------------------------- anchor mbox


def anchor_mbox(c):
    club = ("Hiking club", "wandern@lists.wanderfreunde.example")
    tobias = ("Tobias Engel", "tobias.engel@mailbox.example")
    msgs = [
        Mail(("Sabine Roth", "sabine.roth@mailbox.example"), club, d(2025, 10, 6, 9, 12),
             "Saturday: Grunewald loop", """
Hi all,

this Saturday we walk the Grunewald loop via the Teufelsberg and the Grunewaldturm, about 14 km, flat except for the climb to the Teufelsberg.

Meeting point: S-Bahn Grunewald, exit towards the forest, 09:30. We stop for lunch at the Grunewaldturm restaurant, or bring your own.

Sabine
""", cte="7bit"),
        Mail(("Kai Neumann", "kai.n@mailbox.example"), club, d(2025, 10, 6, 12, 40),
             "Re: Saturday: Grunewald loop", """
I'm in, and I'll bring the first aid kit from the club cupboard since Sabine has it on her list.

Kai
""", cte="7bit"),
        Mail(tobias, club, d(2025, 10, 9, 20, 2), "Harz weekend 14-16 November: hut booked", """
Hello everyone,

the hut is booked! We have the whole Brockenblick hut near Schierke for 14 to 16 November, 12 beds in three rooms, wood stove, no Wi-Fi.

Please transfer a deposit of 45 EUR per person to me by 31 October (IBAN DE27 1001 1001 2624 8897 51, reference "Harz + your name"). The rest is split at the end depending on food.

Saturday plan: up the Brocken via the Eckerloch trail and down via the Goethe path, about 16 km and 600 m of climbing.

Tobias
""", cte="quoted-printable"),
        Mail(tobias, club, d(2025, 11, 4, 18, 30), "Harz: carpool", """
Carpool for the Harz weekend:

Car 1: Tobias drives the blue VW Touran (B-TR 2209), leaving from Westkreuz at 16:00 on Friday. Three seats left.
Car 2: Sabine, leaving from Ostkreuz at 17:00, full.

Whoever comes by train: the regional train to Wernigerode and then the HSB narrow-gauge railway to Schierke, last train at 18:50.

Tobias
""", cte="7bit"),
        Mail(("Sabine Roth", "sabine.roth@mailbox.example"), club, d(2025, 11, 10, 21, 15), "Harz: what to pack", """
Hi everyone,

the forecast for the Brocken says snow showers and -3 °C at the top, so please pack winter gear:

- microspikes or light crampons for icy trails (the upper part of the Eckerloch trail is usually frozen in November)
- headlamp, it is dark at 16:30
- warm layers, gloves, hat, a thermos
- indoor shoes and a sleeping bag liner for the hut

I'll bring the big pot for chili on Saturday night.

Sabine
""", cte="quoted-printable"),
        Mail(("张伟", "zhangwei.berlin@mailbox.example"), club, d(2025, 11, 12, 8, 5), "周末哈茨山我去不了了", """
大家好，

很抱歉，这个周末的哈茨山我去不了了。上周踢球的时候脚踝扭伤了，医生说两周内不能爬山。

押金45欧元不用退给我了，就当是给大家买啤酒吧。祝大家玩得开心，记得多拍照片！

张伟
""", charset="utf-8", cte="base64"),
        Mail(("Kai Neumann", "kai.n@mailbox.example"), club, d(2025, 11, 18, 19, 0), "Photos from the Harz", """
What a weekend! I uploaded about 200 photos to the club's shared album (folder "2025-11 Harz"). The one of the summit in the fog with the weather station is my favourite.

Kai
""", cte="7bit"),
        Mail(("Sabine Roth", "sabine.roth@mailbox.example"), club, d(2025, 11, 24, 10, 0), "Annual meeting and Christmas walk", """
Dear members,

the annual meeting takes place on Wednesday 10 December at 19:00 in the back room of the Zur Linde pub, Sophie-Charlotten-Straße 30. On the agenda: the annual report, the accounts, and the election of a new treasurer, since Kai is stepping down after six years.

The Christmas walk along the Havel is on 21 December, meeting at S-Bahn Wannsee at 11:00, mulled wine afterwards.

Sabine
""", cte="quoted-printable"),
    ]
    c.mbox("mail/archive/hiking-club-2025.mbox", msgs)
    c.q("How much do I have to send Tobias for the mountain cabin weekend?",
        "mail/archive/hiking-club-2025.mbox#2", "45 EUR per person", "paraphrase")
    c.q("Who drives the Touran to the Harz?", "mail/archive/hiking-club-2025.mbox#3",
        "Tobias drives the blue VW Touran", "keyword")
    c.q("What should I pack in case the paths up the mountain are icy?",
        "mail/archive/hiking-club-2025.mbox#4", "microspikes or light crampons", "paraphrase")
    c.q("张伟为什么不能去哈茨山？", "mail/archive/hiking-club-2025.mbox#5", "脚踝扭伤了", "chinese")
    c.q("When is the hiking club's annual meeting?", "mail/archive/hiking-club-2025.mbox#7",
        "Wednesday 10 December at 19:00", "keyword")


# ------------------------------------------------------------------- anchor PDFs


def anchor_pdfs(c):
    for number, month, period, date in (
        ("CN-2025-0377", "September", "01.09.2025 - 30.09.2025", "01.10.2025"),
        ("CN-2025-0412", "October", "01.10.2025 - 31.10.2025", "01.11.2025"),
    ):
        c.pdf("pdf/invoices/cloudnest-%s.pdf" % number, "CloudNest GmbH - Invoice %s" % number, [
            "CloudNest GmbH, Torstrasse 140, 10119 Berlin. VAT ID DE 318 884 902.",
            "Bill to: Jing Chen, Knobelsdorffstrasse 41, 14059 Berlin. Customer number 55-20913.",
            "Invoice number: %s\nInvoice date: %s\nService period: %s" % (number, date, period),
            "Item: Storage plan Family 2 TB (monthly), 1 x 32.69 EUR\nNet amount: 32.69 EUR\nVAT 19%%: 6.21 EUR\nTotal amount: 38.90 EUR",
            "The amount will be debited from your account DE89 3704 **** **** **** 4410 on or after the invoice date (SEPA mandate CN-M-20913).",
            "Thank you for storing your memories with CloudNest. Questions about this invoice: billing@cloudnest.example",
        ])
    c.q("How much was CloudNest invoice CN-2025-0412?", "pdf/invoices/cloudnest-CN-2025-0412.pdf",
        "Total amount: 38.90 EUR", "keyword")

    c.pdf("pdf/utilities/electricity-statement-2025.pdf", "Stromwerk Berlin - Annual statement 2024/2025", [
        "Contract 4410-228-19, tariff Stromwerk Oeko 24. Delivery address: Knobelsdorffstrasse 41, 14059 Berlin.",
        "Meter number 1ESY1161234567. Reading on 30.09.2024: 48,112 kWh. Reading on 30.09.2025: 51,524 kWh.",
        "Your consumption in the billing period: 3,412 kWh (previous year 3,655 kWh). Households of three persons in Germany use about 3,500 kWh on average.",
        "Energy costs: 3,412 kWh x 34.20 ct = 1,166.90 EUR. Basic fee: 12 x 12.50 EUR = 150.00 EUR. Total: 1,316.90 EUR.",
        "Instalments paid: 12 x 116.76 EUR = 1,401.10 EUR. Credit: 84.20 EUR, which we will transfer to your account within 14 days.",
        "Your new monthly instalment from November 2025: 96.00 EUR.",
    ])
    c.q("How much electricity did our household use last year?",
        "pdf/utilities/electricity-statement-2025.pdf", "3,412 kWh (previous year 3,655 kWh)", "paraphrase")
    c.q("electricity meter number", "pdf/utilities/electricity-statement-2025.pdf", "1ESY1161234567", "keyword")

    c.pdf("pdf/insurance/household-policy-HP-77120934.pdf", "HanseSchutz Household Insurance - Policy HP-77120934", [
        "Policy holder: Jing Chen. Insured location: Knobelsdorffstrasse 41, 14059 Berlin, 3rd floor right, 86 square metres.",
        "Policy period: 1 March 2023 to 1 March 2026, renewing for one year at a time. Annual premium: 118.40 EUR.",
        "1. Sum insured: 65,000 EUR (new value of all household contents). Protection against underinsurance applies.",
        "2. Insured perils: fire, lightning, explosion, burglary and robbery, vandalism after a burglary, tap water, storm and hail.",
        "3. Deductible: 150 EUR per claim.",
        "4. Bicycles: theft of bicycles is covered up to 1,000 EUR per bicycle.",
        "Between 22:00 and 06:00 a stolen bicycle is only covered if it was kept in a locked room.",
        "A bicycle locked outside on the street at night is not covered.",
        "5. Glass breakage is not included in this policy (optional module not taken).",
        "6. Electronic devices (laptops, phones) are covered at home against the perils above, not against accidental damage.",
        "7. Valuables (jewellery, cash, securities) are covered up to 20% of the sum insured; cash only up to 1,500 EUR.",
        "8. In the event of a claim, report burglary and theft to the police immediately and send us the list of stolen items.",
        "Claims hotline: 040 8899 7700 (24 hours). Online: hanseschutz.example/claims.",
    ])
    c.q("Is my bike insured if it gets stolen overnight from a locked basement?",
        "pdf/insurance/household-policy-HP-77120934.pdf",
        "only covered if it was kept in a locked room", "paraphrase")
    c.q("household insurance sum insured HP-77120934", "pdf/insurance/household-policy-HP-77120934.pdf",
        "Sum insured: 65,000 EUR", "keyword")

    c.pdf("pdf/manuals/dishwasher-quick-guide.pdf", "SMV4 series fully integrated dishwasher - Quick guide", [
        "Programmes: Eco 50 (3:45 h, lowest energy), Auto 45-65, Intensive 70, Quick 45, Pre-rinse.",
        "Salt: fill the softener with special dishwasher salt when the salt indicator lights up. Water hardness in Berlin: 15 to 20 dH, set level H4.",
        "Rinse aid: refill when the indicator lights up. Dosage level 5 of 6.",
        "Error codes:",
        "E15 - water in the base pan, the anti-flood system is active. Switch off, disconnect, tilt carefully and call customer service.",
        "E24 - water does not drain. Clean the filter and check the drain hose for kinks.",
        "E25 - the drain pump is blocked, e.g. by a piece of glass. Remove the pump cover below the filter.",
        "E22 - filters are blocked. Clean the filter system.",
        "Cleaning the filter: turn the filter cylinder anticlockwise, lift it out, rinse under running water, reinsert and turn clockwise until it clicks. Do this every two weeks.",
        "Customer service: 0911 70 440 040, have the E-Nr and FD number from the door edge ready.",
    ])
    c.q("The dishwasher is full of dirty water at the end and won't empty, what do I check?",
        "pdf/manuals/dishwasher-quick-guide.pdf", "Clean the filter and check the drain hose for kinks", "paraphrase")

    c.pdf("pdf/work/atlas-architecture-v3.pdf", "Atlas analytics platform - Architecture overview v3", [
        "Status: approved, 2 September 2025. Authors: Jing Chen, Priya Raman. Reviewers: Tom Richter, Marco Bianchi.",
        "1. Purpose",
        "Atlas collects product usage events from customer applications, aggregates them and serves dashboards and exports. This document describes the components after the 2025 redesign and the decisions behind them.",
        "2. Ingestion",
        "Customer SDKs send batches of events over HTTPS to the collector service, which validates the schema, stamps the arrival time and writes to the broker topic atlas.raw.events (16 partitions, keyed by customer id). The kestrel-consumer service reads from the broker, enriches events with account data from the metadata database and writes them to the columnar store in one-minute files.",
        "The consumer is stateless; it commits broker offsets only after a file is durably written, so a crash replays at most one minute of events. Duplicates are removed by event id at query time.",
        "3. Storage",
        "Raw events are kept for 400 days in the columnar store, partitioned by customer and day. Aggregates (hourly and daily) are kept for five years. Deleting a customer removes their partitions within 30 days, as agreed in the data processing agreement.",
        "The metadata database (accounts, dashboards, permissions) is PostgreSQL, one primary and one read replica, backed up every night with point-in-time recovery for 14 days.",
        "4. Query",
        "The query service translates dashboard queries into scans over the columnar files, with a cache of recent results keyed by query hash and data version. p95 latency target: 800 ms for a 30-day dashboard.",
        "5. Decisions",
        "We considered a managed streaming database and rejected it because of the cost at our volume (about 2.1 billion events per day) and because customers in the EU require the data to stay in our own Frankfurt region.",
        "We keep one broker cluster for all customers; the noisy-neighbour risk is handled by per-customer rate limits at the collector (default 5,000 events per second).",
        "6. Open questions",
        "Whether to move the exports to the query service (ticket ATLAS-1250) and how to version the event schema when customers change their SDK.",
    ])
    c.q("How long are raw events retained in Atlas?", "pdf/work/atlas-architecture-v3.pdf",
        "Raw events are kept for 400 days", "keyword")
    c.q("why didn't we go with a hosted streaming database for the analytics platform",
        "pdf/work/atlas-architecture-v3.pdf", "rejected it because of the cost at our volume", "paraphrase")

    c.pdf("pdf/travel/ryokan-reservation.pdf", "Reservation confirmation - Yoshida-sanso, Kyoto", [
        "Guest: CHEN Jing, 2 adults and 1 child (9 years). Reservation number YS-251014-0087.",
        "Stay: 14 October 2025 to 19 October 2025 (5 nights), Japanese-style room with garden view, private bath.",
        "Meals: breakfast every day; kaiseki dinner on 14 and 17 October, served in the room at 18:30.",
        "Check-in from 15:00 to 19:00. Please tell us if you arrive later. Check-out until 10:00.",
        "Cancellation policy: free of charge until 7 days before arrival; 50% of the room charge from 6 days before arrival; 100% on the day of arrival or no-show.",
        "Total: 312,000 JPY including service charge and consumption tax, to be paid at the property. Kyoto accommodation tax (200 JPY per person per night) is paid separately in cash.",
        "Access: 10 minutes on foot from the Ginkakuji-michi bus stop (buses 5, 17, 100).",
    ])
    c.q("Until when could we call off the Kyoto inn without paying anything?",
        "pdf/travel/ryokan-reservation.pdf", "free of charge until 7 days before arrival", "paraphrase")

    c.pdf("pdf/health/vaccination-record-jing.pdf", "Vaccination record - Jing Chen (born 1988)", [
        "Transcribed from the yellow vaccination booklet by Dr. Lindqvist, 17 June 2025.",
        "Tetanus, diphtheria, pertussis (Boostrix): 11.03.2019. Next booster due: March 2029.",
        "Measles, mumps, rubella: 2 doses documented (childhood, China; copy of the certificate attached).",
        "Hepatitis A and B (Twinrix): 3 doses, 2014-2015, before the trip to Vietnam.",
        "COVID-19: 3 doses (2021-2022), XBB.1.5 booster 10.2023.",
        "Influenza: yearly in October; last dose 07.10.2025.",
        "Tick-borne encephalitis (FSME): not vaccinated. Recommended before holidays in southern Germany or Austria.",
    ])
    c.q("When am I due for my next lockjaw shot?", "pdf/health/vaccination-record-jing.pdf",
        "Next booster due: March 2029", "paraphrase")

    for month, net, gross, bonus in (("September", "3,838.40", "5,950.00", ""), ("October", "3,842.17", "5,950.00", "")):
        c.pdf("pdf/finance/payslip-2025-%s.pdf" % ("09" if month == "September" else "10"),
              "Kestrel Analytics GmbH - Payslip %s 2025" % month, [
                  "Employee: Jing Chen, personnel number 10473, tax class IV, church tax: no.",
                  "Gross salary %s: %s EUR" % (month, gross),
                  "Income tax: 1,041.58 EUR. Solidarity surcharge: 0.00 EUR.",
                  "Health insurance (TK, employee share incl. supplement): 512.33 EUR. Long-term care: 106.80 EUR. Pension insurance: 553.35 EUR. Unemployment insurance: 77.35 EUR.",
                  "Deduction Deutschlandticket Job: 0.00 EUR (fully paid by employer).",
                  "Net pay %s: %s EUR, transferred to DE89 3704 **** **** **** 4410." % (month, net),
              ])
    c.q("What was my net pay in October 2025?", "pdf/finance/payslip-2025-10.pdf",
        "Net pay October: 3,842.17 EUR", "keyword")

    c.pdf("pdf/work/travel-expense-policy-2025.pdf", "Kestrel Analytics - Travel and expense policy 2025", [
        "Applies to all employees of Kestrel Analytics GmbH from 1 January 2025.",
        "1. Booking. Book trains and flights through the travel portal. Trains in second class; first class only for journeys over four hours. Flights only if the train takes more than six hours.",
        "2. Hotels. Up to 140 EUR per night including breakfast; in Munich, Hamburg and Frankfurt during trade fairs up to 190 EUR.",
        "3. Meals. Per diem for trips within Germany: 28 EUR for a full day of 24 hours, 14 EUR for arrival and departure days and for trips over 8 hours. If breakfast is included in the hotel, 5.60 EUR is deducted; for lunch or dinner provided, 11.20 EUR each.",
        "4. Abroad. Per diems abroad follow the official country table of the Federal Ministry of Finance.",
        "5. Claims. Submit expenses within three months with receipts in the expense tool. Alcohol is only reimbursed at customer dinners approved by a director.",
    ])
    c.q("How much can I claim for food per day on a full-day business trip in Germany?",
        "pdf/work/travel-expense-policy-2025.pdf", "28 EUR for a full day of 24 hours", "paraphrase")

    c.pdf("pdf/home/rental-agreement-excerpt.pdf", "Residential lease (excerpt) - Knobelsdorffstrasse 41", [
        "Landlord: Koehler Immobilien GmbH, represented by Juergen Koehler. Tenants: Jing Chen and Alex Brenner.",
        "Section 1. The flat on the 3rd floor right (3 rooms, kitchen, bathroom, balcony, 86 square metres) and cellar room no. 9 are let for residential use from 1 August 2019.",
        "Section 3. The tenancy is for an indefinite period.\nThe tenant may terminate with a notice period of three months, in writing, by the third working day of a month.",
        "Section 4. Rent: 1,050 EUR net plus 330 EUR advance payment for operating costs, due in advance by the third working day of each month.",
        "Section 5. Deposit: three months' net rent (3,150 EUR), paid into a rent deposit account.",
        "Section 9. Keeping small animals (cats, rabbits) is allowed; dogs need the landlord's written consent.",
        "Section 12. Cosmetic repairs: the tenant is not obliged to renovate when moving out; the flat was handed over unrenovated.",
        "Section 14. Quiet hours from 22:00 to 6:00 and on Sundays, as set in the house rules.",
    ])
    c.q("How far ahead do we have to tell the landlord if we want to move out?",
        "pdf/home/rental-agreement-excerpt.pdf", "notice period of three months", "paraphrase")

    c.pdf("pdf/car/tuv-report-2025.pdf", "TUEV inspection report (Hauptuntersuchung)", [
        "Vehicle: Skoda Octavia Combi, registration B-KX 4471, VIN TMBJG7NX5KY0****, first registration 03/2019.",
        "Inspection date: 30.09.2025, station Berlin-Charlottenburg. Odometer: 99,120 km.",
        "Result: no defects found. Badge issued, next inspection due 09/2027.",
        "Notes: slight oil sweating at the gearbox (no defect), front brake discs at 60% (watch).",
        "Fee: 146.50 EUR including exhaust emission test.",
    ])
    c.q("When is the next TUEV due for B-KX 4471?", "pdf/car/tuv-report-2025.pdf",
        "next inspection due 09/2027", "keyword")


# ------------------------------------------------------------------------ fillers

WEATHER = [
    "Grey and drizzly all day, the kind of Berlin November that never gets properly light",
    "Cold and sunny, frost on the car windows in the morning",
    "Warm for the season, 17 degrees, people sitting outside the cafés on Klausenerplatz",
    "Storm in the night, a branch came down in the courtyard",
    "Foggy morning, cleared up by lunch",
    "First snow, nothing settled but Mia was thrilled",
    "Rain on and off, umbrellas forgotten twice",
    "Bright and windy, washing dried on the balcony in two hours",
    "Muggy and thundery in the afternoon",
    "Clear sky, minus four at night",
]
ACTIVITIES = [
    "Took Mia to swimming at the Stadtbad, she finally dives from the edge without holding her nose.",
    "Long call with Mama on WeChat video; Baba showed off his new fishing rod.",
    "Worked from home, two hours of deep work on the partitioning load test before the meetings started.",
    "Cleaned out the cellar with Alex, three bags for the BSR recycling yard and a box of baby clothes for Hannah's colleague.",
    "Walked around Lietzensee after dinner, the herons were back.",
    "Mia's friend Emilia came over, they built a cardboard castle that now occupies the living room.",
    "Went to the Turkish market at Maybachufer, bought far too many vegetables.",
    "Alex fixed the dripping bathroom tap; it took one washer and three hours.",
    "Chinese school in the morning, Mia recited a Tang poem in front of the class.",
    "Finished the slides for the team demo, practised the timing twice.",
    "Yoga class at the studio on Kantstraße, my shoulders are still complaining.",
    "Visited the Museum of Technology with Mia, she spent an hour in the Science Center Spectrum.",
    "Board games evening at Hannah's, lost at Carcassonne again.",
    "Ran 7 km along the Spree, knee was fine.",
    "Repotted the monstera, it is bigger than Mia now.",
    "Parents' evening at school: Mia is doing well in maths, needs to read more German books.",
    "Long lunch with Priya, talked about whether to stay in Berlin or move closer to her parents in London.",
    "Sorted the photo backup on the NAS, deleted 3,000 duplicates.",
    "Cycled to the office for the first time in weeks, 35 minutes door to door.",
    "Spent the afternoon at the library in the Amerika-Gedenkbibliothek with Mia, she borrowed six comics.",
    "Cooked dumplings with Mia, her folding is getting better than mine.",
    "Zoom call with the Shanghai office at 8 in the morning, the Qingniao migration is slipping again.",
    "Mia had a fever, stayed home with her, watched far too many episodes of the Octonauts.",
    "Bought a new winter jacket for Mia, the old one is a size too small already.",
    "Alex's parents came for coffee and cake, his mother brought her plum cake.",
]
MEALS = [
    "Dinner was the lentil soup from the freezer.",
    "Made tomato and egg stir-fry with rice, Mia's favourite.",
    "Ordered pizza, nobody had the energy to cook.",
    "Alex made his spaghetti carbonara, too much pepper as usual.",
    "Hot pot at home with the little electric pot, lamb and tofu skins.",
    "Leftover dumplings, pan-fried.",
    "Roast vegetables and halloumi from the tray.",
    "Tried a new Vietnamese place on Kaiserdamm, the pho was good but the portions small.",
    "Bread, cheese and a big salad, too hot to cook.",
    "Congee with century egg for breakfast, Mia refused the egg.",
]
REFLECTIONS = [
    "Need to book the dentist for myself, it has been over a year.",
    "Feeling tired this week, go to bed earlier.",
    "Good day overall. Grateful for slow evenings.",
    "Should call Wang Fang back, she messaged twice.",
    "Want to start the morning runs again once the knee allows.",
    "The work project is stressful but the team is great.",
    "Mia asked why the moon follows the car. No good answer.",
    "Remember: buy a birthday present for Frau Schulz.",
    "Too much screen time for everyone this week.",
    "Noticed I have not read anything for fun in a month.",
]


def journal(c, rng, n, start=datetime.date(2025, 8, 1), prefix="notes/journal", paragraphs=(2, 4)):
    day = start
    for _ in range(n):
        day += datetime.timedelta(days=rng.randint(1, 4))
        parts = [rng.choice(WEATHER) + "."]
        for _ in range(rng.randint(*paragraphs)):
            parts.append(" ".join(rng.sample(ACTIVITIES, rng.randint(1, 3))))
        parts.append(rng.choice(MEALS) + " " + rng.choice(REFLECTIONS))
        text = "# %s\n\n%s\n" % (day.strftime("%A, %d %B %Y"), "\n\n".join(parts))
        ext = ".md" if rng.random() < 0.7 else ".txt"
        rel = "%s/%s%s" % (prefix, day.isoformat(), ext)
        if rel not in c.kinds:
            c.note(rel, text)


PROJECTS = {
    "Borealis": "the new billing service",
    "Cedar": "the customer SSO integration",
    "Dune": "the mobile SDK rewrite",
    "Ember": "alerting and anomaly detection",
    "Fjord": "the data warehouse export",
    "Atlas": "the analytics platform",
}
PEOPLE = ["Jing", "Priya", "Tom", "Lena", "Marco", "Sarah", "Yusuf", "Anke", "Daniel", "Mei", "Olu", "Felix"]
STATUS = [
    "Load test on staging reached {n} requests per second before the connection pool ran out.",
    "{p} finished the design review; two comments about error handling still open.",
    "The release slipped by a week because the security review found an SSRF in the webhook handler.",
    "Customer pilot with {cust} started on Monday, first feedback positive.",
    "On-call was quiet, {k} pages, all of them flaky health checks.",
    "Migration of the old cron jobs to the workflow engine is {pct}% done.",
    "CI times are up to {m} minutes again; {p} will look at caching the dependency build.",
    "The vendor confirmed the API rate limit of {n} calls per minute in writing.",
    "Error rate in the EU region was 0.{k}% last week, within the SLO.",
    "Dashboard for {cust} shows gaps on two days, root cause was clock skew on one collector.",
]
DECISIONS = [
    "We keep the feature flag on for internal users only until the metrics look stable.",
    "No new dependencies without a short note in the architecture channel.",
    "We drop support for the v1 API at the end of March; customers get three reminders.",
    "Retries move into the client library instead of every service doing its own.",
    "Postmortems are reviewed in the Thursday sync, not by e-mail.",
    "The team trials two meeting-free afternoons a week (Tuesday and Thursday).",
    "Staging gets a copy of anonymised production data every Sunday.",
    "We pay for the managed certificate service instead of maintaining our own renewal scripts.",
]
TASKS = [
    "write the rollout plan", "update the runbook", "ask legal about the data retention clause",
    "benchmark the new instance type", "clean up the unused S3 buckets", "draft the customer announcement",
    "fix the flaky integration test", "prepare the demo for the all-hands", "review the on-call rota for December",
    "estimate the effort for the audit log", "pair with Lena on the schema change", "book the room for the planning day",
]
CUSTOMERS = ["Nordlicht Retail", "Hoffmann Logistik", "Brightwave Media", "Sundsvall Energi", "Pantera Games", "Medilink"]


def meetings(c, rng, n, prefix="notes/work/meetings", long=False):
    day = datetime.date(2025, 8, 4)
    for i in range(n):
        day += datetime.timedelta(days=rng.randint(1, 5))
        proj = rng.choice(sorted(PROJECTS))
        who = rng.sample(PEOPLE, rng.randint(3, 6))
        fill = lambda s: s.format(n=rng.choice([800, 1200, 2400, 5000]), p=rng.choice(who), cust=rng.choice(CUSTOMERS),
                                  k=rng.randint(1, 9), pct=rng.choice([40, 55, 70, 90]), m=rng.choice([18, 25, 31]))
        status = [fill(s) for s in rng.sample(STATUS, rng.randint(2, 5 if long else 3))]
        decisions = rng.sample(DECISIONS, rng.randint(1, 3 if long else 2))
        actions = ["- %s: %s by %s" % (rng.choice(who), t, (day + datetime.timedelta(days=rng.randint(3, 20))).strftime("%d %B"))
                   for t in rng.sample(TASKS, rng.randint(2, 5 if long else 4))]
        body = "# %s sync, %s\n\nTopic: %s.\nPresent: %s\n\n## Status\n%s\n\n## Decisions\n%s\n\n## Action items\n%s\n" % (
            proj, day.strftime("%d %B %Y"), PROJECTS[proj], ", ".join(who),
            "\n".join("- " + s for s in status), "\n".join("- " + s for s in decisions), "\n".join(actions))
        if long:
            body += "\n## Notes\n\n" + " ".join(fill(s) for s in rng.sample(STATUS, 4)) + "\n"
        rel = "%s/%s-%s-sync.md" % (prefix, day.isoformat(), proj.lower())
        if rel not in c.kinds:
            c.note(rel, body)


RECIPES = {
    "Chickpea curry": ("2 tins chickpeas, 1 tin coconut milk, onion, garlic, ginger, 2 tbsp curry paste, spinach",
                       "Fry onion, garlic and ginger, add the paste for a minute, then chickpeas and coconut milk. Simmer 15 minutes, stir in the spinach. Rice or naan."),
    "Mushroom risotto": ("300 g risotto rice, 400 g brown mushrooms, 1 l stock, shallot, white wine, parmesan, butter",
                         "Brown the mushrooms first and set aside. Toast the rice with the shallot, wine, then stock a ladle at a time for 18 minutes. Mushrooms back in, butter and parmesan off the heat."),
    "Shakshuka": ("6 eggs, 2 tins tomatoes, 2 peppers, onion, cumin, paprika, feta, parsley",
                  "Soften onion and peppers, add spices and tomatoes, simmer 10 minutes. Make wells, crack in the eggs, lid on for 6 minutes. Feta and parsley on top."),
    "Banana bread": ("3 very ripe bananas, 250 g flour, 100 g sugar, 2 eggs, 80 g melted butter, 1 tsp baking soda, walnuts",
                     "Mash bananas, mix with eggs, sugar and butter, fold in flour and soda. Loaf tin, 175 °C for 55 minutes, skewer comes out clean."),
    "Tomato and egg stir-fry": ("4 eggs, 4 ripe tomatoes, spring onion, 1 tsp sugar, salt, a little ketchup",
                                "Scramble the eggs softly and take them out. Fry the tomatoes until they break down, sugar and salt, eggs back in. Over rice."),
    "Minestrone": ("carrot, celery, onion, courgette, 1 tin borlotti beans, small pasta, parmesan rind, tomato passata",
                   "Soffritto slowly for 10 minutes, add vegetables, passata, water and the rind, simmer 30 minutes. Pasta and beans for the last 10."),
    "Pancakes (Mia's Saturday ones)": ("200 g flour, 300 ml milk, 2 eggs, 1 tbsp sugar, 2 tsp baking powder, pinch of salt",
                                      "Whisk, rest 10 minutes, small ladles in the hot pan with a little butter, flip when bubbles appear. Blueberries and maple syrup."),
    "Dal tadka": ("250 g yellow lentils, turmeric, tomato, ghee, cumin seeds, mustard seeds, garlic, dried chilli",
                  "Boil the lentils with turmeric until soft. Tadka: ghee, seeds, garlic and chilli until fragrant, pour over the dal."),
    "Apple crumble": ("1 kg apples, lemon, cinnamon, 150 g flour, 100 g cold butter, 80 g brown sugar, oats",
                      "Apples in slices with lemon and cinnamon in the dish. Rub butter into flour, sugar and oats, scatter over. 190 °C for 35 minutes."),
    "Soy-marinated eggs": ("6 eggs, 100 ml soy sauce, 100 ml mirin, 200 ml water, sugar",
                           "Boil eggs 6 minutes 30, ice bath, peel. Marinate in the cooled mixture overnight in a freezer bag."),
    "Granola": ("400 g oats, 100 g nuts, 50 g seeds, 80 ml oil, 100 ml maple syrup, cinnamon, salt",
                "Mix everything, spread on two trays, 160 °C for 25 minutes, stir halfway. Let it cool on the tray for clusters."),
    "Roast chicken": ("1 chicken (1.6 kg), lemon, garlic, thyme, butter, potatoes",
                      "Dry the skin, salt the day before. Butter under the skin, lemon and garlic inside. 220 °C for 20 minutes, then 190 °C for 50 minutes, rest 15."),
    "Scallion pancakes": ("300 g flour, 180 ml hot water, spring onions, oil, salt, five-spice",
                          "Hot water dough, rest 30 minutes. Roll thin, oil, salt and scallions, roll up into a snail, flatten, pan-fry both sides until crisp."),
}


def recipes(c, rng):
    for name, (ingredients, method) in sorted(RECIPES.items()):
        slug = re.sub(r"[^a-z]+", "-", name.lower()).strip("-")
        serves = rng.choice([2, 3, 4, 6])
        note = rng.choice(["Mia approved.", "Alex wants more chilli next time.", "Freezes well.",
                           "From the cookbook Hannah gave us.", "Good for guests, easy to scale up.", "Double it, it goes fast."])
        if rng.random() < 0.5:
            c.note("notes/recipes/%s.md" % slug, "# %s\n\nServes %d.\n\n## Ingredients\n\n%s\n\n## Method\n\n%s\n\n%s\n" % (
                name, serves, "\n".join("- " + i.strip() for i in ingredients.split(",")), method, note))
        else:
            c.note("notes/recipes/%s.txt" % slug, "%s (serves %d)\n\n%s\n\n%s\n%s\n" % (name, serves, ingredients, method, note))


def workouts(c, rng, n):
    day = datetime.date(2025, 8, 2)
    for _ in range(n):
        day += datetime.timedelta(days=rng.randint(3, 8))
        kind = rng.choice(["run", "run", "swim", "strength", "bike"])
        if kind == "run":
            km = rng.choice([5.2, 6.0, 7.4, 8.1, 10.0, 12.3])
            pace = rng.choice(["5:32", "5:48", "6:05", "6:20"])
            body = "Run %.1f km, avg pace %s/km, avg HR %d. Route: %s. %s" % (
                km, pace, rng.randint(140, 162), rng.choice(["Spree loop", "Schlosspark Charlottenburg", "Grunewald lakes", "Tiergarten"]),
                rng.choice(["Knee fine.", "Legs heavy.", "Felt great, negative split.", "Windy on the way back."]))
        elif kind == "swim":
            body = "Swim %d m at the Stadtbad, %s. %s" % (rng.choice([1000, 1500, 2000]), rng.choice(["mostly crawl", "intervals 10 x 100", "pull buoy sets"]),
                                                         rng.choice(["Lane was crowded.", "Good technique day.", "Shoulder a bit stiff."]))
        elif kind == "bike":
            body = "Bike %d km to %s and back, %s." % (rng.choice([35, 48, 62]), rng.choice(["Potsdam", "Wannsee", "Spandau citadel"]), rng.choice(["headwind home", "perfect weather", "flat tyre on the way back"]))
        else:
            body = "Strength: squats 4 x 8 at %d kg, Romanian deadlifts 3 x 10, push-ups 3 x 15, plank 3 x 60 s. %s" % (
                rng.choice([40, 45, 50]), rng.choice(["Knee ok with squats to parallel.", "Tired, cut the last set.", "New best on squats."]))
        c.note("notes/training/%s-%s.txt" % (day.isoformat(), kind), "%s\n\n%s\n" % (day.isoformat(), body))


def expenses(c, rng):
    shops = [("REWE", "groceries"), ("dm", "drugstore"), ("Lidl", "groceries"), ("BVG", "transport"), ("Bauhaus", "home"),
             ("Apotheke am Lietzensee", "pharmacy"), ("Asia Markt Kantstraße", "groceries"), ("Dussmann", "books"),
             ("Decathlon", "sport"), ("Bäckerei Siebert", "bakery")]
    for month in range(7, 13):
        lines = []
        for day in sorted(rng.sample(range(1, 29), 12)):
            shop, cat = rng.choice(shops)
            lines.append("2025-%02d-%02d  %-24s %-10s %7.2f" % (month, day, shop, cat, rng.uniform(3, 140)))
        c.note("notes/finance/expenses-2025-%02d.txt" % month, "Expenses %s 2025 (card and cash)\n\n%s\n" % (
            datetime.date(2025, month, 1).strftime("%B"), "\n".join(lines)))


def misc_notes(c):
    c.note("notes/people/gift-ideas.txt", """
        Gift ideas

        Alex: new bike lights, the Rodinal book, a day of climbing at Berta Block.
        Mama: a good massage cushion, photo book of the Japan trip.
        Baba: the Leica binoculars he keeps looking at (too expensive?), Longjing is pointless, he has plenty.
        Mia: Lego Friends treehouse, a real watercolour set, the third Ottolenghi children's book?
        Frau Schulz: orchid, chocolates from Rausch.
        """)
    c.note("notes/work/conference-talk-ideas.txt", """
        Talk ideas for next year

        1. "Exactly-once is a lie, at-least-once plus dedup is the truth" - the Atlas consumer story.
        2. Partitioning by customer id: noisy neighbours and what rate limits can and cannot fix.
        3. Running Postgres upgrades without downtime on a small team.
        CfP deadlines: FOSDEM data devroom early December, Berlin Buzzwords February.
        """)
    c.note("notes/learning/chinese-for-mia.md", """
        # Chinese homework plan for Mia

        Weekly: 10 new characters from the textbook (三年级上册), dictation on Sunday evening,
        one picture book read aloud with Mama on video. Apps: only the flashcards one, 15 minutes.
        She mixes up 买 and 卖 — the trick: 卖 has 十 on top, you sell what you have more of.
        Teacher Wang says her speaking is excellent, writing needs practice.
        """)
    c.note("notes/home/cleaning-rota.md", """
        # Cleaning rota

        - Jing: kitchen, fridge once a month, plants
        - Alex: bathroom, floors (vacuum robot runs Mon/Thu), bins
        - Mia: her room on Saturday morning, sets the table, feeds Luna in the morning
        Windows: spring and autumn, we pay the window cleaner (80 EUR).
        """)
    c.note("notes/work/interview-notes-backend.md", """
        # Backend interviews, October

        Candidate A (Oct 7): strong on SQL and indexing, weaker on distributed systems. Hire for the
        API team, not for ingest.
        Candidate B (Oct 9): designed a rate limiter with a token bucket in Redis, handled the
        failure questions well. Strong hire.
        Candidate C (Oct 15): good communicator, but the coding exercise was not finished. No hire.
        """)
    c.note("notes/home/moving-boxes.txt", """
        Cellar inventory (after the clean-up)

        Box 1: Christmas decorations, the paper stars.
        Box 2: Mia's baby clothes (0-2 years), keep for Hannah's colleague.
        Box 3: camping cooking gear.
        Box 4: Alex's old vinyl, do NOT throw away.
        Box 5: tax documents 2018-2022 (keep 10 years).
        Ski stuff on the shelf above.
        """)


NEWSLETTERS = [
    ("Berliner Bäder", "news@berlinerbaeder.example", "Winter opening hours at your pool",
     "From 1 November the Stadtbad Charlottenburg opens at 6:30 on weekdays. Sauna evenings every Friday until 22:00. Family swimming on Sundays 10:00 to 14:00 with inflatables."),
    ("Stadtbibliothek", "noreply@voebb.example", "Reminder: 2 items due soon",
     "Two items on your card are due in three days: 'Die drei ??? Kids 12' and 'The Bad Guys'. You can renew online up to four times unless someone has reserved them."),
    ("GitHub", "notifications@github.example", "[kestrel/atlas] PR #482 merged: Backoff on broker reconnect",
     "Merged #482 into main. The consumer now backs off exponentially (100 ms to 30 s) when the broker connection drops, instead of reconnecting in a tight loop."),
    ("Deutsche Bahn", "buchungsbestaetigung@bahn.example", "Your journey on 22 October: Berlin - Konstanz",
     "ICE 1003 Berlin Hbf 06:29 - Frankfurt 10:31, IC 2005 Frankfurt 10:58 - Konstanz 15:15. Seat reservation car 25, seat 71. Price 89.90 EUR (Flexpreis, refundable)."),
    ("Your Bank", "service@bank.example", "Your new debit card is on its way",
     "Your new debit card ending in 4821 was sent today. It will arrive within 5 working days; the PIN stays the same. Please destroy the old card after the first payment with the new one."),
    ("Kestrel People Team", "people@kestrel-analytics.example", "Open enrolment: company pension and bike leasing",
     "Until 30 November you can change your contribution to the company pension scheme and order a lease bike for 2026 (up to 8,000 EUR list price, deducted from gross salary)."),
    ("Berlin Philharmonie", "newsletter@philharmonie.example", "Family concerts in December",
     "The family concert 'The Nutcracker for children' takes place on 14 and 15 December at 11:00. Tickets 12 EUR for children, 24 EUR for adults."),
    ("CloudNest", "billing@cloudnest.example", "Your storage is 91% full",
     "Your Family 2 TB plan is 91% full. Upgrade to 5 TB for 9.99 EUR more per month, or clean up large files in the web app under Storage."),
    ("Recruiter", "talent@headhunt.example", "Staff engineer role at a Series C fintech",
     "I came across your profile and think you would be a great fit for a Staff Engineer role building payment infrastructure. Fully remote within the EU, salary up to 120k. Would you have 15 minutes this week?"),
    ("Security", "no-reply@accounts.example", "Password reset requested",
     "Someone asked to reset the password for your account. If this was you, use the code 448291 within 10 minutes. If not, you can ignore this message."),
    ("Grundschule Westend", "sekretariat@grundschule-westend.example", "School newsletter November",
     "Lantern walk on 11 November at 17:00 from the school yard. Book fair in the assembly hall from 17 to 19 November. The school is closed on 21 November for teacher training."),
    ("Hannah Lorenz", "hannah.lorenz@mailbox.example", "Re: baby clothes",
     "Thank you so much for the box of baby clothes! My colleague was so happy. She says the little yellow raincoat is the cutest thing she has ever seen."),
    ("Marco Bianchi", "marco.bianchi@kestrel-analytics.example", "Legacy export users",
     "Customer success went through the list: only four customers still use the legacy export, and three of them are fine with moving to the CSV export in January. Medilink needs a custom field mapping first."),
    ("Yusuf Demir", "yusuf.demir@kestrel-analytics.example", "Load test results",
     "Ran the load test on the new partitioning scheme overnight: 5,200 events per second per partition before the consumers saturated, versus 3,100 with the old scheme. Graphs in the wiki."),
    ("Paketdienst", "info@paketdienst.example", "Your parcel was delivered to a neighbour",
     "Your parcel was handed to your neighbour Schulz, Knobelsdorffstraße 41. Please collect it there."),
    ("Apotheke am Lietzensee", "bestellung@apotheke-lietzensee.example", "Your order is ready for pick-up",
     "Your order (cetirizine 10 mg, 100 tablets; vitamin D3 1000 IU) is ready for pick-up until Saturday."),
    ("Sarah Koch", "sarah.koch@kestrel-analytics.example", "Offsite dinner: allergies?",
     "Hi all, for the Thursday dinner in Konstanz please tell me about allergies and dietary needs by Friday. So far: 3 vegetarian, 1 vegan, 1 gluten-free."),
    ("Kita Sonnenblume", "leitung@kita-sonnenblume.example", "Thank you for the summer party",
     "Thank you to all families for the summer party! The cake sale made 412 EUR for the new climbing frame. The focaccia was the first thing to go."),
    ("Energy Comparison", "deals@compare.example", "Save up to 300 EUR on your energy bill",
     "Compare electricity and gas tariffs in your area and switch in five minutes. Our customers save 300 EUR a year on average."),
    ("Alex Brenner", "alex.brenner@posteo.example", "Winter tyres",
     "Booked the tyre change at the dealer for 28 November at 16:00, storage number 7731. I'll drop the car off on the way from work."),
]

ZH_FILLERS = [
    ("妈妈", "chen.mama@163.example", "今天降温了", "utf-8", "base64",
     "杭州今天突然降温了，最低只有五度。你爸今天去钓鱼，一条也没钓到。你们柏林冷不冷？米娅的秋裤穿上没有？"),
    ("当当书店", "service@dangdang.example", "双十一图书满100减50", "gb2312", "base64",
     "亲爱的会员：双十一图书专场满100减50，童书每满200再减30，活动时间11月1日至11月11日。点击进入会员中心领取优惠券。"),
    ("陈琳", "chenlin.sister@126.example", "外婆的照片", "utf-8", "quoted-printable",
     "姐，发几张外婆过生日的照片给你，她今年八十五岁了，精神很好，吃了两块蛋糕。她一直问米娅什么时候回来。"),
    ("中国银行", "notice@boc.example", "您的信用卡账单已出", "gb18030", "base64",
     "尊敬的客户：您尾号3356的信用卡本期账单已出，账单金额1,286.50元，最后还款日为12月5日。如已还款请忽略此通知。"),
    ("王芳", "wangfang.sh@qq.example", "回复：周末视频", "gbk", "quoted-printable",
     "好呀，这周六晚上八点（北京时间）视频吧，那时候你们是下午一点。我家小宝最近学会了骑自行车，给你看视频！"),
    ("柏林华人协会", "info@huaren-berlin.example", "中秋联欢晚会报名", "utf-8", "base64",
     "柏林华人协会将于9月27日在夏洛滕堡区文化中心举办中秋联欢晚会，有舞狮、猜灯谜和月饼品尝，成人票15欧元，儿童免费。请在9月20日前报名。"),
    ("李浩", "lihao1988@sina.example", "老照片征集", "gbk", "base64",
     "大家好，聚会要做一个老照片展示，请有高中时候照片的同学扫描以后发给我，特别是运动会和毕业旅行的照片。谢谢！"),
    ("携程旅行", "noreply@ctrip.example", "机票特价提醒", "utf-8", "quoted-printable",
     "您关注的航线法兰克福—上海有特价：2026年2月出发，往返含税价4,980元起，数量有限，先到先得。"),
    ("爸爸", "chen.jianhua@qq.example", "回复：包裹收到了吗", "gb2312", "base64",
     "包裹邮局显示已经到德国了，在海关。如果海关要交税，你就交了，不贵的话没关系。腊肠如果被没收了也不要紧。"),
    ("陈琳", "chenlin.sister@126.example", "爸爸开始吃降压药了", "utf-8", "base64",
     "姐，告诉你一声，爸爸血压一直没降下来，医生给他开了降压药，每天早上一片。他现在每天晚上跟我妈出去散步半小时，酒也少喝了。"),
]


def filler_mail(c):
    for i, (name, addr, subject, body) in enumerate(NEWSLETTERS):
        date = d(2025, 8 + i * 4 // len(NEWSLETTERS), 1 + (i * 7) % 27, 7 + i % 12, (i * 13) % 60)
        cte = ["quoted-printable", "base64", "7bit", "8bit"][i % 4]
        if cte == "7bit" and any(ord(ch) > 127 for ch in body + subject):
            cte = "quoted-printable"
        body_full = "Hello,\n\n%s\n\n%s\n" % (body, name)
        c.eml("mail/%s-%s.eml" % (date.date().isoformat(), re.sub(r"[^a-z0-9]+", "-", subject.lower()).strip("-")[:40]),
              Mail((name, addr), JING, date, subject, body_full, cte=cte, alt_html=(i % 3 == 0)))
    for i, (name, addr, subject, charset, cte, body) in enumerate(ZH_FILLERS):
        date = d(2025, 9 + i * 3 // len(ZH_FILLERS), 2 + (i * 5) % 26, 8 + i, (i * 17) % 60, TZ_CHINA)
        c.eml("mail/zh/%s-%02d.eml" % (date.date().isoformat(), i),
              Mail((name, addr), JING, date, subject, body + "\n", charset=charset, cte=cte, alt_html=(i % 4 == 1)))


def filler_pdfs(c, rng):
    receipts = [
        ("Bauhaus Berlin-Charlottenburg", "2025-10-04", [("Wall plugs 6 mm (100)", 4.99), ("Silicone sanitary white", 7.49), ("Tap washer set", 3.29), ("Masking tape", 2.99)]),
        ("Apotheke am Lietzensee", "2025-10-21", [("Cetirizine 10 mg 100 tbl", 12.95), ("Vitamin D3 1000 IU 120 caps", 9.80), ("Plasters kids", 4.20)]),
        ("Decathlon Schoeneweide", "2025-11-01", [("Microspikes size L", 34.99), ("Headlamp 200 lm", 19.99), ("Merino beanie", 14.99)]),
        ("Dussmann das KulturKaufhaus", "2025-11-15", [("The Overstory (paperback)", 14.00), ("Atlas of Remote Islands", 22.00), ("Watercolour set 24", 18.50)]),
        ("Fahrradladen Westend", "2025-09-12", [("Inner tube 28 inch", 6.50), ("Brake pads (pair)", 11.90), ("Labour 30 min", 25.00)]),
    ]
    for shop, date, items in receipts:
        total = sum(p for _, p in items)
        lines = ["%s  %.2f EUR" % (n, p) for n, p in items]
        c.pdf("pdf/receipts/%s-%s.pdf" % (date, re.sub(r"[^a-z]+", "-", shop.lower()).strip("-")[:24]), "Receipt - %s" % shop, [
            "Date: %s. Receipt no. %d." % (date, rng.randint(10000, 99999)),
            "\n".join(lines),
            "Total: %.2f EUR, incl. VAT 19%%: %.2f EUR. Paid by card (girocard)." % (total, total * 19 / 119),
            "Thank you for your visit. Exchange within 30 days with receipt.",
        ])
    c.pdf("pdf/school/school-supplies-grade-4.pdf", "Grundschule Westend - School supplies, grade 4", [
        "Please buy the following for the new school year and label everything with your child's name:",
        "2 exercise books A4 lined (grade 4), 2 squared (grade 4), 1 homework diary, fountain pen and cartridges, 12 coloured pencils, glue stick, scissors, ruler 30 cm, set square, compass.",
        "Workbook maths: Zahlenbuch 4 (14.50 EUR), to be paid to the class teacher in the first week.",
    ])


def filler_pages(c):
    c.page("web/saved/sleep-for-kids.html", "How much sleep does a 9-year-old need?", [
        "Children aged 6 to 12 need 9 to 12 hours of sleep a night, according to the paediatric sleep societies.",
        "Screens in the hour before bed delay falling asleep; the blue light matters less than the excitement of the content.",
        "A fixed bedtime, also at weekends within an hour, is the single most effective habit.",
    ])
    c.page("web/saved/budgeting-50-30-20.html", "The 50/30/20 budget, explained", [
        "Split your net income: 50 % for needs (rent, groceries, insurance), 30 % for wants, 20 % for saving and paying off debt.",
        "In expensive cities rent alone can exceed half of the income; then the rule becomes a direction rather than a target.",
        "Automate the saving part on payday with a standing order, so it never sits in the current account.",
    ])
    c.page("web/saved/berlin-playgrounds.html", "The best playgrounds in Charlottenburg", [
        "The pirate ship playground in the Lietzenseepark is the favourite of the under-tens, with a rope bridge and a sandpit with water pump.",
        "Klausenerplatz has table tennis and a large climbing net; the café on the corner has ice cream.",
        "In the Schlosspark, playing on the lawns is not allowed, but the playground at the Spandauer Damm entrance is shaded all afternoon.",
    ])
    c.page("web/bookmarks.html", "Bookmarks", [
        "Work: Grafana Atlas ingest, Confluence on-call, the architecture decision records, the incident template.",
        "Home: Hausverwaltung portal, BVG trip planner, Stadtbibliothek account, school parent portal.",
        "Reading: the cast iron article, the heat pump FAQ, Kyoto temples without crowds.",
    ])
    c.page("web/saved/zh-jiating-jiaoyu.html", "海外华人家庭怎样让孩子坚持学中文", [
        "很多在海外长大的孩子到了十岁左右就不愿意说中文了。专家建议父母在家里坚持说中文，并且给孩子创造使用中文的机会。",
        "每周固定和国内的爷爷奶奶视频，让孩子用中文讲自己的生活，是非常有效的方法。",
        "不要只强调写字，阅读有趣的中文绘本和漫画更能保持兴趣。",
    ], lang="zh")


def bulk(c, rng, n):
    """Longer filler notes for a large store (latency runs)."""
    per = max(1, n // 2)
    journal(c, rng, per, start=datetime.date(2018, 1, 1), prefix="bulk/journal", paragraphs=(4, 9))
    done = sum(1 for r in c.kinds if r.startswith("bulk/"))
    k = 0
    while done < n:
        before = len(c.kinds)
        meetings(c, random.Random(rng.random() + k), 1, prefix="bulk/meetings/%03d" % (k // 50), long=True)
        done += len(c.kinds) - before
        k += 1


def latency_queries(c, rng):
    qs = [q["q"] for q in c.questions]
    templates = [
        "what did we decide about {proj}", "{proj} action items", "{person} said about the load test",
        "recipe with {ing}", "how long to bake the {dish}", "{cust} pilot feedback", "run in the {place}",
        "when is {person}'s birthday", "invoice {month}", "how much did I spend at {shop}", "Mia {thing}",
        "{proj} release slipped", "{person} action item", "rate limit of the vendor API",
    ]
    fills = {
        "proj": sorted(PROJECTS), "person": PEOPLE, "ing": ["chickpeas", "lentils", "eggs", "mushrooms", "apples", "coconut milk"],
        "dish": ["banana bread", "apple crumble", "focaccia", "roast chicken", "granola"], "cust": CUSTOMERS,
        "place": ["Grunewald", "Tiergarten", "Schlosspark"], "month": ["September", "October", "November"],
        "shop": ["REWE", "dm", "Bauhaus", "Decathlon", "Dussmann"], "thing": ["swimming", "Chinese school", "dentist", "school trip", "fever"],
    }
    zh = ["外婆的生日", "春节机票", "租客刘先生", "同学聚会报名", "青鸟项目进度", "爸爸的降压药", "中秋联欢晚会", "信用卡账单", "米娅的中文作业", "包裹到了吗"]
    while len(qs) < 240:
        t = rng.choice(templates)
        qs.append(re.sub(r"\{(\w+)\}", lambda m: rng.choice(fills[m.group(1)]), t))
        if len(qs) % 9 == 0:
            qs.append(rng.choice(zh))
    return qs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", help="output directory (its corpus/, expected/ and files are replaced)")
    ap.add_argument("--bulk", type=int, default=0, help="extra long filler notes under corpus/bulk/")
    ap.add_argument("--seed", type=int, default=7, help="seed of the fillers (default 7)")
    a = ap.parse_args()
    out = Path(a.out)
    for sub in ("corpus", "expected"):
        shutil.rmtree(out / sub, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    c = Corpus(out)
    rng = random.Random(a.seed)
    anchor_notes(c)
    anchor_pages(c)
    anchor_mail_en(c)
    anchor_mail_zh(c)
    anchor_mbox(c)
    anchor_pdfs(c)
    misc_notes(c)
    journal(c, rng, 58)
    meetings(c, rng, 26)
    recipes(c, rng)
    workouts(c, rng, 14)
    expenses(c, rng)
    filler_mail(c)
    filler_pdfs(c, rng)
    filler_pages(c)
    if a.bulk:
        bulk(c, random.Random(a.seed + 1), a.bulk)
    c.check()
    m = c.save(latency_queries(c, random.Random(a.seed + 2)))
    print("%d files, %d documents, %d questions %s, %.1f MB -> %s" % (
        m["files"], m["documents"], m["questions"], json.dumps(m["questions_by_type"], sort_keys=True),
        m["bytes"] / 1e6, out))


if __name__ == "__main__":
    main()
