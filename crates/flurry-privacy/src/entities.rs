//! Layer 2: the owner's own entities, learned from the private memory.
//!
//! What a scrubber trained on other people's text cannot know is who the owner writes
//! to, where they live and what their projects are called. The memory knows: mail
//! headers name every correspondent, signatures carry names, phones and addresses,
//! notes list contacts and account numbers. [`EntityList::learn`] reads a document's
//! text (as the memory stores it) and keeps those entities; the scrubber matches them
//! in any case, without accents, by parts (first name, surname after a title) and in
//! Chinese forms of address (王总, 小王).

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

use crate::{Kind, patterns, re};

/// At most this many entities are kept (a mailbox of 100k messages names far fewer
/// people; the bound keeps the matcher small).
pub const MAX_ENTITIES: usize = 50_000;

/// The owner's entities: (kind, text) pairs, deduplicated.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EntityList {
    entries: BTreeSet<(Kind, String)>,
}

static HEADER: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?mi)^(?:From|To|Cc|Bcc|Reply-To|Sender|发件人|收件人|抄送)[ \t]*[:：][ \t]*(.+)$")
});
static MAILBOX: LazyLock<Regex> =
    LazyLock::new(|| re(r#"^\s*"?([^"<>@,;]+?)"?\s*<([^<>\s]+@[^<>\s]+)>\s*$"#));
static LABELLED: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?mi)^[ \t]*(?:[-*•·]\s*)?([\p{L} ./#]{1,24}?)[ \t]*[:：][ \t]*(.{2,120}?)[ \t]*$")
});
static PROJECT: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?:\b(?:[Pp]roject|[Cc]odename|[Cc]ode name|[Oo]peration)\s+([A-Z][A-Za-z0-9\-]{2,24})|[「“\x22《]([\p{Han}A-Za-z0-9\-]{2,12})[」”\x22》]\s*项目|项目[「“\x22《]([\p{Han}A-Za-z0-9\-]{2,12})[」”\x22》]|代号[「“\x22]?([\p{Han}A-Za-z0-9\-]{2,12}))",
    )
});
static SIGN_OFF: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?m)^[ \t]*(?:--|—|Best|Best regards|Kind regards|Regards|Warm regards|Cheers|Thanks|Thank you|Many thanks|Sincerely|Yours|Yours sincerely|All the best|此致|敬礼|祝好|顺祝商祺|谢谢)[,，!。.]?[ \t]*$",
    )
});
static LATIN_NAME: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^\p{Lu}[\p{L}'’\-]+(?: (?:van |von |de |da |del |di |le |la )?\p{Lu}[\p{L}'’\-]+){0,3}$")
});
static HAN_NAME: LazyLock<Regex> = LazyLock::new(|| re(r"^\p{Han}{2,4}$"));
static NAME_LEAD: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^[ \t]*(?:[-*•·]\s*)?(?:(\p{Lu}[\p{L}'’\-]+(?: \p{Lu}[\p{L}'’\-]+){0,3})|(\p{Han}{2,4})(?:[ \t]+\p{Lu}\p{Ll}{2,12})?)[ \t]*(?:[—–\-:：,，(（<|\t]|$)",
    )
});

/// A Chinese name and what follows it in brackets: other forms of it (`王建国（王总、老王）`)
/// or its romanisation (`王建国 (Wang Jianguo)`).
static ALIASES: LazyLock<Regex> =
    LazyLock::new(|| re(r"(\p{Han}{2,4})[ \t]*[（(]([^()（）\n]{1,60})[)）]"));
