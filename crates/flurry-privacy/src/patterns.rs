//! Layer 1: personal data with a shape, confirmed by its checksum where it has one.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use regex::Regex;
use sha2::{Digest, Sha256};

use crate::{Kind, Source, Span, re};

static URL: LazyLock<Regex> =
    LazyLock::new(|| re(r#"(?i)\b(?:https?|ftp|wss?)://[^\s<>"'`，。、；（）【】》《]+"#));
static SECRET_PARAM: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)[?&#;](?:access_token|refresh_token|id_token|token|api_?key|apikey|key|secret|client_secret|password|passwd|pwd|sig|signature|auth|authorization|session|sessionid|sid|jwt|ticket|code|x-amz-signature|x-amz-credential|x-goog-signature|private_token)=[^&#\s]{4,}",
    )
});
static USERINFO: LazyLock<Regex> = LazyLock::new(|| re(r"^[a-zA-Z]+://[^/@\s:]+:[^/@\s]+@"));
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,24}",
    )
});
static ETH: LazyLock<Regex> = LazyLock::new(|| re(r"0x[0-9a-fA-F]{40}"));
static BECH32: LazyLock<Regex> = LazyLock::new(|| re(r"\b(?:bc|tb|ltc)1[ac-hj-np-z02-9]{11,87}\b"));
static BASE58: LazyLock<Regex> = LazyLock::new(|| re(r"[13LMT][1-9A-HJ-NP-Za-km-z]{25,34}"));
static IBAN: LazyLock<Regex> = LazyLock::new(|| re(r"[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,32}"));
static CN_ID: LazyLock<Regex> = LazyLock::new(|| re(r"\d{17}[\dXx]"));
static CARD: LazyLock<Regex> = LazyLock::new(|| re(r"\d(?:[ -]?\d){12,18}"));
static PHONES: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    [
        // International: +CC and groups.
        r"\+\d{1,3}(?:[ .\-]?\(?\d{1,5}\)?){1,6}",
        // North America: (415) 555-0132, 415-555-0132, 415.555.0132.
        r"\(\d{3}\) ?\d{3}[ .\-]\d{4}",
        r"\d{3}[.\-]\d{3}[.\-]\d{4}",
        // Chinese mobiles: 13800138000, 138 0013 8000, 138-0013-8000.
        r"1[3-9]\d[ \-]?\d{4}[ \-]?\d{4}",
        // Chinese landlines: 010-65529988, (021) 6234 5678, 0755-8888 6666.
        r"\(?0\d{2,3}\)?[ \-]\d{3,4}[ \-]?\d{4}",
        // UK and similar national formats: 020 7946 0958, 07700 900123.
        r"0\d{2,4} \d{3,4} ?\d{3,4}",
    ]
    .iter()
    .map(|s| re(s))
    .collect()
});
static PHONE_CUE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)(?:\btel\b|\bphone\b|\bmobile\b|\bcell\b|\bfax\b|\bwhatsapp\b|电话|手机|座机|传真|微信|联系方式)[^\d+\n]{0,12}(\+?[\d(][\d ().\-]{5,18}\d)",
    )
});
static IPV4: LazyLock<Regex> = LazyLock::new(|| re(r"\d{1,3}(?:\.\d{1,3}){3}"));
static IPV6: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}(?:%[a-z0-9]+)?"));
static ID_CUE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)(?:\baccount|\bacct|\bcustomer|\bclient|\bpolicy|\bmember(?:ship)?|\bpassport|\blicen[cs]e|\bpatient|\bemployee|\bsocial security|\bssn|\bnhs|\btax|\butr|\bnational insurance|\bclaim|\binsurance|\bhealth card|\bloyalty|账号|账户|帐号|客户号|客户编号|保单号|会员号|会员卡号|护照号|社保号|医保卡号|病历号|就诊卡号|就诊卡|体检号|户号|卡号|工号|学号|驾驶证号)(?:\s*(?:no\.?|number|num|#|id|ref(?:erence)?|code))?\s*(?:is\s+|as\s+|是\s*|还是\s*)?[:：#]?\s*((?:NHS )?[A-Z0-9][A-Z0-9\-/]{4,24}|\d{2,5}(?: \d{2,5}){1,3}|[A-Z]{2}(?: \d{2}){3} [A-Z])",
    )
});
static EN_ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?:\b(?:(?:Room|Rm\.?|Flat|Apt\.?|Apartment|Unit|Suite|Floor|Building|Bldg\.?|No\.|Lane|\d{1,2}F)\s?[A-Za-z0-9\-]*,? ){0,4})?\b\d{1,5}[A-Za-z]?,? (?:[A-Z][a-zA-Z'\-]+ ){1,4}(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|Boulevard|Blvd|Way|Court|Ct|Place|Pl|Square|Sq|Terrace|Close|Crescent|Gardens|Parkway|Pkwy|Highway|Hwy|Row|Mews|Hill|Walk|Strasse|Straße)\b\.?(?: (?:Villas|Estate|Park|North|South|East|West)\b)?(?:,? (?:Apt|Apartment|Suite|Unit|Flat|Floor|Fl)\.? ?#?[A-Za-z0-9\-]+)?(?:, (?:[A-Z][a-zA-Z'\-]+\b ?){1,3}){0,2}(?:,? (?:[A-Z]{2} \d{5}(?:-\d{4})?|[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}|\d{4,6})\b)?",
    )
});
/// Continental forms: "18 Rue des Martyrs, 75009 Paris", "Calle de Serrano 41, 28001
/// Madrid", "Hauptstraße 23, 10827 Berlin", "7 Nørrebrogade, 2200 København N".
static EU_ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?:\b\d{1,5}[a-z]?,? (?:Rue|Avenue|Boulevard|Bd|Place|Quai|Allée|Impasse|Chemin|Via|Viale|Piazza|Corso)(?: (?:de|des|du|la|le|les|del|della|di|d'|\p{Lu}[\p{L}'\-]+)){1,4}|\b\d{1,5}[a-z]? \p{Lu}\p{Ll}*(?:gade|vej|gatan|vägen|straße|strasse|allee|weg|platz|gasse|straat|laan|gracht)\b|\b(?:Calle|Avenida|Av\.|Rua|Paseo|Plaza|Carrer|Via|Viale|Piazza|Corso|Travessa|Largo)(?: (?:de|del|la|las|los|da|do|dos|das|di|della|\p{Lu}[\p{L}'\-]+)){1,4},? \d{1,5}[a-zA-Z]?|\b\p{Lu}\p{Ll}*(?:straße|strasse|allee|weg|platz|gasse|damm|ring|gracht|straat|laan|gade|vej|gatan|vägen) \d{1,5}[a-z]?)(?:,? (?:\d{4}(?:-\d{3})?|\d{5}|[A-Z]-\d{4,5}) \p{Lu}\p{L}+(?: [A-Z]\b)?)?",
    )
});
static CN_ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"[\p{Han}]{0,12}?(?:省|自治区|市|区|县|镇|乡)?[\p{Han}\d]{1,12}(?:路|街|大道|大街|巷|胡同|弄|里|道)(?:[\d一二三四五六七八九十]+段)?[\d一二三四五六七八九十百]+号(?:院)?(?:\p{Han}{1,8}?(?:大厦|大楼|中心|广场|花园|公寓|小区|苑|园区|写字楼))?(?:[\d一二三四五六七八九十A-Za-z]+(?:号楼|栋|幢|座|楼|层|F))?(?:[\d一二三四五六七八九十]+单元)?(?:[\dA-Za-z\-]+(?:室|房))?",
    )
});

