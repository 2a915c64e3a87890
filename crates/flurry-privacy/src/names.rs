//! Layer 3: names of people the memory does not know, found by the words around them
//! (a title, a greeting or sign-off, a known given name before a surname, a Chinese
//! surname before a form of address). It knows nothing of the owner; it catches the
//! plumber and the new colleague.

use std::sync::LazyLock;

use regex::Regex;

use crate::{Kind, Source, Span};

/// Common given names (English-speaking countries, plus frequent European and
/// romanised Asian ones): followed by a capitalised word they make a full name.
pub(crate) const GIVEN_NAMES: &[&str] = &[
    "aaron",
    "adam",
    "aditya",
    "ahmed",
    "aisha",
    "alan",
    "albert",
    "alex",
    "alexander",
    "alice",
    "alicia",
    "amanda",
    "amelia",
    "amy",
    "ana",
    "andrea",
    "andrew",
    "angela",
    "anna",
    "anne",
    "anthony",
    "arjun",
    "ashley",
    "barbara",
    "ben",
    "benjamin",
    "beth",
    "betty",
    "bill",
    "bob",
    "brandon",
    "brian",
    "carl",
    "carlos",
    "carol",
    "caroline",
    "catherine",
    "charles",
    "charlie",
    "charlotte",
    "chen",
    "chloe",
    "chris",
    "christina",
    "christine",
    "christopher",
    "claire",
    "daniel",
    "david",
    "deborah",
    "dennis",
    "diana",
    "diego",
    "dmitri",
    "donald",
    "donna",
    "dorothy",
    "ed",
    "edward",
    "elena",
    "elizabeth",
    "ella",
    "emily",
    "emma",
    "eric",
    "ethan",
    "eva",
    "fatima",
    "frank",
    "gary",
    "george",
    "grace",
    "greg",
    "hannah",
    "harry",
    "heather",
    "helen",
    "henry",
    "hiroshi",
    "ian",
    "isabella",
    "jack",
    "jacob",
    "james",
    "jane",
    "janet",
    "jason",
    "javier",
    "jeff",
    "jennifer",
    "jessica",
    "jim",
    "joe",
    "john",
    "jonathan",
    "jose",
    "joseph",
    "joshua",
    "juan",
    "julia",
    "julie",
    "karen",
    "kate",
    "katherine",
    "kathleen",
    "kelly",
    "kenji",
    "kevin",
    "kim",
    "laura",
    "lauren",
    "leo",
    "liam",
    "linda",
    "lisa",
    "lucas",
    "lucy",
    "luis",
    "luke",
    "maria",
    "marie",
    "mark",
    "martin",
    "mary",
    "matthew",
    "maya",
    "megan",
    "melissa",
    "michael",
    "michelle",
    "mike",
    "mohammed",
    "nancy",
    "natalie",
    "nathan",
    "nicholas",
    "nicole",
    "noah",
    "oliver",
    "olivia",
    "omar",
    "patricia",
    "patrick",
    "paul",
    "peter",
    "priya",
    "rachel",
    "rahul",
    "raj",
    "rebecca",
    "richard",
    "robert",
    "ryan",
    "samantha",
    "samuel",
    "sandra",
    "sara",
    "sarah",
    "scott",
    "sean",
    "sharon",
    "sophia",
    "sophie",
    "stephanie",
    "stephen",
    "steve",
    "steven",
    "susan",
    "thomas",
    "tim",
    "timothy",
    "tom",
    "tony",
    "victoria",
    "vincent",
    "wei",
    "william",
    "yuki",
    "zoe",
];

/// Chinese surnames, the most frequent first (single characters that are also very
/// common words, like 时 and 区, are left out: they would flag 小时 and 小区).
pub(crate) const CN_SURNAMES: &str = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蔡蒋余于杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金廖贾夏韦付方邹熊孟秦邱侯江尹薛闫段雷龙黎史陶贺顾毛郝龚邵万钱严覃武戴莫孔汤易常温康施文牛樊葛邢安齐伍庞颜倪";

/// Two-character Chinese surnames.
pub(crate) const CN_COMPOUND_SURNAMES: &[&str] = &[
    "欧阳", "司马", "诸葛", "上官", "东方", "慕容", "令狐", "皇甫", "尉迟", "公孙",
];