/// A romanised name with its Chinese form in brackets (`Lin Siyu (林思雨)`).
static ALIASES_LATIN: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(\p{Lu}[\p{L}'’\-]+(?: \p{Lu}[\p{L}'’\-]+){1,2})[ \t]*[（(](\p{Han}{2,4})[)）]")
});
/// Headings of notes about a project ("# Project Bluefin", "# 蓝鲸项目", "# Bluefin sync").
static PROJECT_HEADING: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?mi)^#{1,3}[ \t]*(?:project[ \t]+)?(\p{L}[\p{L}\-]{1,24}?|\p{Han}{2,6}?)[ \t]*(?:项目|计划|工程)?[ \t]*(?:周会|例会|纪要|复盘|sync|weekly|standup|stand-up|review|kickoff|kick-off|retro|alignment|status|update|planning)\b",
    )
});
/// Words that head a meeting note without being a project.
const NOT_PROJECTS: &[&str] = &[
    "team",
    "weekly",
    "daily",
    "product",
    "design",
    "engineering",
    "sales",
    "marketing",
    "all",
    "staff",
    "board",
    "company",
    "quarterly",
    "monthly",
    "annual",
    "project",
    "1:1",
    "部门",
    "团队",
    "公司",
    "产品",
    "技术",
    "全员",
    "每周",
    "周",
    "月度",
    "季度",
    "年度",
];
/// Folders whose notes are each about one project.
const PROJECT_DIRS: &[&str] = &[
    "projects",
    "project",
    "codenames",
    "codename",
    "code-names",
    "initiatives",
    "项目",
    "代号",
    "projekte",
    "projets",
    "proyectos",
];

/// The first words of a note's first line, up to a separator ("Lantern — a night light").
static FIRST_WORDS: LazyLock<Regex> =
    LazyLock::new(|| re(r"^[ \t]*([\p{L}][\p{L}\- ]{0,24}?)[ \t]*[—–:：,，\-(（]"));
/// A vCard property line: name (with parameters) and value.
static VCARD_LINE: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?m)^(FN|NICKNAME|ADR)(?:;[^:\n]*)?:(.+?)\r?$"));
/// An English name written after a Chinese one ("黄志强 Kevin – 137…").
static HAN_THEN_LATIN: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^[ \t]*(?:[-*•·]\s*)?\p{Han}{2,4}[ \t]+(\p{Lu}\p{Ll}{2,12})[ \t]*(?:[—–\-:：,，(（|\t]|$)")
});
/// A vCard name or nickname worth learning: capitalised words or Chinese characters,
/// never a word the name cues know is not a name (a stranger's card saying
/// `NICKNAME:The,hello` must not make the scrubber hide ordinary words).
fn vcard_name(n: &str) -> bool {
    let n = n.trim();
    let han = n.chars().count() <= 4 && n.chars().all(crate::scrub::is_han);
    (LATIN_NAME.is_match(n) || han) && !crate::names::is_not_name(n) && !COMMON_WORDS.contains(&n)
}

/// Bracketed remarks on a line.
static BRACKETED: LazyLock<Regex> = LazyLock::new(|| re(r"[（(]([^()（）\n]{1,80})[)）]"));

/// Everyday words with the shape of a form of address (小时 "hour", 老师 "teacher").
const COMMON_WORDS: &[&str] = &[
    "小时",
    "小组",
    "小区",
    "小孩",
    "小心",
    "小说",
    "小姐",
    "小学",
    "小费",
    "小吃",
    "小组长",
    "老师",
    "老板",
    "老家",
    "老人",
    "老总",
    "老外",
    "老年",
    "老化",
    "阿里",
    "总工",
    "大哥",
    "大姐",
    "师傅",
];

/// Whether `a` has the shape of a Chinese form of address or nickname: 小X/老X/阿X,
/// X工/X总/X哥/X姐/X医生…, a doubled character (乐乐) or an -儿 name (雪儿).
fn cn_alias_shape(a: &str) -> bool {
    let chars: Vec<char> = a.chars().collect();
    if !(2..=3).contains(&chars.len())
        || !chars.iter().all(|&c| crate::scrub::is_han(c))
        || NOT_ALIASES.contains(&a)
    {
        return false;
    }
    if COMMON_WORDS.contains(&a) {
        return false;
    }
    matches!(chars[0], '小' | '老' | '阿')
        || [
            "工", "总", "哥", "姐", "叔", "姨", "嫂", "医生", "会计", "老师", "师傅", "律师",
            "经理", "主任", "博士",
        ]
        .iter()
        .any(|s| a.len() > s.len() && a.ends_with(s))
        || (chars.len() == 2 && chars[0] == chars[1])
        || (chars.len() == 2 && chars[1] == '儿')
}

