//! Layer 3: names of people the memory does not know, found by the words around them
//! (a title, a greeting or sign-off, a known given name before a surname, a Chinese
//! surname before a form of address). It knows nothing of the owner; it catches the
//! plumber and the new colleague.

use std::sync::LazyLock;

use regex::Regex;

use crate::{Kind, Source, Span, re};

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
    "sofia",
    "jake",
    "ingrid",
    "nina",
    "hugo",
    "luca",
    "marco",
    "matteo",
    "giulia",
    "chiara",
    "francesca",
    "alessandro",
    "lorenzo",
    "pablo",
    "carmen",
    "lucia",
    "miguel",
    "sergio",
    "alba",
    "ines",
    "pedro",
    "joao",
    "beatriz",
    "mateo",
    "valentina",
    "camila",
    "mia",
    "lena",
    "lea",
    "jonas",
    "felix",
    "lukas",
    "finn",
    "elias",
    "katharina",
    "sebastian",
    "tobias",
    "niklas",
    "jan",
    "lars",
    "erik",
    "astrid",
    "freya",
    "sven",
    "anders",
    "nils",
    "karin",
    "sigrid",
    "olga",
    "ivan",
    "sergei",
    "natasha",
    "tatiana",
    "yuri",
    "anya",
    "katya",
    "pavel",
    "piotr",
    "tomasz",
    "marta",
    "agnieszka",
    "kasia",
    "magda",
    "zofia",
    "jakub",
    "filip",
    "ondrej",
    "petra",
    "tereza",
    "oscar",
    "camille",
    "manon",
    "louise",
    "jeanne",
    "pierre",
    "jean",
    "luc",
    "antoine",
    "mathieu",
    "nicolas",
    "julien",
    "olivier",
    "amelie",
    "celine",
    "helene",
    "francois",
    "renee",
    "noemie",
    "theo",
    "yasmin",
    "amir",
    "hassan",
    "karim",
    "leila",
    "layla",
    "nadia",
    "samir",
    "youssef",
    "mohamed",
    "ali",
    "reza",
    "rohan",
    "ananya",
    "kavya",
    "vikram",
    "deepak",
    "sanjay",
    "neha",
    "pooja",
    "anil",
    "sunil",
    "ravi",
    "kiran",
    "meera",
    "divya",
    "aarav",
    "ishaan",
    "haruto",
    "yuto",
    "sota",
    "ren",
    "hina",
    "yui",
    "sakura",
    "aoi",
    "takeshi",
    "akira",
    "minjun",
    "seojun",
    "jiwoo",
    "seoyeon",
    "jimin",
    "hyun",
    "minho",
    "jisoo",
    "sungmin",
    "thanh",
    "linh",
    "minh",
    "tuan",
    "nguyen",
    "bao",
    "chi",
    "jun",
    "hao",
    "ming",
    "li",
    "yan",
    "lei",
    "tao",
    "jing",
    "mason",
    "logan",
    "owen",
    "caleb",
    "dylan",
    "connor",
    "declan",
    "ciaran",
    "siobhan",
    "aoife",
    "niamh",
    "saoirse",
    "brendan",
    "fiona",
    "eilidh",
    "isla",
    "ewan",
    "callum",
    "hamish",
    "rhys",
    "dafydd",
    "carys",
    "bethan",
    "ava",
    "harper",
    "evelyn",
    "abigail",
    "scarlett",
    "madison",
    "penelope",
    "riley",
    "nora",
    "zoey",
    "violet",
    "aurora",
    "savannah",
    "audrey",
    "brooklyn",
    "bella",
    "skylar",
    "everly",
    "emilia",
    "kinsley",
    "naomi",
    "aaliyah",
    "ariana",
    "allison",
    "gabriella",
    "alexa",
    "madelyn",
    "cora",
    "adeline",
    "hailey",
    "gianna",
    "eliana",
    "nevaeh",
    "sadie",
    "lydia",
    "josephine",
    "emery",
    "delilah",
    "arianna",
    "vivian",
    "kaylee",
    "brielle",
    "madeline",
    "jackson",
    "aiden",
    "grayson",
    "carter",
    "jayden",
    "gabriel",
    "isaac",
    "lincoln",
    "adrian",
    "christian",
    "jaxon",
    "julian",
    "hudson",
    "ezra",
    "colton",
    "landon",
    "jeremiah",
    "easton",
    "nolan",
    "cameron",
    "gavin",
    "tristan",
    "elliot",
    "harvey",
    "archie",
    "alfie",
    "freddie",
    "teddie",
    "arthur",
    "albie",
    "reggie",
    "stanley",
    "ronnie",
    "tommy",
    "jenny",
    "becky",
    "vicky",
    "katie",
    "jess",
    "sam",
];

