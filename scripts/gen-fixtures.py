#!/usr/bin/env python3
"""Generates the llama.cpp reference fixtures under tests/fixtures/.

Run `make fixtures` (which builds llama.cpp with scripts/build-llama-cpp.sh and runs
this with the llama-cpp-python 0.3.36 sources of that build on PYTHONPATH). The fixtures
are committed; tests never need llama.cpp.

- tokenizer/<model>.json: token ids from llama.cpp's tokenizer (llama_tokenize) for a
  varied corpus, with and without special-token parsing and BOS, plus llama.cpp's
  detokenization of those ids.
- reference/<model>.json: for each prompt, the prompt's token ids, llama.cpp's greedy
  continuation (32 tokens, argmax of the logits, stopping after an end-of-generation
  token), and per generated position the top-8 logits (id and value), so tests can
  check agreement and show whether a divergence is a near-tie. Chat prompts also
  record the messages and the prompt rendered by Python's Jinja2 from the model's
  tokenizer.chat_template, the reference for Flurry's minijinja rendering.
"""
import json
import os
import sys

import jinja2
import numpy as np
from llama_cpp import Llama

MODELS = os.environ.get("FLURRY_MODELS", os.path.expanduser("~/.flurry/models"))
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")
N_GEN = 32
TOP_K = 8

CORPUS = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    " leading space and trailing space ",
    "I'm sure you'll see they've done what we'd said, isn't it? She's here. LET'S GO",
    "Numbers: 1234567890, 3.14159, -42, 1e10, 2026-11-28 and 007.",
    "a  b   c    d\t\te\n\nf\n\n\n   g \n",
    "    indented\n        more\n\ttab",
    "你好，世界！今天天气很好，我们去公园散步吧。",
    "混合 mixed 文本 text 123 中文。",
    "日本語のテキストです。カタカナとひらがな。",
    "한국어 문장입니다.",
    "Привет, как дела? Всё хорошо.",
    "مرحبا بالعالم",
    "Emoji: 😀🎉👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️ ✨",
    "café naïve résumé Ünïcödé Straße ﬁ",
    "fn main() {\n    let x: Vec<u32> = (0..10).map(|i| i * 2).collect();\n    println!(\"{:?}\", x);\n}\n",
    "def f(a, b=2, *args, **kw):\n    return {'a': a, \"b\": b}  # comment\n",
    "<html><body class=\"x\">&amp; &lt;tag&gt;</body></html>",
    "https://example.com/path?query=1&x=y#frag user@mail.org",
    "$$ \\frac{a}{b} = c^2 $$ and ∑ ∫ √ ≤ ≥ ≠ ∞",
    "!!!??? ... --- *** ### @@@ ~~~ ```code```",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "<start_of_turn>user\nWhy is the sky blue?<end_of_turn>\n<start_of_turn>model\n",
    "<s> </s> <unk> <bos> <eos> <pad> <|endoftext|>",
    "tab\tseparated\tvalues\r\nwindows line\r\n",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "                                ",
    "",
    "x",
    "The year 1999 and 2000000 and ١٢٣ and ½ ² ³",
]