/// Labels of "Label: value" lines, and what their value is.
fn label_kind(label: &str) -> Option<Kind> {
    let l = label.trim().to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| l.contains(w));
    if has(&["project", "codename", "code name", "项目", "代号"]) {
        Some(Kind::Project)
    } else if has(&[
        "address", "addr", "street", "home", "地址", "住址", "住所", "寄到", "收货",
    ]) {
        Some(Kind::Address)
    } else if has(&[
        "account",
        "acct",
        "customer",
        "client no",
        "policy",
        "member",
        "passport",
        "licence",
        "license",
        "patient",
        "employee",
        "ssn",
        "nhs",
        "tax id",
        "账号",
        "账户",
        "帐号",
        "客户",
        "保单",
        "会员",
        "护照",
        "社保",
        "医保",
        "病历",
        "工号",
        "学号",
        "驾驶证",
        "编号",
        "卡号",
    ]) {
        Some(Kind::Id)
    } else if has(&[
        "name",
        "contact",
        "姓名",
        "联系人",
        "称呼",
        "名字",
        "wife",
        "husband",
        "partner",
        "mother",
        "father",
        "son",
        "daughter",
        "doctor",
        "dentist",
        "landlord",
        "boss",
        "manager",
        "colleague",
        "friend",
        "sister",
        "brother",
        "妻子",
        "丈夫",
        "老婆",
        "老公",
        "母亲",
        "父亲",
        "妈妈",
        "爸爸",
        "儿子",
        "女儿",
        "医生",
        "房东",
        "老板",
        "经理",
        "同事",
        "朋友",
        "姐姐",
        "妹妹",
        "哥哥",
        "弟弟",
    ]) {
        Some(Kind::Person)
    } else {
        None
    }
}

/// Whether `s` can be a person's name: two or more capitalised words (or one common
/// given name), or two to four Chinese characters that start with a surname.
fn name_like(s: &str) -> bool {
    let s = s.trim();
    if crate::names::is_not_name(s) {
        return false;
    }
    if HAN_NAME.is_match(s) {
        return crate::names::cn_surname_start(s);
    }
    LATIN_NAME.is_match(s) && (s.contains(' ') || crate::names::is_given_name(s))
}

