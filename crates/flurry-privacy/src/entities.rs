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

use crate::{Kind, patterns};

/// At most this many entities are kept (a mailbox of 100k messages names far fewer
/// people; the bound keeps the matcher small).
pub const MAX_ENTITIES: usize = 50_000;

/// The owner's entities: (kind, text) pairs, deduplicated.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EntityList {
    entries: BTreeSet<(Kind, String)>,
}

fn re(s: &str) -> Regex {
    Regex::new(s).expect("a valid built-in pattern")
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
        r"^[ \t]*(?:[-*•·]\s*)?(\p{Lu}[\p{L}'’\-]+(?: \p{Lu}[\p{L}'’\-]+){0,3}|\p{Han}{2,4})[ \t]*(?:[—–\-:：,，(（<|\t]|$)",
    )
});

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

fn name_like(s: &str) -> bool {
    let s = s.trim();
    (LATIN_NAME.is_match(s) || HAN_NAME.is_match(s)) && !crate::names::is_not_name(s)
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
                && name_like(&m[1])
                && label_kind(&m[1]).is_none()
            {
                self.add(Kind::Person, &m[1]);
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
}