/// Chinese surnames, the most frequent first (single characters that are also very
/// common words, like 时 and 区, are left out: they would flag 小时 and 小区).
pub(crate) const CN_SURNAMES: &str = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蔡蒋余于杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金廖贾夏韦付方邹熊孟秦邱侯江尹薛闫段雷龙黎史陶贺顾毛郝龚邵万钱严覃武戴莫孔汤易常温康施文牛樊葛邢安齐伍庞颜倪高傅乔赖萧石殷柯翁童岳聂卓鲁苗储蒲焦饶";

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

/// Public figures: their names are not personal data.
const PUBLIC_FIGURES: &[&str] = &[
    "Albert Einstein",
    "Marie Curie",
    "Isaac Newton",
    "Charles Darwin",
    "Steve Jobs",
    "Bill Gates",
    "Elon Musk",
    "Jeff Bezos",
    "Mark Zuckerberg",
    "Taylor Swift",
    "Barack Obama",
    "Donald Trump",
    "Joe Biden",
    "William Shakespeare",
    "Jane Austen",
    "Leonardo da Vinci",
    "Nelson Mandela",
    "Martin Luther King",
    "Winston Churchill",
    "Abraham Lincoln",
    "George Washington",
    "Michael Jordan",
    "Lionel Messi",
    "Cristiano Ronaldo",
    "Warren Buffett",
    "Tim Cook",
    "Sam Altman",
    "Satya Nadella",
    "Sundar Pichai",
    "Jensen Huang",
    "Jack Ma",
    "Ada Lovelace",
    "Alan Turing",
    "Stephen Hawking",
    "Nikola Tesla",
    "Vincent van Gogh",
    "Pablo Picasso",
    "Queen Elizabeth",
    "King Charles",
    "Emma Watson",
    "Tom Hanks",
    "Lady Gaga",
    "Ed Sheeran",
];