impl EntityList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one entity (ignored when it is too short to match safely, or when the list
    /// is full).
    pub fn add(&mut self, kind: Kind, text: &str) {
        let t = text
            .trim()
            .trim_matches(['"', '\'', '“', '”', '「', '」', '.', ',', '，', '。']);
        let chars = t.chars().count();
        let han = t.chars().any(|c| matches!(c as u32, 0x4E00..=0x9FFF));
        if (han && chars < 2) || (!han && chars < 3) || chars > 120 {
            return;
        }
        if self.entries.len() < MAX_ENTITIES {
            self.entries.insert((kind, t.to_string()));
        }
    }

    /// How many entities it holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entities, by kind then text.
    pub fn iter(&self) -> impl Iterator<Item = (Kind, &str)> {
        self.entries.iter().map(|(k, t)| (*k, t.as_str()))
    }

    /// Learns the entities of one document: `path` (as the memory stores it) tells
    /// what kind of note it is (a note in a `projects/` folder is named after its
    /// project), then [`EntityList::learn`] reads its text.
    pub fn learn_document(&mut self, path: &str, text: &str) {
        let parts: Vec<&str> = path.split(['/', '\\']).filter(|p| !p.is_empty()).collect();
        if let [.., dir, file] = parts.as_slice()
            && PROJECT_DIRS.contains(&dir.to_lowercase().as_str())
        {
            let stem = file.rsplit_once('.').map_or(*file, |(s, _)| s);
            // A Markdown heading names it; else a first line that starts with the file's
            // own name gives its spelling ("lantern.txt": "Lantern — …").
            let heading = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("# "))
                .map(project_name)
                .or_else(|| {
                    let first = text.lines().find(|l| !l.trim().is_empty())?;
                    let w = FIRST_WORDS.captures(first)?.get(1)?.as_str().trim();
                    (w.to_lowercase() == stem.to_lowercase()).then_some(w)
                });
            match heading {
                Some(h) if !h.is_empty() && h.chars().count() <= 24 => self.add(Kind::Project, h),
                _ => self.add(Kind::Project, stem),
            }
        }
        self.learn(text);
    }

    /// Learns the entities of one document's text (a mail as the memory stores it:
    /// `From:`/`To:` header lines, then the body; or a note).
    pub fn learn(&mut self, text: &str) {
        // Correspondents in the headers.
        for c in HEADER.captures_iter(text) {
            for mailbox in c[1].split([',', ';']) {
                if let Some(m) = MAILBOX.captures(mailbox) {
                    let name = m[1].trim();
                    if name_like(name) {
                        self.add(Kind::Person, name);
                        if HAN_NAME.is_match(name) {
                            self.learn_pinyin_of(&m[2]);
                        }
                    }
                    self.add(Kind::Email, &m[2]);
                }
            }
        }
        // "Label: value" lines: contacts, addresses, account numbers, projects.
        for c in LABELLED.captures_iter(text) {
            let (label, value) = (&c[1], c[2].trim());
            match label_kind(label) {
                Some(Kind::Person) => {
                    let name = value
                        .split(['(', '（', '<', ',', '，', '—', '|'])
                        .next()
                        .unwrap_or("")
                        .trim();
                    if name_like(name) {
                        self.add(Kind::Person, name);
                    }
                }
                Some(Kind::Id) => {
                    for token in value.split([' ', ',', '，', ';', '；']) {
                        if token.bytes().filter(u8::is_ascii_digit).count() >= 4 {
                            self.add(Kind::Id, token);
                        }
                    }
                }
                Some(Kind::Address) if value.chars().any(|c| c.is_ascii_digit()) => {
                    self.add(Kind::Address, value)
                }
                Some(Kind::Project) => {
                    let v = value
                        .split([',', '，', '(', '（', '—'])
                        .next()
                        .unwrap_or("");
                    if v.chars().count() <= 30 {
                        self.add(Kind::Project, v)
                    }
                }
                _ => {}
            }
        }
        for c in PROJECT_HEADING.captures_iter(text) {
            let name = c[1].trim();
            if !NOT_PROJECTS.contains(&name.to_lowercase().as_str()) {
                self.add(Kind::Project, name);
            }
        }
        self.learn_aliases(text);
        self.learn_vcards(text);
        self.learn_tables(text);
        self.learn_addresses(text);
        for c in PROJECT.captures_iter(text) {
            if let Some(g) = (1..=4).find_map(|i| c.get(i)) {
                self.add(Kind::Project, g.as_str());
            }
        }
        // Lines that carry contact data start with whose it is ("Alice Martin — +44…").
        let hits = patterns::find(text);
        let mut line_start = 0;
        for line in text.split_inclusive('\n') {
            let line_end = line_start + line.len();
            let contact = hits.iter().any(|h| {
                h.start >= line_start
                    && h.end <= line_end
                    && matches!(h.kind, Kind::Email | Kind::Phone)
            });
            if contact
                && let Some(m) = NAME_LEAD.captures(line)
                && let Some(lead) = m.get(1).or_else(|| m.get(2)).map(|g| g.as_str())
                && name_like(lead)
                && label_kind(lead).is_none()
            {
                self.add(Kind::Person, lead);
                if HAN_NAME.is_match(lead) {
                    self.learn_contact_line(line, &hits, line_start);
                }
            }
            line_start = line_end;
        }
        // The owner's own phone numbers, addresses and ids are worth remembering even
        // in a form the patterns would miss elsewhere.
        for h in &hits {
            if matches!(h.kind, Kind::Address | Kind::Id | Kind::Iban | Kind::Card) {
                self.add(h.kind, &text[h.start..h.end]);
            }
        }
        // Signatures: the name line after a sign-off.
        for m in SIGN_OFF.find_iter(text) {
            let rest = &text[m.end()..];
            if let Some(line) = rest.lines().map(str::trim).find(|l| !l.is_empty())
                && name_like(line)
            {
                self.add(Kind::Person, line);
            }
        }
    }
}