/// Project code names by the words around them ("Project Foxglove", "the Marigold
/// standup", "蓝鲸项目", "“玄武”是我们内部…", "（银杏组）").
static PROJECT_CUE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?:\b(?:[Pp]roject|PROJECT|[Cc]odename|[Cc]ode name)\s+(\p{Lu}[\p{L}\-]{2,24})|\b(?:the|our|a|for|on) (\p{Lu}[a-z]{3,20}|[A-Z]{4,20}) (?:standup|stand-up|sync|pilot|demo|KPIs|KPI|dashboard|kickoff|kick-off|alignment|rollout|launch|workstream|roadmap|milestone|sprint|retro|backlog|codebase|repo|budget|pitch)\b|(?m:^)#*\s*(\p{Lu}[a-z]{3,20}|[A-Z]{4,20}) (?:sync|alignment|standup|kickoff|retro) - |(\p{Han}{2})(?:项目|计划|一期|二期|三期|组[）)])|[“「\x22](\p{Han}{2,4})[”」\x22](?:是我们|项目|计划))",
    )
});
/// Words before 项目/计划/二期 that are not a project's name.
const NOT_PROJECT_WORDS: &[&str] = &[
    "这个", "那个", "整个", "两个", "几个", "一个", "新的", "合作", "试点", "重点", "子项", "开发",
    "研发", "工作", "培训", "学习", "旅行", "出行", "装修", "搬家", "健身", "理财", "投资", "储蓄",
    "还款", "采购", "招聘", "年度", "季度", "月度", "本周", "下周", "今年", "明年", "公司", "部门",
    "团队", "产品", "技术", "数据", "迁移", "基础", "设施", "改造", "建设", "测试", "上线", "发布",
    "一下", "这次", "上次", "下次", "我们", "你们", "他们", "相关", "其他", "所有", "各个", "具体",
    "小组", "后端", "前端", "设计", "运营", "市场", "销售", "财务", "行政", "人事", "法务", "管理",
];
/// Capitalised words before "standup", "pilot"… that are not a project's name.
const NOT_PROJECT_NAMES: &[&str] = &[
    "Team",
    "Weekly",
    "Daily",
    "Product",
    "Design",
    "Engineering",
    "Sales",
    "Marketing",
    "Company",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
    "Morning",
    "Quarterly",
    "Monthly",
    "Annual",
    "Board",
    "Staff",
    "Data",
    "Platform",
    "Backend",
    "Frontend",
    "Mobile",
    "Google",
    "Apple",
    "Amazon",
    "Microsoft",
    "Meta",
    "Next",
    "Last",
    "First",
    "Final",
    "Main",
    "Big",
    "Small",
    "Full",
    "Live",
    "Demo",
    "Client",
    "Customer",
    "Investor",
    "Partner",
];