/// Whether `s` is a word that a name cue or a sign-off would mistake for a name.
pub(crate) fn is_not_name(s: &str) -> bool {
    NOT_NAMES.contains(&s)
        || WORD_NAMES.contains(&s.to_lowercase().as_str())
        || PUBLIC_FIGURES.contains(&s)
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
static FULL_NAME: LazyLock<Regex> = LazyLock::new(|| {
    re(r"\b(\p{Lu}\p{Ll}+) ((?:O'|O’|Mc|Mac)?\p{Lu}\p{Ll}+(?:-\p{Lu}\p{Ll}+)?)\b")
});
/// A capitalised word, to look up among the given names.
static CAPITALISED: LazyLock<Regex> = LazyLock::new(|| re(r"\b\p{Lu}\p{Ll}+\b"));
static GIVEN: LazyLock<std::collections::HashSet<&'static str>> = LazyLock::new(|| {
    GIVEN_NAMES
        .iter()
        .copied()
        .filter(|n| !WORD_NAMES.contains(n))
        .collect()
});
/// Whether `word` (any case, accents or not) is a common given name that is not also
/// an everyday word.
pub(crate) fn is_given_name(word: &str) -> bool {
    is_given(word)
}
fn is_given(word: &str) -> bool {
    GIVEN.contains(crate::fold::fold(word).as_str())
}
/// "This is Elena from QuickFix", "my name is Tom Becker".
static INTRO: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:[Tt]his is|I'm|I am|[Mm]y name is|[Nn]ame's|[Ii]t's)\s+(\p{Lu}[\p{L}'’\-]+(?: \p{Lu}[\p{L}'’\-]+)?)\s+(?:from|at|with|here|of)\b",
    )
});
/// A label that introduces people ("Host:", "Attendees:", "收款人："), then the list.
static PEOPLE_LABEL: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?mi)(?:^|[\s(（,，;；])(?:host|guest|guests|passenger|account holder|beneficiary|payee|recipient|contact(?: at [\p{L}&. ]{1,30})?|attendees|participants|present|absent|emergency contact|landlord|tenant|driver|trainer|owner|户名|收款人|持卡人|联系人|参会|参会人|出席|缺席|同行|与会|经办人|对接人)\s*[:：]\s*([^\n]{1,200})",
    )
});
static LIST_ITEM: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(?:\p{Lu}[\p{L}'’\-]+(?: \p{Lu}[\p{L}'’\-]+){0,2}|[A-Z]{2,}/[A-Z]{2,}(?: M[RS]S?)?|\p{Han}{2,4})",
    )
});
/// Kinship and role words that stand where a name could.
const CN_NOT_PERSON: &[&str] = &[
    "我", "我们", "妈", "爸", "妈妈", "爸爸", "妹妹", "姐姐", "哥哥", "弟弟", "老婆", "老公",
    "儿子", "女儿", "奶奶", "爷爷", "外婆", "外公", "舅舅", "阿姨", "叔叔", "大家", "全体", "同事",
    "客户", "领导", "老板", "自己", "对方", "本人", "无", "暂无", "待定",
];
/// A chat line's speaker ("田甜：", "Sofia:").
static SPEAKER: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?m)^[ \t]*(\p{Lu}[\p{L}'’\-]+|\p{Han}{2,3})[ \t]*[:：]"));
static ME_SPEAKS: LazyLock<Regex> = LazyLock::new(|| re(r"(?m)^[ \t]*(?:我|me|Me)[ \t]*[:：]"));
static CN_SURNAME_START: LazyLock<Regex> = LazyLock::new(|| re(&format!("^(?:{})", cn_surnames())));
fn cn_surnames_re() -> &'static Regex {
    &CN_SURNAME_START
}
/// Whether `s` starts with a Chinese surname.
pub(crate) fn cn_surname_start(s: &str) -> bool {
    CN_SURNAME_START.is_match(s)
}
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
        r"(?:我叫|我是|名叫|叫做|[，,]叫|联系人|收件人|寄件人|发件人|姓名|签名|经办人|负责人|介绍人|紧急联系人|病人|患者|房东|租客|同事|朋友|老公|老婆|妻子|丈夫|儿子|女儿|户名|收款人|持卡人|顾问|助理|专员|经纪人|中介|新同事|找|问|@)[:：\s]*([小老阿]{surnames}|{surnames}\p{{Han}}{{1,2}}?)(?:[，,。.！!？?\s、）)]|牵头|负责|说|那边|定在|结婚|推荐|合唱|$)"
    ))
});