/// A project's name from its note's heading: "Project Bluefin" → "Bluefin",
/// "蓝鲸项目" → "蓝鲸".
fn project_name(heading: &str) -> &str {
    let h = heading.trim();
    let h = [
        "Project ",
        "project ",
        "PROJECT ",
        "Projekt ",
        "Projet ",
        "Proyecto ",
    ]
    .iter()
    .find_map(|p| h.strip_prefix(p))
    .unwrap_or(h);
    let h = ["项目", "计划", "工程"]
        .iter()
        .find_map(|p| h.strip_suffix(p))
        .unwrap_or(h);
    h.trim()
}

/// Kinship and role words written where an alias could be.
const NOT_ALIASES: &[&str] = &[
    "妈",
    "爸",
    "妈妈",
    "爸爸",
    "妹妹",
    "姐姐",
    "哥哥",
    "弟弟",
    "老婆",
    "老公",
    "儿子",
    "女儿",
    "奶奶",
    "爷爷",
    "外婆",
    "外公",
    "舅舅",
    "阿姨",
    "叔叔",
    "本人",
    "我",
    "出差",
    "请假",
    "缺席",
    "已离职",
    "离职",
    "同事",
    "客户",
    "朋友",
];

impl EntityList {
    /// The romanised given name in a Chinese contact's address (`qiu.wenbo@…` →
    /// `Wenbo`, `Qiu Wenbo`, `Wenbo Qiu`).
    fn learn_pinyin_of(&mut self, email: &str) {
        let local = email.split('@').next().unwrap_or("");
        if let Some((given, surname)) = crate::names::pinyin_from_local_part(local) {
            self.add(Kind::Person, &format!("{surname} {given}"));
            self.add(Kind::Person, &format!("{given} {surname}"));
            self.add(Kind::Person, &given);
        }
    }

    /// The rest of a contact line led by a Chinese name: the English name written after
    /// it, the forms of address in its bracketed remarks ("(firmware lead, 邱工)",
    /// "(大家叫强哥/黄总)"), and the given name in its e-mail address.
    fn learn_contact_line(&mut self, line: &str, hits: &[crate::Span], at: usize) {
        // Beside a Chinese full name, a capitalised word is the person's English name.
        if let Some(m) = HAN_THEN_LATIN.captures(line)
            && !crate::names::is_not_name(&m[1])
        {
            self.add(Kind::Person, &m[1]);
        }
        for c in BRACKETED.captures_iter(line) {
            for piece in c[1].split(['、', ',', '，', '/', ';', '；', ' ']) {
                let piece = piece.rsplit('叫').next().unwrap_or(piece).trim();
                if cn_alias_shape(piece) {
                    self.add(Kind::Person, piece);
                }
            }
        }
        for h in hits {
            if h.kind == Kind::Email && h.start >= at && h.end <= at + line.len() {
                self.learn_pinyin_of(&line[h.start - at..h.end - at]);
            }
        }
    }