/// Every pattern hit in `text`, overlapping ones included (the scrubber picks).
pub fn find(text: &str) -> Vec<Span> {
    let mut out = Vec::new();
    let mut push = |kind, start, end| {
        out.push(Span {
            kind,
            start,
            end,
            source: Source::Pattern,
        })
    };
    for m in URL.find_iter(text) {
        let s = m
            .as_str()
            .trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']', '\'']);
        if SECRET_PARAM.is_match(s) || USERINFO.is_match(s) {
            push(Kind::Url, m.start(), m.start() + s.len());
        }
    }
    for m in EMAIL.find_iter(text) {
        push(Kind::Email, m.start(), m.end());
    }
    for m in ETH.find_iter(text) {
        if !alnum_before(text, m.start()) && !alnum_after(text, m.end()) {
            push(Kind::Crypto, m.start(), m.end());
        }
    }
    for m in BECH32.find_iter(text) {
        push(Kind::Crypto, m.start(), m.end());
    }
    for m in BASE58.find_iter(text) {
        if !alnum_before(text, m.start()) && !alnum_after(text, m.end()) && base58check(m.as_str())
        {
            push(Kind::Crypto, m.start(), m.end());
        }
    }
    for m in IBAN.find_iter(text) {
        if alnum_before(text, m.start()) {
            continue;
        }
        if let Some(end) = iban_end(m.as_str()) {
            push(Kind::Iban, m.start(), m.start() + end);
        }
    }
    for m in CN_ID.find_iter(text) {
        if !digit_before(text, m.start()) && !alnum_after(text, m.end()) && cn_id(m.as_str()) {
            push(Kind::CnId, m.start(), m.end());
        }
    }
    for m in CARD.find_iter(text) {
        let s = m.as_str().trim_end_matches([' ', '-']);
        if !digit_before(text, m.start()) && !digit_after(text, m.start() + s.len()) && card(s) {
            push(Kind::Card, m.start(), m.start() + s.len());
        }
    }
    for r in PHONES.iter() {
        for m in r.find_iter(text) {
            let s = m.as_str().trim_end_matches([' ', '-', '.', '(']);
            let end = m.start() + s.len();
            let digits = s.bytes().filter(u8::is_ascii_digit).count();
            if (7..=15).contains(&digits)
                && !digit_before(text, m.start())
                && !digit_after(text, end)
                && !text[..m.start()].ends_with('.')
            {
                push(Kind::Phone, m.start(), end);
            }
        }
    }
    for c in PHONE_CUE.captures_iter(text) {
        let g = c.get(1).expect("group 1");
        let digits = g.as_str().bytes().filter(u8::is_ascii_digit).count();
        if (6..=15).contains(&digits) && !digit_after(text, g.end()) {
            push(Kind::Phone, g.start(), g.end());
        }
    }
    for m in IPV4.find_iter(text) {
        let before = text[..m.start()].chars().next_back();
        let after = text[m.end()..].chars().next();
        let lead = window_before(text, m.start(), 16).trim_end().to_lowercase();
        let versioned = matches!(before, Some('v' | 'V' | '.'))
            || before.is_some_and(|c| c.is_ascii_alphanumeric())
            || ["version", "ver.", "release", "build", "版本", "版本号"]
                .iter()
                .any(|w| lead.ends_with(w));
        if !versioned
            && !matches!(after, Some(c) if c.is_ascii_digit() || c == '.' && text[m.end() + 1..].starts_with(|d: char| d.is_ascii_digit()))
            && m.as_str().parse::<Ipv4Addr>().is_ok()
        {
            push(Kind::Ip, m.start(), m.end());
        }
    }
    for m in IPV6.find_iter(text) {
        let s = m.as_str();
        let addr = s.split('%').next().unwrap_or(s);
        if s.len() >= 6 && addr.parse::<Ipv6Addr>().is_ok() && !alnum_before(text, m.start()) {
            push(Kind::Ip, m.start(), m.end());
        }
    }
    for c in ID_CUE.captures_iter(text) {
        let g = c.get(1).expect("group 1");
        if g.as_str().bytes().filter(u8::is_ascii_digit).count() >= 3 {
            push(Kind::Id, g.start(), g.end());
        }
    }
    for m in EN_ADDRESS.find_iter(text) {
        push(Kind::Address, m.start(), m.end().min(text.len()));
    }
    for c in PROJECT_CUE.captures_iter(text) {
        if let Some(g) = (1..=5).find_map(|i| c.get(i)) {
            let w = g.as_str();
            if !NOT_PROJECT_WORDS.contains(&w)
                && !NOT_PROJECT_NAMES.contains(&w)
                && !crate::names::is_not_name(w)
            {
                push(Kind::Project, g.start(), g.end());
            }
        }
    }
    for m in EU_ADDRESS.find_iter(text) {
        push(Kind::Address, m.start(), m.end());
    }
    for m in CN_ADDRESS.find_iter(text) {
        let start = cn_address_start(text, m.start(), m.end());
        if m.end() > start {
            push(Kind::Address, start, m.end());
        }
    }
    out
}