/// Pinyin syllables, to tell a romanised Chinese name ("Tang Haoran", "Siyuan Lin").
const PINYIN: &str = "a ai an ang ao ba bai ban bang bao bei ben beng bi bian biao bie bin bing bo bu ca cai can cang cao ce cen ceng cha chai chan chang chao che chen cheng chi chong chou chu chuai chuan chuang chui chun chuo ci cong cou cu cuan cui cun cuo da dai dan dang dao de dei den deng di dian diao die ding diu dong dou du duan dui dun duo e ei en eng er fa fan fang fei fen feng fo fou fu ga gai gan gang gao ge gei gen geng gong gou gu gua guai guan guang gui gun guo ha hai han hang hao he hei hen heng hong hou hu hua huai huan huang hui hun huo ji jia jian jiang jiao jie jin jing jiong jiu ju juan jue jun ka kai kan kang kao ke ken keng kong kou ku kua kuai kuan kuang kui kun kuo la lai lan lang lao le lei leng li lia lian liang liao lie lin ling liu long lou lu lv luan lue lun luo ma mai man mang mao me mei men meng mi mian miao mie min ming miu mo mou mu na nai nan nang nao ne nei nen neng ni nian niang niao nie nin ning niu nong nou nu nv nuan nue nuo o ou pa pai pan pang pao pei pen peng pi pian piao pie pin ping po pou pu qi qia qian qiang qiao qie qin qing qiong qiu qu quan que qun ran rang rao re ren reng ri rong rou ru ruan rui run ruo sa sai san sang sao se sen seng sha shai shan shang shao she shei shen sheng shi shou shu shua shuai shuan shuang shui shun shuo si song sou su suan sui sun suo ta tai tan tang tao te teng ti tian tiao tie ting tong tou tu tuan tui tun tuo wa wai wan wang wei wen weng wo wu xi xia xian xiang xiao xie xin xing xiong xiu xu xuan xue xun ya yan yang yao ye yi yin ying yo yong you yu yuan yue yun za zai zan zang zao ze zei zen zeng zha zhai zhan zhang zhao zhe zhei zhen zheng zhi zhong zhou zhu zhua zhuai zhuan zhuang zhui zhun zhuo zi zong zou zu zuan zui zun zuo";
/// Romanised Chinese surnames.
const PINYIN_SURNAMES: &str = "an cai cao chang chen cheng cui dai deng ding dong du duan fan fang feng fu gao ge gong gu guo han hao he hou hu huang jia jiang jin kang kong lai lei li liang liao lin liu long lu luo lv ma mao meng mo ni niu ou ouyang pan pang peng qi qian qiao qin qiu ren shao shen shi sima situ song su sun tan tang tao tian wan wang wei wen wu xia xiao xie xing xiong xu xue yan yang yao ye yi yin yu yuan zeng zhang zhao zheng zhong zhou zhu zhuge zou";
static PINYIN_SET: LazyLock<std::collections::HashSet<&'static str>> =
    LazyLock::new(|| PINYIN.split(' ').collect());
static PINYIN_SURNAME_SET: LazyLock<std::collections::HashSet<&'static str>> =
    LazyLock::new(|| PINYIN_SURNAMES.split(' ').collect());
/// Place names that read as a romanised name.
const NOT_PINYIN_NAMES: &[&str] = &[
    "hong kong",
    "xi an",
    "tian an",
    "da lian",
    "nan jing",
    "bei jing",
];

/// A Chinese name romanised in an e-mail's local part (`qiu.wenbo`, `wenbo_qiu`,
/// `zhang.xiaoming`): the given name and the surname, capitalised.
pub(crate) fn pinyin_from_local_part(local: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = local.split(['.', '_', '-']).collect();
    let [a, b] = parts.as_slice() else {
        return None;
    };
    let (a, b) = (a.to_lowercase(), b.to_lowercase());
    if !a.bytes().chain(b.bytes()).all(|c| c.is_ascii_lowercase()) {
        return None;
    }
    let cap = |w: &str| {
        let mut c = w.chars();
        c.next()
            .map(|f| f.to_uppercase().chain(c).collect::<String>())
            .unwrap_or_default()
    };
    // The given name is the longer-than-a-syllable side when both could be surnames.
    let pick = |sur: &str, given: &str| {
        (PINYIN_SURNAME_SET.contains(sur) && is_pinyin_given(given) && given.len() >= 4)
            .then(|| (cap(given), cap(sur)))
    };
    pick(&a, &b).or_else(|| pick(&b, &a))
}