    /// vCards (contacts exported as `.vcf`): the full name (its parts match as the
    /// scrubber matches any full name), nicknames and postal addresses.
    fn learn_vcards(&mut self, text: &str) {
        if !text.contains("BEGIN:VCARD") {
            return;
        }
        for c in VCARD_LINE.captures_iter(text) {
            let value = c[2].trim();
            match &c[1] {
                "FN" if vcard_name(value) => self.add(Kind::Person, value),
                "NICKNAME" => {
                    for n in value.split(',').map(str::trim).filter(|n| vcard_name(n)) {
                        self.add(Kind::Person, n);
                    }
                }
                "FN" => {}
                _ => {
                    let adr: Vec<&str> = value
                        .split(';')
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .collect();
                    if !adr.is_empty() {
                        self.add(Kind::Address, &adr.join(", "));
                    }
                }
            }
        }
    }

    /// Other forms of a name written beside it in brackets.
    fn learn_aliases(&mut self, text: &str) {
        for c in ALIASES.captures_iter(text) {
            let name = &c[1];
            if !crate::names::cn_surname_start(name) || !name_like(name) {
                continue;
            }
            let mut any = false;
            for alias in c[2].split(['、', ',', '，', '/', ';', '；']) {
                let alias = alias.trim();
                let han = !alias.is_empty() && alias.chars().all(crate::scrub::is_han);
                let chinese_form = han
                    && (2..=4).contains(&alias.chars().count())
                    && !NOT_ALIASES.contains(&alias);
                let romanised = !han && LATIN_NAME.is_match(alias) && alias.contains(' ');
                if chinese_form || romanised {
                    self.add(Kind::Person, alias);
                    any = true;
                }
            }
            if any {
                self.add(Kind::Person, name);
            }
        }
        for c in ALIASES_LATIN.captures_iter(text) {
            if crate::names::cn_surname_start(&c[2]) && name_like(&c[1]) {
                self.add(Kind::Person, &c[1]);
                self.add(Kind::Person, &c[2]);
            }
        }
    }

    /// Markdown tables: a column headed "Name", "Address", "Account"… holds entities of
    /// that kind.
    fn learn_tables(&mut self, text: &str) {
        let mut columns: Vec<Option<Kind>> = Vec::new();
        let mut in_table = false;
        for line in text.lines() {
            let l = line.trim();
            if !l.starts_with('|') {
                in_table = false;
                continue;
            }
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            if !in_table {
                columns = cells.iter().map(|c| label_kind(c)).collect();
                in_table = true;
                continue;
            }
            if cells
                .iter()
                .all(|c| c.chars().all(|ch| matches!(ch, '-' | ':' | ' ')))
            {
                continue;
            }
            for (cell, kind) in cells.iter().zip(&columns) {
                match kind {
                    Some(Kind::Person) => {
                        let name = cell.split(['(', '（']).next().unwrap_or("").trim();
                        if name_like(name) {
                            self.add(Kind::Person, name);
                        }
                    }
                    Some(Kind::Address) if cell.chars().any(|c| c.is_ascii_digit()) => {
                        self.add(Kind::Address, cell)
                    }
                    Some(Kind::Id) if cell.bytes().filter(u8::is_ascii_digit).count() >= 4 => {
                        self.add(Kind::Id, cell)
                    }
                    Some(Kind::Project) if cell.chars().count() <= 24 => {
                        self.add(Kind::Project, cell)
                    }
                    _ => {}
                }
            }
        }
    }