/// Where a Chinese address starts: after the last word that introduces it ("住在",
/// "地址：", "寄到"), so the verb before it is not taken for a place.
fn cn_address_start(text: &str, start: usize, end: usize) -> usize {
    let s = &text[start..end];
    let marker = [
        "省",
        "自治区",
        "市",
        "区",
        "县",
        "路",
        "街",
        "大道",
        "巷",
        "胡同",
        "弄",
    ]
    .iter()
    .filter_map(|m| s.find(m))
    .min()
    .unwrap_or(s.len());
    let head = &s[..marker];
    let cut = [
        "在", "住", "于", "到", "是", "：", ":", "往", "寄", "址", "从", "去", "来", "的", "搬",
    ]
    .iter()
    .filter_map(|c| head.rfind(c).map(|i| i + c.len()))
    .max()
    .unwrap_or(0);
    start + cut
}

/// At most `n` bytes of `text` before `at`, cut at a character boundary.
fn window_before(text: &str, at: usize, n: usize) -> &str {
    let mut from = at.saturating_sub(n);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    &text[from..at]
}

fn alnum_before(text: &str, at: usize) -> bool {
    text[..at]
        .chars()
        .next_back()
        .is_some_and(|c| c.is_ascii_alphanumeric())
}

fn alnum_after(text: &str, at: usize) -> bool {
    text[at..]
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
}

