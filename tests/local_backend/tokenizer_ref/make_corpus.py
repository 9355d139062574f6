#!/usr/bin/env python3
"""Assembles corpus.json: >= 300 strings for the tokenizer comparison with the JS reference.
All strings are NFC (the reference normalises to NFC; llama.cpp and this engine do not)."""
import json, unicodedata

base = [
    # English
    "Hello world", "Hello, world!", " Hello", "  Hello", "hello\nworld", "The quick brown fox jumps over the lazy dog.",
    "I'm sure you'll see they've done it; we'd go if it's ok.", "I'M SURE YOU'LL SEE THEY'VE DONE IT", "don't", "DON'T",
    "'s 't 're 've 'm 'll 'd", "'S 'T 'RE 'VE 'M 'LL 'D", "rock'n'roll", "it''s", "'", "''", "'hello'", "\"quoted\"",
    "What is the capital of France?", "Answer in one word.", "e.g. i.e. etc. Mr. Mrs. Dr.", "U.S.A.", "state-of-the-art",
    "supercalifragilisticexpialidocious", "Antidisestablishmentarianism!", "a", "A", "I", " ", "  ", "   ", "\n", "\n\n",
    "\t", "\r\n", " \n", "\n ", " \n ", "\t\t\tindented", "trailing spaces   ", "   leading spaces", "mixed \t whitespace \n\n here",
    "line1\r\nline2\r\nline3", "a\n\n\nb", "a  b   c    d", "end.\n", "question?\n\n", "!!!", "???", "...", "—", "–-", "…",
    # numbers
    "0", "1", "12", "123", "1234", "12345", "1234567890", "3.14159", "-42", "+7", "1,000,000", "1e-10", "0x1F", "0b1010",
    "2024-01-15", "12:30:45", "$19.99", "€100", "100%", "50/50", "1st 2nd 3rd 4th", "v1.2.3", "IPv4 192.168.0.1",
    "phone: +1 (555) 123-4567", "٣٤٥", "１２３", "Ⅻ", "½ ¾", "²³", "x² + y² = z²",
    # code
    "def main():\n    return 0\n", "for (int i = 0; i < n; ++i) { sum += x[i]; }", "#include <stdio.h>", "int main(void) {",
    "console.log(`hi ${name}`);", "SELECT * FROM users WHERE id = 1;", "<div class=\"a\">text</div>", "{\"key\": [1, 2, 3]}",
    "if x == 1:\n\tpass", "a->b->c", "x += 1 // comment", "/* block */", "std::vector<int> v{1,2,3};", "$ ls -la | grep foo",
    "fn main() -> Result<(), Box<dyn Error>> {", "lambda x: x**2", "arr[0][1] = arr[1][0];", "@decorator\ndef f(): ...",
    "    \n    \n", "\tx\t=\t1", "&&||!==", "<=>", "::", "#!/bin/bash", "print('hello')", "http://example.com/path?q=1&r=2",
    "user@example.com", "C:\\Users\\name\\file.txt", "~/projects/gateway", "__init__", "snake_case_name", "camelCaseName",
    "PascalCaseName", "SCREAMING_SNAKE", "kebab-case-name",
    # Chinese
    "你好", "你好，世界！", "我爱北京天安门。", "今天天气很好，我们去公园散步吧。", "人工智能正在改变世界。", "中文和English混合",
    "这是一个测试。这是第二句话。", "数字123和汉字", "《红楼梦》是中国古典小说。", "“引号”与「括号」", "一二三四五六七八九十",
    "龘靐齉爩", "繁體中文測試", "香港、澳門、台灣", "请用中文回答：什么是机器学习？",
    # Japanese
    "こんにちは", "こんにちは世界", "日本語のテキストです。", "カタカナとひらがな", "東京は日本の首都です。", "ｶﾀｶﾅ",
    "私はコーヒーが好きです。", "ありがとうございます！", "漢字とかなの混じった文", "ラーメン🍜を食べたい",
    # Korean and others
    "안녕하세요", "한국어 텍스트입니다.", "Привет, мир!", "Съешь же ещё этих мягких французских булок.", "Γειά σου Κόσμε",
    "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया", "สวัสดีชาวโลก", "Xin chào thế giới", "Tiếng Việt có dấu",
    "Ça va? Très bien, merci.", "Größe, Übung, Straße", "niño, año, señor", "København", "Ærø", "İstanbul", "ǅ ǈ ǋ",
    "ﬁ ﬂ ligatures", "Ω ≈ ç √ ∫", "∀x∈ℝ: x²≥0", "αβγδε", "ℵ₀", "№5",
    # emoji
    "😀", "😀😃😄", "👍🏽", "👨‍👩‍👧‍👦", "🇺🇸🇯🇵", "❤️", "I ❤️ NY", "🔥🔥🔥 fire", "emoji at end 🎉", "🎉 emoji at start",
    "a😀b", "✅ done ❌ failed", "🤖: beep boop", "⭐️⭐️⭐️⭐️⭐️", "☕ + 🍩 = 😋",
    # mixed scripts / tricky
    "Hello世界", "abc中文def", "日本語English한국어", "123abc456", "abc123def", "a1b2c3", "ÀÉÎÕÜ", "àéîõü", "ŝƫǖɐʃ",
    "\u00a0nbsp", "zero\u200bwidth", "word\u3000ideographic space", "tab\u000bvtab", "form\u000cfeed", "\ufeffbom",
    "line\u2028sep", "para\u2029sep", "soft\u00adhyphen", "combining e\u0301 (already NFC? no)", "x\u0308",
    "RTL \u202eoverride", "<|im_start|>user\nhi<|im_end|>", "<|endoftext|>", "<think>\nreasoning\n</think>\n\nanswer",
    "<tool_call>\n{\"name\": \"f\"}\n</tool_call>", "text<|im_end|>more", "<|im_start|>", "< |im_start| >", "<|unknown|>",
    "<|fim_prefix|>code<|fim_suffix|>", "\\n literal backslash n", "tab\\there", "🙂\n\n🙃", "...\n\n\n...", " ,.;:!? ",
    "((()))", "[[[]]]", "{{{}}}", "''''", "\"\"\"docstring\"\"\"", "a'b", "a'sb", "'re'", "O'Neil's", "rock 'n' roll",
]

variants = []
words = ["hello", "world", "gateway", "model", "token", "世界", "テスト", "🙂", "42", "x"]
for i, w in enumerate(words):
    variants += [w, " " + w, w + " ", "\n" + w, w * 3, (w + " ") * 3, w.upper(), w.capitalize() + ".", f"{w}{i}{w}"]
for n in [2, 3, 5, 8, 17]:
    variants += [" " * n, "\n" * n, " " * n + "x", "x" + " " * n + "y", "\t" * n + "z", " \n" * n]
for num in ["7", "77", "777", "7777", "77777", "3.5", "1/3", "10^6"]:
    variants += [num, " " + num, "abc" + num, num + "abc"]

corpus = []
seen = set()
for s in base + variants:
    s = unicodedata.normalize("NFC", s)
    if s not in seen:
        seen.add(s)
        corpus.append(s)
assert len(corpus) >= 300, len(corpus)
with open("corpus.json", "w", encoding="utf-8") as f:
    json.dump(corpus, f, ensure_ascii=False, indent=0)
print(len(corpus), "strings")