/// Forms of address after a Chinese surname or full name.
pub(crate) const CN_TITLES: &str = "先生|女士|小姐|老师|经理|总监|主任|医生|大夫|律师|教授|师傅|阿姨|叔叔|博士|同学|会计|处长|局长|院长|老板|校长|书记|护士|总";

/// Surnames that, after 小 or 老, are more often a word (小于, 老毛病, 小钱, 小康).
const CN_NOT_AFTER_XIAO_LAO: &str = "于毛钱康常文安方万金龙牛易史";

/// Capitalised words that follow a greeting or a given name without being a name.
const NOT_NAMES: &[&str] = &[
    "All",
    "Team",
    "Sir",
    "Madam",
    "Everyone",
    "There",
    "Both",
    "Guys",
    "Folks",
    "Again",
    "Friends",
    "Colleagues",
    "Morning",
    "Afternoon",
    "Evening",
    "The",
    "A",
    "An",
    "And",
    "Or",
    "But",
    "So",
    "For",
    "To",
    "In",
    "On",
    "At",
    "By",
    "With",
    "From",
    "Of",
    "I",
    "We",
    "You",
    "He",
    "She",
    "They",
    "It",
    "This",
    "That",
    "My",
    "Our",
    "Your",
    "His",
    "Her",
    "Their",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
    "Customer",
    "Support",
    "Sales",
    "Hiring",
    "Manager",
    "Is",
    "Was",
    "Will",
    "Can",
    "Please",
    "Thanks",
    "Thank",
    "Best",
    "Regards",
    "Cheers",
    "Hi",
    "Hello",
    "Dear",
    "Hey",
    "Yes",
    "No",
    "OK",
    "Okay",
];

/// Given names that are also everyday words: never matched alone as a part of a
/// known full name ("will", "may", "grace"), only within the full name.
pub(crate) const WORD_NAMES: &[&str] = &[
    "will", "may", "mark", "rose", "bill", "grace", "hope", "faith", "joy", "art", "frank", "jack",
    "sue", "pat", "don", "ray", "dawn", "summer", "april", "june", "august", "amber", "ruby",
    "iris", "lily", "jade", "holly", "ivy", "hunter", "chase", "drew", "max", "rob", "guy",
    "sandy", "rusty", "young", "king", "long", "wing", "white", "brown", "green", "black", "park",
    "lee", "rich", "bell", "hill", "wood", "stone", "cook", "baker", "miller", "smith", "page",
    "best", "gay", "love", "star", "sky", "river", "autumn", "winter", "crystal", "angel", "honey",
    "sunny", "happy", "lucky", "建国", "国庆", "海洋", "天明", "明天", "春天", "伟大", "文明",
    "光明", "平安", "和平", "东方", "新华", "中华", "长江", "海燕", "建华", "国强", "家乐", "小明",
];

/// Whether `s` is a word that a name cue or a sign-off would mistake for a name.
pub(crate) fn is_not_name(s: &str) -> bool {
    NOT_NAMES.contains(&s) || WORD_NAMES.contains(&s.to_lowercase().as_str())
}

fn re(s: &str) -> Regex {
    Regex::new(s).expect("a valid built-in pattern")
}

static TITLED: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Professor|Sir|Dame|Rev|Judge|Officer|Nurse|Coach|Uncle|Aunt|Auntie|Grandma|Grandpa)\.? +((?:[A-Z][a-zA-Z'’\-]+|O'[A-Z][a-z]+)(?: +(?:van |von |de |da |del |di |le |la )?[A-Z][a-zA-Z'’\-]+)?)",
    )
});
static GREETING: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?m)(?:^|[.!?]\s+)(?:Hi|Hello|Dear|Hey|Hiya|Morning|Thanks|Thank you|Cheers|Congrats|Congratulations),? +([A-Z][a-z]+(?:[ -][A-Z][a-z]+)?)\b",
    )
});
static SIGN_OFF: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?m)^[ \t]*(?:Best|Best regards|Kind regards|Regards|Warm regards|Cheers|Thanks|Thank you|Many thanks|Sincerely|Yours|Yours sincerely|All the best|Love|Talk soon|—|--)[,!.]?[ \t]*\r?\n[ \t]*([A-Z][a-z]+(?:[ -][A-Z][a-z]+){0,2})[ \t]*$",
    )
});
static FULL_NAME: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b([A-Z][a-z]+) ((?:O'|Mc|Mac)?[A-Z][a-z]+(?:-[A-Z][a-z]+)?)\b"));
fn cn_surnames() -> String {
    format!("(?:{}|[{}])", CN_COMPOUND_SURNAMES.join("|"), CN_SURNAMES)
}

static CN_TITLED: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"{}\p{{Han}}{{0,2}}?(?:{CN_TITLES})(?:[是共部结体之数额计统])?",
        cn_surnames()
    ))
});
static CN_NICKNAME: LazyLock<Regex> = LazyLock::new(|| re(&format!(r"[小老阿]([{CN_SURNAMES}])")));
static CN_CUE: LazyLock<Regex> = LazyLock::new(|| {
    let surnames = cn_surnames();
    re(&format!(
        r"(?:我叫|我是|名叫|叫做|联系人|收件人|寄件人|发件人|姓名|签名|经办人|负责人|介绍人|紧急联系人|病人|患者|房东|租客|同事|朋友|老公|老婆|妻子|丈夫|儿子|女儿)[:：\s]*({surnames}\p{{Han}}{{1,2}})"
    ))
});