fn digit_before(text: &str, at: usize) -> bool {
    text[..at]
        .chars()
        .next_back()
        .is_some_and(|c| c.is_ascii_digit())
}

fn digit_after(text: &str, at: usize) -> bool {
    text[at..]
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_digit())
}

/// The Luhn check, and a card network's first digit (2-6).
pub fn card(s: &str) -> bool {
    let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) || !(2..=6).contains(&digits[0]) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let d2 = d * 2;
                if d2 > 9 { d2 - 9 } else { d2 }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// ISO 7064 MOD 11-2 check digit of an 18-character Chinese resident id, and a real
/// birth date in it.
pub fn cn_id(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = b[..17]
        .iter()
        .zip(W)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    let check = b"10X98765432"[(sum % 11) as usize];
    if b[17].to_ascii_uppercase() != check {
        return false;
    }
    let n = |r: std::ops::Range<usize>| s[r].parse::<u32>().unwrap_or(0);
    let (year, month, day) = (n(6..10), n(10..12), n(12..14));
    (1900..=2100).contains(&year) && (1..=12).contains(&month) && (1..=31).contains(&day)
}

/// The length (in bytes of `s`) of the valid IBAN at the start of `s`, if any: the
/// country's length when known, else the longest prefix that passes mod 97.
fn iban_end(s: &str) -> Option<usize> {
    // Positions in `s` after each alphanumeric character.
    let mut ends = Vec::new();
    let mut compact = String::new();
    for (i, c) in s.char_indices() {
        if c != ' ' {
            compact.push(c);
            ends.push(i + 1);
        }
    }
    let lengths: Vec<usize> = match iban_length(&compact[..2]) {
        Some(n) => vec![n],
        None => (15..=34).rev().collect(),
    };
    lengths
        .into_iter()
        .filter(|&n| n <= compact.len())
        .find(|&n| iban(&compact[..n]))
        .map(|n| ends[n - 1])
}

fn iban_length(country: &str) -> Option<usize> {
    Some(match country {
        "NO" => 15,
        "BE" => 16,
        "DK" | "FI" | "NL" | "FO" | "GL" => 18,
        "SI" => 19,
        "AT" | "BA" | "EE" | "KZ" | "LT" | "LU" | "XK" => 20,
        "CH" | "CR" | "HR" | "LI" | "LV" => 21,
        "BG" | "BH" | "DE" | "GB" | "GE" | "IE" | "ME" | "RS" => 22,
        "AE" | "GI" | "IL" | "TL" => 23,
        "AD" | "CZ" | "ES" | "MD" | "PK" | "RO" | "SA" | "SE" | "SK" | "TN" | "VG" => 24,
        "PT" | "ST" => 25,
        "IS" | "TR" => 26,
        "FR" | "GR" | "IT" | "MC" | "MR" | "SM" => 27,
        "AL" | "AZ" | "BY" | "CY" | "DO" | "GT" | "HU" | "LB" | "PL" | "SV" => 28,
        "BR" | "EG" | "PS" | "QA" | "UA" => 29,
        "JO" | "KW" | "MU" => 30,
        "MT" | "SC" => 31,
        "LC" => 32,
        _ => return None,
    })
}

/// The IBAN mod-97 check on a compact IBAN.
pub fn iban(s: &str) -> bool {
    if s.len() < 15 || !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let rotated = s[4..].chars().chain(s[..4].chars());
    let mut rem = 0u32;
    for c in rotated {
        let v = match c.to_digit(36) {
            Some(v) => v,
            None => return false,
        };
        rem = if v < 10 {
            (rem * 10 + v) % 97
        } else {
            (rem * 100 + v) % 97
        };
    }
    rem == 1
}