RAW_PROMPTS = [
    "The capital of France is",
    "Once upon a time, in a small village,",
    "def fibonacci(n):\n",
    "1, 2, 3, 4, 5,",
    "The best way to learn a new language is",
    "Water boils at",
    "Monday, Tuesday, Wednesday, Thursday,",
    "The alphabet: A B C D E F G",
    "import numpy as np\nimport pandas as",
    "Q: What is 2 + 2?\nA:",
    "The United States of",
    "for (int i = 0; i < n; i++) {",
    "Twinkle, twinkle, little star,",
    "January, February, March, April,",
    "<html>\n<head>\n<title>",
    "The Eiffel Tower is located in",
    "10, 20, 30, 40, 50,",
    "To be or not to be,",
    "Hello, my name is",
    "The speed of light is approximately",
]
# Candidates for the "decisive" set: prompts whose greedy continuation llama.cpp takes
# without any near-tie (top-2 margin >= DECISIVE_MARGIN at all 32 positions). Greedy
# agreement on a near-tie is a coin flip for any engine that is not bit-identical with
# llama.cpp, so exact agreement is required on this set; the ordinary prompts above only
# have to diverge at near-ties. Selection uses llama.cpp's margins alone, never Flurry's.
DECISIVE_MARGIN = 0.5
DECISIVE_MAX = 15  # keep the first 15 decisive prompts (in list order) per model
DECISIVE_CANDIDATES = [
    "1, 2, 3, 4, 5, 6, 7, 8,", "2, 4, 6, 8, 10, 12,", "100, 200, 300, 400,",
    "one, two, three, four, five,", "a, b, c, d, e, f, g,", "A, B, C, D, E, F,",
    "Monday\nTuesday\nWednesday\n", "January\nFebruary\nMarch\nApril\n",
    "1. First\n2. Second\n3. Third\n4.", "Step 1:\nStep 2:\nStep 3:\n",
    "0 1 2 3 4 5 6 7 8 9 10 11", "10 9 8 7 6 5 4 3", "1\n2\n3\n4\n5\n6\n",
    "<ul>\n<li>Item 1</li>\n<li>Item 2</li>\n", "<!DOCTYPE html>\n<html>\n<head>\n",
    "#include <stdio.h>\n\nint main(", "public static void main(String[] args) {",
    "if __name__ == \"__main__\":\n", "import os\nimport sys\nimport",
    "SELECT * FROM users WHERE", "for i in range(10):\n    print(",
    "x = [1, 2, 3, 4, 5, 6,", "{\"a\": 1, \"b\": 2, \"c\": 3,",
    "The quick brown fox jumps over the", "Mary had a little lamb, its fleece was",
    "Happy birthday to you, happy birthday to you,", "Row, row, row your boat,",
    "Jack and Jill went up the", "Humpty Dumpty sat on a wall,",
    "Roses are red, violets are", "Four score and seven years ago",
    "We hold these truths to be self-evident,", "It was the best of times, it was the",
    "All work and no play makes Jack a dull boy. All work and no play makes Jack",
    "I love you. I love you. I love you. I love", "ha ha ha ha ha ha ha",
    "The cat sat on the mat. The cat sat on the mat. The cat", "abc abc abc abc abc",
    "Sunday, Monday, Tuesday,", "North, South, East,", "red, orange, yellow, green,",
    "Mercury, Venus, Earth, Mars,", "Alpha, Beta, Gamma, Delta,",
    "spring, summer, autumn,", "first, second, third, fourth,",
    "Q: What is the capital of France?\nA: Paris\nQ: What is the capital of Germany?\nA:",
    "The sum of 2 and 2 is", "H2O is the chemical formula for",
    "Lorem ipsum dolor sit amet,", "Once upon a time there was a little girl named",
    "The first president of the United States was", "Python is a programming",
    "def main():\n    pass\n\n\nif __name__ ==", "print(\"Hello, World",
    "while True:\n    ", "fn main() {\n    println!(\"Hello", "console.log(\"Hello",
    "<?php\necho \"Hello", "SELECT name, age FROM", "git commit -m \"",
    "https://www.", "Copyright (c) 20", "Licensed under the Apache License, Version",
    "Permission is hereby granted, free of charge, to any person obtaining a copy",
    "3, 6, 9, 12, 15,", "5, 10, 15, 20, 25,", "11, 12, 13, 14, 15,", "1000, 2000, 3000, 4000,",
    "1.0, 2.0, 3.0, 4.0,", "-1, -2, -3, -4,", "0, 0, 0, 0, 0,", "1, 1, 2, 3, 5, 8, 13,",
    "1 2 3 4 5 6 7", "a b c d e f g", "Z, Y, X, W, V,", "i, ii, iii, iv, v,",
    "test test test test test", "the the the the the", "no no no no no no", "x x x x x x x",
    "A A A A A A A", "yes, yes, yes, yes,", "la la la la la la", "go go go go go go",
    "1 + 1 = 2\n2 + 2 = 4\n3 + 3 = 6\n4 + 4 =", "2 x 1 = 2\n2 x 2 = 4\n2 x 3 = 6\n",
    "Q: What is 1 + 1?\nA: 2\nQ: What is 2 + 2?\nA: 4\nQ: What is 3 + 3?\nA:",
    "aa, bb, cc, dd, ee,", "AB AB AB AB AB", "1a 2b 3c 4d 5e", "10\n20\n30\n40\n",
    "#1 #2 #3 #4 #5", "item1, item2, item3,", "x1 x2 x3 x4 x5", "v1.0 v2.0 v3.0",
]

CHAT_PROMPTS = [
    [{"role": "user", "content": "What is the capital of Germany?"}],
    [{"role": "user", "content": "Write a haiku about the sea."}],
    [{"role": "system", "content": "You are a terse assistant."},
     {"role": "user", "content": "List three primary colors."}],
    [{"role": "user", "content": "Hi!"},
     {"role": "assistant", "content": "Hello! How can I help you today?"},
     {"role": "user", "content": "Tell me a fun fact about octopuses."}],
    [{"role": "user", "content": "用中文介绍一下你自己。"}],
]