    /// "Who or where: address" lines: the whole value when the patterns see an address
    /// in it (they may see only its street).
    fn learn_addresses(&mut self, text: &str) {
        for line in text.lines() {
            let Some((label, value)) = line.split_once([':', '：']) else {
                continue;
            };
            let value = value.trim();
            let value = value
                .split(['(', '（', ';', '；'])
                .next()
                .unwrap_or("")
                .trim()
                .trim_end_matches(['.', '。']);
            if value.chars().count() < 6 || value.chars().count() > 120 {
                continue;
            }
            let hits = patterns::find(value);
            let covered: usize = hits
                .iter()
                .filter(|h| h.kind == Kind::Address)
                .map(|h| h.end - h.start)
                .max()
                .unwrap_or(0);
            if covered * 2 >= value.len() {
                self.add(Kind::Address, value);
                let who = label
                    .trim()
                    .trim_start_matches(['-', '*', '•', '·', ' '])
                    .trim();
                if name_like(who) && label_kind(who).is_none() {
                    self.add(Kind::Person, who);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_from_a_mail_and_a_contacts_note() {
        let mut l = EntityList::new();
        l.learn(
            "Subject: Boiler service on Thursday\nFrom: Alice Martin <alice@martin.example>\n\
             To: \"Wang Jianguo\" <wjg@example.cn>, 张伟 <zhangwei@example.cn>\n\nHi,\n\n\
             the code is 4471.\n\nBest,\nAlice Martin\n12 Elm Road, Oxford OX1 2JD\n",
        );
        l.learn(
            "# Contacts\n- Bob Fischer — +49 30 1234567\n- 李娜：138 0013 8000\n\
             Home address: 221B Baker Street, London NW1 6XE\nCustomer no: CN-88213-X\n\
             Project Bluefin kicks off in May. 项目「青鸟」下周启动。\n",
        );
        let got: Vec<_> = l.iter().collect();
        for want in [
            (Kind::Person, "Alice Martin"),
            (Kind::Person, "Wang Jianguo"),
            (Kind::Person, "张伟"),
            (Kind::Person, "Bob Fischer"),
            (Kind::Person, "李娜"),
            (Kind::Email, "alice@martin.example"),
            (Kind::Address, "221B Baker Street, London NW1 6XE"),
            (Kind::Id, "CN-88213-X"),
            (Kind::Project, "Bluefin"),
            (Kind::Project, "青鸟"),
        ] {
            assert!(got.contains(&want), "{want:?} not in {got:?}");
        }
        assert!(
            !got.iter().any(|(_, t)| *t == "Contacts" || *t == "Hi"),
            "{got:?}"
        );
    }

    #[test]
    fn learns_aliases_tables_projects_and_addresses() {
        let mut l = EntityList::new();
        l.learn_document(
            "/home/me/notes/通讯录.md",
            "- 王建国（王总、老王）：总经理，手机 138 0013 8000\n\
             | Name | Email |\n|---|---|\n| 林思雨 (Lin Siyu) | s@example.com |\n\
             - José Álvarez：Calle de Fuencarral 78, 28004 Madrid\n\
             - 公司：上海市浦东新区碧波路690号3号楼5层\n",
        );
        l.learn_document(
            "/home/me/notes/projects/bluefin.md",
            "# Project Bluefin\n\nSecret.",
        );
        l.learn_document("/home/me/notes/meetings/m.md", "# 蓝鲸周会 2024-01-15\n");
        let has = |k: Kind, t: &str| l.iter().any(|(kk, tt)| kk == k && tt == t);
        for alias in [
            "王建国",
            "王总",
            "老王",
            "林思雨",
            "Lin Siyu",
            "José Álvarez",
        ] {
            assert!(has(Kind::Person, alias), "{alias}: {l:?}");
        }
        assert!(
            has(Kind::Address, "Calle de Fuencarral 78, 28004 Madrid"),
            "{l:?}"
        );
        assert!(
            has(Kind::Address, "上海市浦东新区碧波路690号3号楼5层"),
            "{l:?}"
        );
        assert!(
            has(Kind::Project, "Bluefin") && has(Kind::Project, "蓝鲸"),
            "{l:?}"
        );
        // Labels are not people.
        assert!(
            !has(Kind::Person, "公司") && !has(Kind::Person, "手机"),
            "{l:?}"
        );
    }

    #[test]
    /// Attack: a stranger's mail lands in the memory carrying a vCard and contact lines
    /// built to teach ordinary words as names (which would make the scrubber mangle every
    /// prompt). Only name-shaped entries are learned, and a flood is bounded.
    fn a_hostile_document_teaches_no_ordinary_words() {
        let mut l = EntityList::new();
        let text = String::from(
            "From: 王伟 <an.an@example.cn>\n\nBEGIN:VCARD\nFN:the\nNICKNAME:The,hello,Monday,小时,ok\n\
             END:VCARD\n赵海峰 – 139 1234 5678 – x@example.cn (小时, 老师, 小组长, 总, 工)\n",
        );
        l.learn_document("/home/me/mail/spam.eml", &text);
        for word in [
            "the",
            "The",
            "hello",
            "Monday",
            "ok",
            "小时",
            "老师",
            "小组长",
            "总",
            "工",
            "An",
        ] {
            assert!(!l.iter().any(|(_, t)| t == word), "{word} learned: {l:?}");
        }
        // The real person on the contact line is still learned.
        assert!(l.iter().any(|(k, t)| k == Kind::Person && t == "赵海峰"));
        // A flood of name-shaped nicknames fills the list only up to its bound.
        let letters = |mut i: usize| {
            let mut w = String::from("Zq");
            for _ in 0..5 {
                w.push((b'a' + (i % 26) as u8) as char);
                i /= 26;
            }
            w
        };
        let mut many = EntityList::new();
        let mut flood = String::from("BEGIN:VCARD\n");
        for i in 0..(MAX_ENTITIES + 10) {
            flood.push_str(&format!("NICKNAME:{}\n", letters(i)));
        }
        many.learn(&flood);
        assert_eq!(many.len(), MAX_ENTITIES);
    }

    #[test]
    fn learns_vcards_contact_lines_and_codename_notes() {
        let mut l = EntityList::new();
        l.learn_document(
            "/home/me/contacts.vcf.txt",
            "BEGIN:VCARD\r\nFN:Annelie Brückner\r\nNICKNAME:Anni,Lili\r\n\
             TEL;TYPE=cell:+49 151 2345 6789\r\n\
             ADR;TYPE=home:;;Lindenstraße 12, 04109 Leipzig\r\nEND:VCARD\r\n",
        );
        l.learn_document(
            "/home/me/notes/people.txt",
            "赵海峰 Victor – 139 1234 5678 – zhao.haifeng@example.cn   (ops lead；大家叫峰哥/赵工)\n\
             孙婷婷 – 136 0000 1111 – tingting@example.cn   (QA, 婷婷)\n\
             A note about (老板, 大家) with no contact.\n",
        );
        l.learn_document(
            "/home/me/notes/work/codenames/heron.txt",
            "Heron — 新一代扫地机，保密。\n",
        );
        l.learn_document(
            "/home/me/notes/work/codenames/白塔.md",
            "白塔：华北渠道。\n",
        );
        let has = |k: Kind, t: &str| l.iter().any(|(kk, tt)| kk == k && tt == t);
        for p in [
            "Annelie Brückner",
            "Anni",
            "Lili",
            "赵海峰",
            "Victor",
            "峰哥",
            "赵工",
            "Haifeng",
            "Zhao Haifeng",
            "孙婷婷",
            "婷婷",
        ] {
            assert!(has(Kind::Person, p), "{p}: {l:?}");
        }
        assert!(
            has(Kind::Address, "Lindenstraße 12, 04109 Leipzig"),
            "{l:?}"
        );
        assert!(
            has(Kind::Project, "Heron") && has(Kind::Project, "白塔"),
            "{l:?}"
        );
        // Role words and remarks on lines without contact data are not people.
        for not in ["ops", "lead", "QA", "老板", "大家"] {
            assert!(!has(Kind::Person, not), "{not}: {l:?}");
        }
        // An address that is not a pinyin name teaches nothing.
        assert_eq!(crate::names::pinyin_from_local_part("info.desk"), None);
        assert_eq!(
            crate::names::pinyin_from_local_part("wenjun_li"),
            Some(("Wenjun".into(), "Li".into()))
        );
    }
}