/// Base58check (Bitcoin P2PKH/P2SH, Litecoin, Tron): the last 4 bytes are the first 4
/// of SHA-256(SHA-256(payload)).
pub fn base58check(s: &str) -> bool {
    let Ok(bytes) = bs58::decode(s).into_vec() else {
        return false;
    };
    if bytes.len() < 21 {
        return false;
    }
    let (payload, check) = bytes.split_at(bytes.len() - 4);
    let h = Sha256::digest(Sha256::digest(payload));
    &h[..4] == check
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(Kind, String)> {
        let mut v: Vec<_> = find(text)
            .into_iter()
            .map(|s| (s.kind, text[s.start..s.end].to_string()))
            .collect();
        v.sort();
        v.dedup();
        v
    }

    #[test]
    fn checksums() {
        assert!(card("4111 1111 1111 1111"));
        assert!(!card("4111 1111 1111 1112"));
        assert!(iban("DE89370400440532013000"));
        assert!(!iban("DE89370400440532013001"));
        assert!(cn_id("11010519491231002X"));
        assert!(!cn_id("110105194912310021"));
        assert!(base58check("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"));
        assert!(!base58check("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3"));
    }

    #[test]
    fn finds_each_kind() {
        let t = "Mail bob.smith+x@example.co.uk or call +44 20 7946 0958; 手机 138 0013 8000. \
                 IBAN GB82 WEST 1234 5698 7654 32, card 4111-1111-1111-1111, 身份证11010519491231002X, \
                 host 192.168.1.20 and fe80::1ff:fe23:4567:890a, pay 0x52908400098527886E0F7030069857D2E4169EE7, \
                 https://api.example.com/v1?access_token=abcd1234efgh and https://www.rust-lang.org/learn";
        let got = kinds(t);
        let want = [
            (Kind::Email, "bob.smith+x@example.co.uk"),
            (Kind::Phone, "+44 20 7946 0958"),
            (Kind::Phone, "138 0013 8000"),
            (Kind::Iban, "GB82 WEST 1234 5698 7654 32"),
            (Kind::Card, "4111-1111-1111-1111"),
            (Kind::CnId, "11010519491231002X"),
            (Kind::Ip, "192.168.1.20"),
            (Kind::Ip, "fe80::1ff:fe23:4567:890a"),
            (Kind::Crypto, "0x52908400098527886E0F7030069857D2E4169EE7"),
            (
                Kind::Url,
                "https://api.example.com/v1?access_token=abcd1234efgh",
            ),
        ];
        for (k, s) in want {
            assert!(
                got.contains(&(k, s.to_string())),
                "{k:?} {s:?} not in {got:?}"
            );
        }
        assert!(!got.iter().any(|(_, s)| s.contains("rust-lang")), "{got:?}");
    }

    #[test]
    fn numbers_that_are_not_personal() {
        for t in [
            "Version 1.2.3.4 ships on 2024-05-06 at 10:30:45.",
            "Order 3 items at $19.99, total 59.97, ref 4111 1111 1111 1112.",
            "Flight CA1234 leaves at 08:15, seat 23A, 2 bags.",
            "The year 2023 had 365 days and 8760 hours.",
            "编号110105194912310021不是身份证",
        ] {
            assert!(kinds(t).is_empty(), "{t}: {:?}", kinds(t));
        }
    }

    #[test]
    fn addresses() {
        let got = kinds(
            "I moved to 221B Baker Street, London NW1 6XE last May. 我住在北京市朝阳区建国路88号3号楼",
        );
        assert!(
            got.iter()
                .any(|(k, s)| *k == Kind::Address && s.starts_with("221B Baker Street")),
            "{got:?}"
        );
        assert!(
            got.contains(&(Kind::Address, "北京市朝阳区建国路88号3号楼".into())),
            "{got:?}"
        );
    }
}