def render(template, messages, bos, eos):
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)

    def raise_exception(msg):
        raise jinja2.exceptions.TemplateError(msg)

    env.globals["raise_exception"] = raise_exception
    return env.from_string(template).render(
        messages=messages, add_generation_prompt=True, bos_token=bos, eos_token=eos
    )


def main():
    models = {
        "smollm2": "SmolLM2-135M-Instruct.Q4_1.gguf",
        "gemma3": "gemma-3-270m-q4_k_m.gguf",
    }
    only = sys.argv[1:] or list(models)
    for name in only:
        path = os.path.join(MODELS, models[name])
        llm = Llama(path, n_ctx=1024, n_threads=2, n_batch=1024, logits_all=True,
                    verbose=False, seed=0)
        # Tokenizer fixture.
        cases = []
        for text in CORPUS:
            for add_special in (False, True):
                for parse_special in (False, True):
                    ids = llm.tokenize(text.encode(), add_bos=add_special, special=parse_special)
                    decoded = llm.detokenize(ids).decode("utf-8", errors="replace")
                    cases.append({"text": text, "add_special": add_special,
                                  "parse_special": parse_special, "ids": ids,
                                  "decoded": decoded})
        with open(os.path.join(OUT, "tokenizer", f"{name}.json"), "w") as f:
            json.dump({"model_file": models[name], "generator": "llama.cpp via llama-cpp-python 0.3.36 (llama_tokenize / llama_detokenize)", "cases": cases}, f, ensure_ascii=False, indent=0)

        # Greedy + logits fixture.
        meta = llm.metadata
        template = meta.get("tokenizer.chat_template")
        if not template:
            # No template in the file: Flurry falls back to a built-in one chosen by
            # architecture; the fixture uses the same file.
            fallback = "gemma.jinja" if meta.get("general.architecture", "").startswith("gemma") else "chatml.jinja"
            with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "flurry-infer", "src", "templates", fallback)) as f:
                template = f.read()
        vocab_tokens = None
        bos_id = llm.token_bos()
        eos_id = llm.token_eos()
        bos = llm.detokenize([bos_id], special=True).decode() if bos_id >= 0 else ""
        eos = llm.detokenize([eos_id], special=True).decode() if eos_id >= 0 else ""
        prompts = [{"kind": "raw", "set": "ordinary", "prompt": p} for p in RAW_PROMPTS]
        prompts += [{"kind": "raw", "set": "candidate", "prompt": p} for p in DECISIVE_CANDIDATES]
        for msgs in CHAT_PROMPTS:
            try:
                rendered = render(template, msgs, bos, eos)
            except jinja2.exceptions.TemplateError as e:
                print(f"{name}: template refuses {msgs}: {e}", file=sys.stderr)
                continue
            prompts.append({"kind": "chat", "set": "ordinary", "messages": msgs, "prompt": rendered})
        out = []
        for p in prompts:
            # Raw prompts: text as-is with BOS per the vocab. Chat prompts: the rendered
            # template already carries BOS where the template puts it, so no extra BOS,
            # and special tokens in it are parsed.
            if p["kind"] == "raw":
                ids = llm.tokenize(p["prompt"].encode(), add_bos=True, special=False)
            else:
                ids = llm.tokenize(p["prompt"].encode(), add_bos=False, special=True)
            llm.reset()
            llm.eval(ids)
            gen, tops = [], []
            for _ in range(N_GEN):
                logits = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
                order = np.argsort(-logits, kind="stable")[:TOP_K]
                tok = int(order[0])
                tops.append([[int(i), float(logits[i])] for i in order])
                gen.append(tok)
                if llm._model.token_is_eog(tok) if hasattr(llm._model, "token_is_eog") else tok == eos_id:
                    break
                llm.eval([tok])
            margins = [t[0][1] - t[1][1] for t in tops]
            if p["set"] == "candidate":
                if min(margins) < DECISIVE_MARGIN or sum(c["set"] == "decisive" for c in out) >= DECISIVE_MAX:
                    continue
                p = {**p, "set": "decisive"}
            out.append({**p, "prompt_ids": ids, "greedy": gen, "top_logits": tops,
                        "min_margin": min(margins),
                        "text": llm.detokenize(gen).decode("utf-8", errors="replace")})
            print(f"{name}: {p['set']} {p['kind']} {len(ids)} prompt tokens -> {out[-1]['text'][:60]!r}", file=sys.stderr)
        with open(os.path.join(OUT, "reference", f"{name}.json"), "w") as f:
            json.dump({"model_file": models[name],
                       "generator": "llama.cpp via llama-cpp-python 0.3.36, n_threads=2, greedy argmax, logits_all",
                       "chat_template": template, "bos_token": bos, "eos_token": eos,
                       "cases": out}, f, ensure_ascii=False, indent=0)


if __name__ == "__main__":
    main()