/// Whether `w` (lower case) is one or two pinyin syllables.
fn is_pinyin_given(w: &str) -> bool {
    if PINYIN_SET.contains(w) {
        return true;
    }
    (1..w.len()).any(|i| {
        w.is_char_boundary(i) && PINYIN_SET.contains(&w[..i]) && PINYIN_SET.contains(&w[i..])
    })
}

/// Two capitalised words that are a pinyin surname and a pinyin given name, in either
/// order ("Tang Haoran", "Haoran Tang", "Na Li").
static TWO_WORDS: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b([A-Z][a-z]{1,6}) ([A-Z][a-z]{1,12})\b"));
fn pinyin_names(text: &str, push: &mut impl FnMut(usize, usize)) {
    for c in TWO_WORDS.captures_iter(text) {
        let (a, b) = (c.get(1).expect("g1"), c.get(2).expect("g2"));
        let (la, lb) = (a.as_str().to_lowercase(), b.as_str().to_lowercase());
        if NOT_PINYIN_NAMES.contains(&format!("{la} {lb}").as_str()) {
            continue;
        }
        let surname_first = PINYIN_SURNAME_SET.contains(la.as_str()) && is_pinyin_given(&lb);
        let surname_last = PINYIN_SURNAME_SET.contains(lb.as_str()) && is_pinyin_given(&la);
        // One short syllable each ("He Li", "Ma Na") is too often English.
        if (surname_first || surname_last) && la.len() + lb.len() >= 5 {
            push(a.start(), b.end());
        }
    }
}

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
        if is_given(first.as_str())
            && !NOT_NAMES.contains(&last.as_str())
            && !PUBLIC_FIGURES.contains(&&text[first.start()..last.end()])
        {
            push(first.start(), last.end());
        }
    }
    pinyin_names(text, &mut push);
    // A known given name alone ("bringing Elena", "Kevin says").
    for m in CAPITALISED.find_iter(text) {
        if is_given(m.as_str()) && !NOT_NAMES.contains(&m.as_str()) {
            push(m.start(), m.end());
        }
    }
    for c in INTRO.captures_iter(text) {
        let g = c.get(1).expect("group 1");
        let first = g.as_str().split(' ').next().unwrap_or("");
        if !NOT_NAMES.contains(&first) && !is_not_name(first) {
            push(g.start(), g.end());
        }
    }
    for c in PEOPLE_LABEL.captures_iter(text) {
        let list = c.get(1).expect("group 1");
        let mut at = list.start();
        for item in list.as_str().split([',', '，', '、', ';', '；', '/']) {
            let lead = item.len() - item.trim_start().len();
            let trimmed = item
                .trim_start()
                .trim_start_matches("and ")
                .trim_start_matches('和');
            let skip = item.len() - lead - trimmed.len();
            if let Some(m) = LIST_ITEM.find(trimmed) {
                let name = m.as_str();
                let han = name.chars().all(|c| c.is_alphabetic() && !c.is_ascii());
                let ok = if han {
                    !CN_NOT_PERSON.contains(&name)
                } else {
                    !NOT_NAMES.contains(&name) && !is_not_name(name)
                };
                if ok {
                    let s = at + lead + skip;
                    push(s, s + name.len());
                }
            }
            at += item.len() + 1;
            // the separators are one byte (ASCII) or three (CJK punctuation)
            if let Some(sep) = text[..list.end()]
                .get(at - 1..)
                .and_then(|r| r.chars().next())
                && !sep.is_ascii()
            {
                at += sep.len_utf8() - 1;
            }
        }
    }
    // Speakers of a chat the owner takes part in.
    if ME_SPEAKS.is_match(text) {
        for c in SPEAKER.captures_iter(text) {
            let g = c.get(1).expect("group 1");
            let name = g.as_str();
            let ok = if name.is_ascii() {
                is_given(name)
            } else {
                !CN_NOT_PERSON.contains(&name)
                    && cn_surnames_re().is_match(name)
                    && !is_not_name(name)
            };
            if ok {
                push(g.start(), g.end());
            }
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