/// Names found by their cues.
pub fn find(text: &str) -> Vec<Span> {
    let mut out = Vec::new();
    let mut push = |start, end| {
        out.push(Span {
            kind: Kind::Person,
            start,
            end,
            source: Source::Cue,
        })
    };
    for c in TITLED.captures_iter(text) {
        let g = c.get(1).expect("group 1");
        if !NOT_NAMES.contains(&g.as_str()) {
            push(c.get(0).expect("match").start(), g.end());
        }
    }
    for r in [&*GREETING, &*SIGN_OFF] {
        for c in r.captures_iter(text) {
            let g = c.get(1).expect("group 1");
            let first = g.as_str().split([' ', '-']).next().unwrap_or("");
            if !NOT_NAMES.contains(&first) {
                push(g.start(), g.end());
            }
        }
    }
    for c in FULL_NAME.captures_iter(text) {
        let (first, last) = (c.get(1).expect("g1"), c.get(2).expect("g2"));
        if GIVEN_NAMES.contains(&first.as_str().to_ascii_lowercase().as_str())
            && !NOT_NAMES.contains(&last.as_str())
        {
            push(first.start(), last.end());
        }
    }
    for m in CN_TITLED.find_iter(text) {
        // 总 followed by 是, 共, 部… is "always", "in all", "headquarters": not a title.
        // The regex takes that next character only to look at it.
        let s = m.as_str();
        let mut end = m.end();
        if let Some(last) = s
            .chars()
            .next_back()
            .filter(|c| "是共部结体之数额计统".contains(*c))
        {
            if s[..s.len() - last.len_utf8()].ends_with('总') {
                continue;
            }
            end -= last.len_utf8();
        }
        push(m.start(), end);
    }
    for c in CN_NICKNAME.captures_iter(text) {
        let g = c.get(1).expect("group 1");
        if !CN_NOT_AFTER_XIAO_LAO.contains(g.as_str()) {
            push(c.get(0).expect("match").start(), g.end());
        }
    }
    for c in CN_CUE.captures_iter(text) {
        let g = c.get(1).expect("group 1");
        push(g.start(), g.end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(t: &str) -> Vec<&str> {
        find(t).into_iter().map(|s| &t[s.start..s.end]).collect()
    }

    #[test]
    fn cues_find_strangers() {
        let n = names(
            "Hi Kevin,\nthe plumber Mr. O'Brien comes with Sarah Connelly on Monday.\n\nBest,\nTomasz Nowak",
        );
        for want in ["Kevin", "Mr. O'Brien", "Sarah Connelly", "Tomasz Nowak"] {
            assert!(n.contains(&want), "{want} not in {n:?}");
        }
        let n = names("明天和刘经理开会，小陈负责记录，联系人：赵丽颖。");
        for want in ["刘经理", "小陈", "赵丽颖"] {
            assert!(n.contains(&want), "{want} not in {n:?}");
        }
    }

    #[test]
    fn words_that_look_like_names_are_not() {
        assert!(names("Dear Sir, I will mark the date in May. Hello Team").is_empty());
        assert!(
            names("小时候住在小区里，老师说时间到了。").is_empty(),
            "{:?}",
            names("小时候住在小区里，老师说时间到了。")
        );
    }
}
