#!/usr/bin/env python3
"""Generate the evaluation set for the Flurry PII scrubber.

Writes, next to this file:
  memory/       the owner's private memory corpus (mails as .eml, notes as .md/.txt)
  eval.jsonl    labelled texts (one JSON object per line)
  README.md     description, label rules and counts

Deterministic: a single random.Random(SEED) drives everything, so running the
script twice produces byte-identical files. Python 3 standard library only.

Usage:  python3 tests/privacy/make_eval.py
"""

import datetime
import hashlib
import json
import os
import random
import re
import shutil
import sys
import textwrap
import unicodedata
from collections import Counter, defaultdict
from email.header import Header
from email.utils import format_datetime

SEED = 20240517
HERE = os.path.dirname(os.path.abspath(__file__))
MEMORY_DIR = os.path.join(HERE, "memory")
EVAL_PATH = os.path.join(HERE, "eval.jsonl")
README_PATH = os.path.join(HERE, "README.md")

# Probability that a "mixed" person/place slot refers to something in memory.
P_KNOWN = 0.8

# ---------------------------------------------------------------------------
# Checksummed identifiers
# ---------------------------------------------------------------------------


def luhn_ok(digits):
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def luhn_complete(prefix_without_check):
    for c in "0123456789":
        if luhn_ok(prefix_without_check + c):
            return prefix_without_check + c
    raise AssertionError


def iban_ok(iban):
    s = iban.replace(" ", "")
    s = s[4:] + s[:4]
    num = "".join(str(int(c, 36)) for c in s)
    return int(num) % 97 == 1


def make_iban(country, bban):
    num = "".join(str(int(c, 36)) for c in bban + country + "00")
    check = 98 - int(num) % 97
    iban = "%s%02d%s" % (country, check, bban)
    assert iban_ok(iban)
    return iban


def group4(s):
    return " ".join(s[i:i + 4] for i in range(0, len(s), 4))


CN_ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
CN_ID_CHECK = "10X98765432"


def cnid_check(first17):
    return CN_ID_CHECK[sum(int(a) * b for a, b in zip(first17, CN_ID_WEIGHTS)) % 11]


def cnid_ok(s):
    return len(s) == 18 and s[:17].isdigit() and cnid_check(s[:17]) == s[17]


def es_control_digits(bank, branch, account):
    w = [1, 2, 4, 8, 5, 10, 9, 7, 3, 6]

    def dc(ds):
        d = 11 - sum(int(a) * b for a, b in zip(ds, w)) % 11
        return {11: 0, 10: 1}.get(d, d)

    return "%d%d" % (dc("00" + bank + branch), dc(account))


# --- bech32 (BIP-173) -------------------------------------------------------
BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _bech32_polymod(values):
    gen = [0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3]
    chk = 1
    for v in values:
        b = chk >> 25
        chk = ((chk & 0x1FFFFFF) << 5) ^ v
        for i in range(5):
            if (b >> i) & 1:
                chk ^= gen[i]
    return chk


def _hrp_expand(hrp):
    return [ord(x) >> 5 for x in hrp] + [0] + [ord(x) & 31 for x in hrp]


def _convertbits(data, frombits, tobits):
    acc, bits, ret = 0, 0, []
    maxv = (1 << tobits) - 1
    for value in data:
        acc = (acc << frombits) | value
        bits += frombits
        while bits >= tobits:
            bits -= tobits
            ret.append((acc >> bits) & maxv)
    if bits:
        ret.append((acc << (tobits - bits)) & maxv)
    return ret


def bech32_segwit_v0(program, hrp="bc"):
    data = [0] + _convertbits(program, 8, 5)
    polymod = _bech32_polymod(_hrp_expand(hrp) + data + [0] * 6) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(BECH32_CHARSET[d] for d in data + checksum)


# --- base58check ------------------------------------------------------------
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def base58check(version, payload):
    raw = bytes([version]) + payload
    raw += hashlib.sha256(hashlib.sha256(raw).digest()).digest()[:4]
    n = int.from_bytes(raw, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = B58[r] + out
    pad = len(raw) - len(raw.lstrip(b"\0"))
    return "1" * pad + out


# --- keccak-256 (for EIP-55 mixed-case Ethereum addresses) -------------------
_RC = [
    0x0000000000000001, 0x0000000000008082, 0x800000000000808A, 0x8000000080008000,
    0x000000000000808B, 0x0000000080000001, 0x8000000080008081, 0x8000000000008009,
    0x000000000000008A, 0x0000000000000088, 0x0000000080008009, 0x000000008000000A,
    0x000000008000808B, 0x800000000000008B, 0x8000000000008089, 0x8000000000008003,
    0x8000000000008002, 0x8000000000000080, 0x000000000000800A, 0x800000008000000A,
    0x8000000080008081, 0x8000000000008080, 0x0000000080000001, 0x8000000080008008,
]
_ROT = [[0, 36, 3, 41, 18], [1, 44, 10, 45, 2], [62, 6, 43, 15, 61],
        [28, 55, 25, 21, 56], [27, 20, 39, 8, 14]]
_M64 = (1 << 64) - 1


def _rol(x, n):
    return ((x << n) | (x >> (64 - n))) & _M64 if n else x


def _keccak_f(a):
    for rnd in range(24):
        c = [a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20] for x in range(5)]
        d = [c[(x - 1) % 5] ^ _rol(c[(x + 1) % 5], 1) for x in range(5)]
        a = [a[i] ^ d[i % 5] for i in range(25)]
        b = [0] * 25
        for x in range(5):
            for y in range(5):
                b[y + 5 * ((2 * x + 3 * y) % 5)] = _rol(a[x + 5 * y], _ROT[x][y])
        a = [b[i] ^ ((~b[(i % 5 + 1) % 5 + 5 * (i // 5)]) & b[(i % 5 + 2) % 5 + 5 * (i // 5)])
             for i in range(25)]
        a[0] ^= _RC[rnd]
    return a


def keccak256(data):
    rate = 136
    msg = bytearray(data) + b"\x01"
    while len(msg) % rate:
        msg += b"\0"
    msg[-1] |= 0x80
    state = [0] * 25
    for off in range(0, len(msg), rate):
        block = msg[off:off + rate]
        for i in range(rate // 8):
            state[i] ^= int.from_bytes(block[8 * i:8 * i + 8], "little")
        state = _keccak_f(state)
    return b"".join(state[i].to_bytes(8, "little") for i in range(4))


def eip55(hex40):
    h = keccak256(hex40.encode()).hex()
    return "0x" + "".join(c.upper() if c.isalpha() and int(h[i], 16) >= 8 else c
                          for i, c in enumerate(hex40))


def _self_test():
    assert keccak256(b"").hex() == \
        "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    assert eip55("5aaeb6053f3e94c9b9a09f33669435e7ef1beaed") == \
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
    assert bech32_segwit_v0(bytes.fromhex("751e76e8199196d454941c45d1b3a323f1433bd6")) == \
        "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
    assert base58check(0, bytes(20)) == "1111111111111111111114oLvT2"
    assert iban_ok("GB82 WEST 1234 5698 7654 32")
    assert cnid_ok("11010519491231002X")
    assert luhn_ok("4111111111111111")


# ---------------------------------------------------------------------------
# The owner
# ---------------------------------------------------------------------------

OWNER = dict(
    zh="林思远", en="Simon Lin", first="Simon", sur="林", given="思远",
    py="Lin Siyuan", py2="Siyuan Lin", pnr="LIN/SIYUAN MR",
    email="simon.lin@fastmail.com", wemail="linsiyuan@lantu-tech.cn",
    phone="+86 139 1628 4417",
    phone_forms=["+86 139 1628 4417", "139 1628 4417", "13916284417", "+86 139-1628-4417"],
    ukphone="+44 7700 900461",
    home="上海市徐汇区永嘉路386弄7号302室",
    home_forms=["上海市徐汇区永嘉路386弄7号302室", "上海市徐汇区永嘉路386弄7号302室",
                "徐汇区永嘉路386弄7号302室", "永嘉路386弄7号302室"],
    home_en="Room 302, No. 7, Lane 386 Yongjia Road, Xuhui District, Shanghai 200031",
    office="上海市浦东新区碧波路690号3号楼5层",
    office_en="5F, Building 3, 690 Bibo Road, Pudong New Area, Shanghai",
    london="Flat 4, 18 Aldridge Road Villas, London W11 1BL",
    company_zh="上海澜图信息科技有限公司", company_en="Lantu Technology",
    iban=make_iban("GB", "BARC" + "200415" + "53829104"),
    card=luhn_complete("492918830571462"),          # Barclays Visa
    unionpay=luhn_complete("622588021761930"),      # 招商银行借记卡
    cnid="31010419900315771" + cnid_check("31010419900315771"),
)

OWNER_IDS = {
    "passport": ["E61839274"],
    "cmb": ["8827461093"],                       # 招商银行一网通客户号
    "pingan": ["PA-HLT-2023-0871245"],           # 平安健康险保单号
    "axa": ["AXA-TR-77120458"],                  # AXA travel insurance policy
    "phoenix": ["006228155373", "0062 2815 5373"],  # 国航知音卡
    "bonvoy": ["884291035", "884 291 035"],      # Marriott Bonvoy
    "ni": ["JT 48 19 27 C", "JT481927C"],        # UK National Insurance number
    "utr": ["53829 10466", "5382910466"],        # HMRC Unique Taxpayer Reference
    "emp": ["LT-04417"],                         # employee number
    "power": ["3102915578"],                     # 国家电网户号
    "patient": ["MZ20230418112"],                # 瑞金医院就诊卡号
    "gym": ["PF-2231-9087"],                     # Pure Fitness membership
    "barclays": ["3316 7742 059", "33167742059"],  # Barclays customer ID
}

PROJECTS_EN = ["Bluefin", "Nightjar", "Halcyon", "Copperleaf"]
PROJECTS_ZH = ["蓝鲸", "青鸟", "磐石"]
PROJECTS_NEW_EN = ["Tamarind", "Marigold", "Sundial", "Foxglove"]
PROJECTS_NEW_ZH = ["银杏", "雪豹", "玄武"]

# Places the owner keeps in the addresses note (restaurants, gym, ...).
PLACES_ZH = [
    "上海市静安区常德路800号",           # 常去的火锅店
    "上海市徐汇区龙华中路596号",         # 羽毛球馆
    "上海市黄浦区马当路245号",           # 健身房
    "上海市长宁区仙霞路99号",            # 公司团建常去的餐厅
]
PLACES_EN = [
    "22 Neal Street, London WC2H 9PS",
    "41 Rue Oberkampf, 75011 Paris",
    "Calle de Fuencarral 78, 28004 Madrid",
]

# Addresses that are NOT in memory.
ADDR_ZH_NEW = [
    "北京市朝阳区建国路88号",
    "北京市朝阳区建国路88号2号楼1605室",
    "北京市海淀区中关村大街27号",
    "广州市天河区体育西路191号",
    "深圳市南山区高新南七道12号",
    "杭州市拱墅区湖墅南路215号",
    "成都市武侯区人民南路四段27号",
    "上海市黄浦区淮海中路283号",
    "南京市鼓楼区中山北路105号",
    "上海市闵行区七莘路3555弄24号601室",
    "苏州市工业园区星湖街328号",
    "武汉市江汉区解放大道690号",
    "上海市杨浦区大学路219号",
    "上海市普陀区长寿路155号",
    "厦门市思明区中山路38号",
    "上海市浦东新区张杨路1500号",
]
ADDR_EN_NEW = [
    "1287 Valencia Street, San Francisco, CA 94110",
    "89 Kingsland Road, London E2 8AG",
    "Hauptstraße 23, 10827 Berlin",
    "Calle de Serrano 41, 28001 Madrid",
    "15 Rosewood Drive, Cambridge CB1 3LP",
    "Rua da Rosa 112, 1200-389 Lisboa",
    "7 Nørrebrogade, 2200 København N",
    "410 Pine Street, Apt 3C, Seattle, WA 98101",
    "56 Rue de la Roquette, 75011 Paris",
    "12 Grafton Street, Dublin 2, D02 YX66",
    "Keizersgracht 317, 1016 EE Amsterdam",
    "3 Marlborough Place, Brighton BN1 1UB",
]
ADDR_ZHEN_NEW = [
    "No. 283 Huaihai Middle Road, Huangpu District, Shanghai",
    "No. 1500 Zhangyang Road, Pudong, Shanghai",
    "88 Jianguo Road, Chaoyang District, Beijing",
    "Room 1203, No. 55 Wulumuqi Middle Road, Xuhui, Shanghai",
    "No. 1333 Beijing West Road, Jing'an District, Shanghai",
    "No. 215 Hushu South Road, Gongshu District, Hangzhou",
]

# ---------------------------------------------------------------------------
# Contacts in memory
# ---------------------------------------------------------------------------
# zh fields: full, sur, given, g, hon (honorific suffix), age, py, en
# en fields: full, first, last, g, title


def zc(full, sur, g, hon, age, py, email, phone, co, role, tags, addr=None, nick=None,
       en=None, cnid=None):
    return dict(lang="zh", full=full, sur=sur, given=full[len(sur):], g=g, hon=hon, age=age,
                py=py, email=email, phone=phone, co=co, role=role, tags=set(tags),
                addr=addr, nick=nick or [], en=en, cnid=cnid)


def ec(full, g, title, email, phone, co, role, tags, addr=None, zh=None):
    first, last = full.split(" ", 1)
    return dict(lang="en", full=full, first=first, last=last, g=g, title=title,
                email=email, phone=phone, co=co, role=role, tags=set(tags), addr=addr,
                zh=zh, cnid=None)


ZH_CONTACTS = [
    zc("王建国", "王", "m", "总", "old", "Wang Jianguo", "wangjianguo@hengyuan-wl.com",
       "138 0013 8000", "恒远物流有限公司", "总经理", ["client", "work"],
       addr=["上海市静安区江宁路445号恒远大厦12楼", "江宁路445号恒远大厦12楼"]),
    zc("李娜", "李", "f", "经理", "young", "Li Na", "lina@lantu-tech.cn", "186 2173 5521",
       "上海澜图信息科技有限公司", "产品经理", ["colleague", "work"], nick=["娜娜"]),
    zc("张伟", "张", "m", "先生", "old", "Zhang Wei", "zhangwei1968@163.com", "139 0195 7732",
       "", "房东", ["landlord"], addr=["上海市长宁区愚园路1088弄12号"],
       cnid="31010519680722" + "403"),
    zc("陈静", "陈", "f", "老师", "young", "Chen Jing", "chenjing_piano@qq.com",
       "137 6402 1185", "静音琴房", "钢琴老师", ["teacher"],
       addr=["上海市徐汇区天平路88号2楼"]),
    zc("刘洋", "刘", "m", "医生", "old", "Liu Yang", "dr.liuyang@rjhospital.cn", "021-6437 0045",
       "瑞金医院心内科", "主任医师", ["doctor"]),
    zc("赵敏", "赵", "f", "姐", "old", "Zhao Min", "zhaomin.cpa@126.com", "135 1204 6678",
       "明信会计师事务所", "注册会计师", ["accountant"],
       addr=["上海市虹口区四川北路1318号9楼"]),
    zc("周杰", "周", "m", "经理", "young", "Zhou Jie", "zhoujie_pa@163.com", "159 2188 0362",
       "平安人寿上海分公司", "保险顾问", ["insurance"]),
    zc("吴磊", "吴", "m", "先生", "old", "Wu Lei", "wulei.sh@gmail.com", "150 2166 9013",
       "", "大学同学", ["friend"], addr=["上海市杨浦区国权路525弄3号601室"]),
    zc("黄晓燕", "黄", "f", "女士", "young", "Huang Xiaoyan", "xiaoyan.huang@outlook.com",
       "188 1760 2235", "", "朋友", ["friend"], nick=["晓燕", "燕子"],
       addr=["上海市普陀区曹杨路1040弄2号1102室"]),
    zc("孙浩", "孙", "m", "工", "young", "Sun Hao", "sunhao@lantu-tech.cn", "177 2105 8846",
       "上海澜图信息科技有限公司", "后端工程师", ["colleague", "work"]),
    zc("马丽华", "马", "f", "阿姨", "old", "Ma Lihua", None, "133 1188 2760", "", "钟点工",
       ["home"], nick=["丽华"]),
    zc("胡军", "胡", "m", "律师", "old", "Hu Jun", "hujun@junheng-law.com", "021-6288 1357",
       "君衡律师事务所", "合伙人", ["lawyer"],
       addr=["上海市黄浦区延安东路588号18楼"]),
    zc("郭芳", "郭", "f", "姐", "old", "Guo Fang", "guofang@lantu-tech.cn", "139 1776 3051",
       "上海澜图信息科技有限公司", "人力资源总监", ["hr", "work"]),
    zc("林思雨", "林", "f", None, "young", "Lin Siyu", "linsiyu0912@qq.com", "136 5718 2294",
       "", "妹妹", ["family", "sister"], addr=["杭州市西湖区古墩路616弄5幢2单元301室"],
       cnid="33010619930912" + "362"),
    zc("周美兰", "周", "f", "阿姨", "old", "Zhou Meilan", None, "0571-8821 6630", "", "妈妈",
       ["family", "mother"], addr=["杭州市上城区清泰街358号3单元502室"]),
    zc("林国栋", "林", "m", "叔叔", "old", "Lin Guodong", None, "139 5710 4426", "", "爸爸",
       ["family", "father"], addr=["杭州市上城区清泰街358号3单元502室"]),
    zc("何雪", "何", "f", "经理", "young", "He Xue", "hexue@lantu-tech.cn", "182 1722 4093",
       "上海澜图信息科技有限公司", "设计师", ["colleague", "work"]),
    zc("高远", "高", "m", "总", "old", "Gao Yuan", "gaoyuan@beichen-capital.com",
       "139 0108 5521", "北辰资本", "合伙人", ["investor", "work"],
       addr=["北京市朝阳区建国路79号2号楼1806室"]),
    zc("郑婷婷", "郑", "f", "经理", "young", "Zheng Tingting", "tingting.zheng@homelink-sh.com",
       "158 0217 6634", "链居地产", "房产经纪人", ["agent"], nick=["婷婷"]),
    zc("罗斌", "罗", "m", "师傅", "old", "Luo Bin", None, "138 1622 0917", "斌记汽修",
       "汽修师傅", ["mechanic"], addr=["上海市闵行区虹梅南路2588号"]),
]
for _c in ZH_CONTACTS:
    if _c["cnid"]:
        _c["cnid"] += cnid_check(_c["cnid"])
        assert cnid_ok(_c["cnid"])

EN_CONTACTS = [
    ec("José Álvarez", "m", "Mr.", "jose.alvarez@brisamar.es", "+34 612 345 678",
       "Brisamar Tecnologías", "CTO", ["partner", "work"],
       addr=["Calle de Fuencarral 78, 28004 Madrid"]),
    ec("Mark Thompson", "m", "Mr.", "mark.thompson@clerkenwelltax.co.uk", "+44 20 7946 0958",
       "Clerkenwell Tax Partners LLP", "Chartered Accountant", ["accountant"],
       addr=["14 Clerkenwell Close, London EC1R 0AA"]),
    ec("Rose Miller", "f", "Ms.", "rosemiller84@gmail.com", "+44 7700 900218", "",
       "friend", ["friend"], addr=["9 Orchard Lane, Bath BA1 5PS"]),
    ec("Will Harris", "m", "Mr.", "will.harris@lantu-tech.cn", "+86 186 2190 4471",
       "Lantu Technology", "Engineering Manager", ["colleague", "work"]),
    ec("May Okafor", "f", "Ms.", "may@okaforstudio.com", "+44 7700 900577", "Okafor Studio",
       "Designer", ["work", "freelancer"]),
    ec("Paul Martin", "m", "Mr.", "paul.martin@hallmark-insure.co.uk", "+44 20 7946 0412",
       "Hallmark Insurance Brokers", "Broker", ["broker"]),
    ec("Björn Lindqvist", "m", "Mr.", "bjorn.lindqvist@nordvikcapital.se", "+46 70 123 45 67",
       "Nordvik Capital", "Partner", ["investor", "work"]),
    ec("Chloé Lefèvre", "f", "Ms.", "chloe.lefevre@orange.fr", "+33 6 12 34 56 78", "",
       "friend", ["friend"], addr=["18 Rue des Martyrs, 75009 Paris"]),
    ec("Priya Natarajan", "f", "Dr.", "p.natarajan@harleymedical.co.uk", "+44 20 7946 0733",
       "Harley Medical Group", "Consultant Endocrinologist", ["doctor"],
       addr=["120 Harley Street, London W1G 7JW"]),
    ec("Hannah Schmidt", "f", "Ms.", "h.schmidt@kranich-gmbh.de", "+49 30 9018 2240",
       "Kranich GmbH", "Head of Operations", ["client", "work"],
       addr=["Kastanienallee 12, 10435 Berlin"]),
    ec("Liam O'Connor", "m", "Mr.", "liam.oconnor@lantu-tech.cn", "+86 185 0211 3378",
       "Lantu Technology", "Data Engineer", ["colleague", "work"]),
    ec("Fatima Haddad", "f", "Ms.", "fatima.haddad@talentbridge.io", "+971 50 123 4567",
       "Talent Bridge", "Recruiter", ["recruiter"]),
    ec("Renée Dubois", "f", "Ms.", "renee.dubois@afshanghai.org", "+86 137 0172 5580",
       "Alliance Française de Shanghai", "French teacher", ["teacher"]),
    ec("Greg Kowalski", "m", "Mr.", "greg@kowalski.dev", "(415) 555-0132", "Kowalski Dev",
       "Freelance developer", ["work", "freelancer"]),
    ec("Emily Carter", "f", "Ms.", "emily.carter@protonmail.com", "(646) 555-0187", "",
       "friend", ["friend"], addr=["233 Bleecker Street, Apt 4B, New York, NY 10014"]),
    ec("David Chen", "m", "Dr.", "david.chen@pinecrest.edu", "+1 650-555-0148",
       "Pinecrest University", "Associate Professor", ["partner", "work"], zh="陈伟"),
    ec("Sarah Goldberg", "f", "Ms.", "sarah@foundry-ventures.com", "+1 (212) 555-0147",
       "Foundry Ventures", "Principal", ["investor", "work"]),
]

CONTACTS = ZH_CONTACTS + EN_CONTACTS

# ---------------------------------------------------------------------------
# Strangers (never written to memory)
# ---------------------------------------------------------------------------

ZH_STRANGERS = [
    ("刘强", "刘", "m", "Liu Qiang"), ("杨帆", "杨", "m", "Yang Fan"),
    ("徐丽", "徐", "f", "Xu Li"), ("宋雅琴", "宋", "f", "Song Yaqin"),
    ("冯涛", "冯", "m", "Feng Tao"), ("曹雪", "曹", "f", "Cao Xue"),
    ("彭磊", "彭", "m", "Peng Lei"), ("董雨欣", "董", "f", "Dong Yuxin"),
    ("谢宁", "谢", "m", "Xie Ning"), ("蒋文博", "蒋", "m", "Jiang Wenbo"),
    ("沈嘉怡", "沈", "f", "Shen Jiayi"), ("袁野", "袁", "m", "Yuan Ye"),
    ("梁静", "梁", "f", "Liang Jing"), ("唐浩然", "唐", "m", "Tang Haoran"),
    ("田甜", "田", "f", "Tian Tian"), ("邵峰", "邵", "m", "Shao Feng"),
    ("程雅", "程", "f", "Cheng Ya"), ("魏东", "魏", "m", "Wei Dong"),
    ("叶子涵", "叶", "f", "Ye Zihan"), ("钱坤", "钱", "m", "Qian Kun"),
]
EN_STRANGERS = [
    ("Kevin Doyle", "m"), ("Aisha Rahman", "f"), ("Tom Becker", "m"), ("Nina Petrova", "f"),
    ("Marco Rossi", "m"), ("Lucy Grant", "f"), ("Omar Farouk", "m"), ("Ingrid Svensson", "f"),
    ("Jake Morrison", "m"), ("Elena Vásquez", "f"), ("Raj Mehta", "m"),
    ("Claire Fontaine", "f"), ("Ben Whitaker", "m"), ("Sofia Costa", "f"),
    ("Daniel Kim", "m"), ("Grace O'Neill", "f"), ("Lukas Brandt", "m"), ("Zoë Adams", "f"),
]

# Not labelled: public figures, places, companies.
FAMOUS_EN = ["Einstein", "Marie Curie", "Taylor Swift", "Elon Musk", "Shakespeare",
             "Steve Jobs", "Lionel Messi", "Barack Obama"]
FAMOUS_ZH = ["马云", "鲁迅", "李白", "苏轼", "姚明", "屠呦呦", "莫言", "雷军"]
CITIES_EN = ["Paris", "London", "Berlin", "Tokyo", "Singapore", "Lisbon", "New York"]
CITIES_ZH = ["北京", "杭州", "深圳", "成都", "广州", "南京", "西安", "厦门"]
PUBLIC_URLS = [
    "https://www.rust-lang.org/learn",
    "https://docs.python.org/3/library/json.html",
    "https://github.com/rust-lang/rust/issues/112233",
    "https://www.12306.cn/index/",
    "https://map.baidu.com/",
    "https://en.wikipedia.org/wiki/Great_Wall_of_China",
    "https://www.google.com/search?q=tokio+select+timeout",
    "https://example.com/newsletter?utm_source=mail&utm_medium=email",
    "https://docs.rs/serde_json/latest/serde_json/",
    "https://www.bbc.co.uk/news/technology",
    "https://developer.mozilla.org/en-US/docs/Web/HTTP/Headers",
]
PRODUCTS_ZH = ["空气净化器", "机械键盘", "儿童绘本一套", "不粘锅", "蓝牙耳机", "登山鞋",
               "咖啡豆（两包）", "羽毛球拍"]
PRODUCTS_EN = ["noise-cancelling headphones", "a cast-iron skillet", "two paperbacks",
               "a desk lamp", "running shoes", "a 4TB external drive"]


# ---------------------------------------------------------------------------
# Random value generators (all driven by the caller's rng)
# ---------------------------------------------------------------------------

CN_MOBILE_PREFIX = ["130", "131", "132", "135", "136", "137", "138", "139", "150", "151",
                    "152", "157", "158", "159", "177", "182", "186", "187", "188", "199"]


def gen_phone(rng, kind=None):
    kind = kind or rng.choice(["cn", "cn", "cn", "cnl", "uk", "us", "fr", "de"])
    d = lambda n: "".join(rng.choice("0123456789") for _ in range(n))  # noqa: E731
    if kind == "cn":
        p, a, b = rng.choice(CN_MOBILE_PREFIX), d(4), d(4)
        return rng.choice([f"{p} {a} {b}", f"{p}{a}{b}", f"+86 {p}-{a}-{b}",
                           f"+86 {p} {a} {b}", f"{p}-{a}-{b}"])
    if kind == "cnl":
        area = rng.choice(["010", "021", "0571", "020", "0755", "028"])
        first = str(rng.randint(5, 8))
        local = first + d(3) + " " + d(4) if area in ("010", "021", "020", "0755") \
            else first + d(2) + " " + d(4)
        return rng.choice([f"{area}-{local}", f"{area}-{local.replace(' ', '')}",
                           f"+86 {area[1:]} {local}"])
    if kind == "uk":
        return rng.choice([f"+44 20 7946 0{d(3)}", f"+44 7700 900{d(3)}", f"07700 900{d(3)}",
                           f"020 7946 0{d(3)}"])
    if kind == "us":
        area = rng.choice(["415", "212", "646", "617", "206", "312"])
        last = "01" + d(2)
        return rng.choice([f"({area}) 555-{last}", f"+1 {area}-555-{last}",
                           f"{area}.555.{last}", f"+1 ({area}) 555-{last}"])
    if kind == "fr":
        return rng.choice([f"+33 6 {d(2)} {d(2)} {d(2)} {d(2)}",
                           f"06 {d(2)} {d(2)} {d(2)} {d(2)}"])
    if kind == "de":
        return rng.choice([f"+49 30 {d(4)} {d(4)}", f"+49 151 {d(8)}"])
    raise ValueError(kind)


def gen_iban(rng):
    d = lambda n: "".join(rng.choice("0123456789") for _ in range(n))  # noqa: E731
    country = rng.choice(["GB", "DE", "DE", "ES", "CH", "AT", "IE", "GB"])
    if country == "GB":
        bban = rng.choice(["BARC", "NWBK", "MIDL", "LOYD", "HBUK"]) + d(6) + d(8)
    elif country == "IE":
        bban = rng.choice(["AIBK", "BOFI"]) + d(6) + d(8)
    elif country == "DE":
        bban = d(18)
    elif country == "ES":
        bank, branch, acct = rng.choice(["2100", "0049", "0182", "2085"]), d(4), d(10)
        bban = bank + branch + es_control_digits(bank, branch, acct) + acct
    elif country == "CH":
        bban = d(17)
    else:
        bban = d(16)
    iban = make_iban(country, bban)
    return group4(iban) if rng.random() < 0.75 else iban


def gen_card(rng, prefix=None):
    prefix = prefix or rng.choice(["4", "4", "51", "53", "55", "6225", "6222", "6217", "37"])
    length = 15 if prefix.startswith("37") else (19 if rng.random() < 0.2 and prefix.startswith("62") else 16)
    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    num = luhn_complete(body)
    style = rng.random()
    if length == 15:
        return f"{num[:4]} {num[4:10]} {num[10:]}" if style < 0.7 else num
    if length == 19:
        return num if style < 0.5 else f"{num[:6]} {num[6:]}"
    if style < 0.55:
        return group4(num)
    if style < 0.75:
        return "-".join(num[i:i + 4] for i in range(0, 16, 4))
    return num


def gen_bad_card(rng):
    """16 digits that look like a card but fail Luhn."""
    while True:
        body = rng.choice(["4", "5", "62"]) + "".join(rng.choice("0123456789") for _ in range(15))
        body = body[:16]
        if not luhn_ok(body):
            return group4(body) if rng.random() < 0.5 else body


CN_REGIONS = ["110105", "110108", "310104", "310115", "330106", "440305", "510107", "320106",
              "420111", "350203", "370202", "610113"]


def _cnid_body(rng):
    birth = datetime.date(1955, 1, 1) + datetime.timedelta(days=rng.randint(0, 18000))
    return rng.choice(CN_REGIONS) + birth.strftime("%Y%m%d") + "%03d" % rng.randint(1, 999)


def gen_cnid(rng):
    body = _cnid_body(rng)
    return body + cnid_check(body)


def gen_bad_cnid(rng):
    body = _cnid_body(rng)
    good = cnid_check(body)
    bad = rng.choice([c for c in "0123456789" if c != good])
    return body + bad


def gen_ip4(rng):
    r = rng.random()
    if r < 0.3:
        return "10.%d.%d.%d" % (rng.randint(0, 20), rng.randint(0, 255), rng.randint(2, 254))
    if r < 0.5:
        return "192.168.%d.%d" % (rng.randint(0, 10), rng.randint(2, 254))
    if r < 0.6:
        return "172.%d.%d.%d" % (rng.randint(16, 31), rng.randint(0, 255), rng.randint(2, 254))
    if r < 0.8:
        return "%s.%d" % (rng.choice(["203.0.113", "198.51.100", "192.0.2"]), rng.randint(2, 254))
    return "%d.%d.%d.%d" % (rng.choice([47, 101, 121, 139, 116, 81, 91]), rng.randint(0, 255),
                            rng.randint(0, 255), rng.randint(2, 254))


def gen_ip6(rng):
    h = lambda: "%x" % rng.randint(1, 0xFFFF)  # noqa: E731
    r = rng.random()
    if r < 0.4:
        return "2001:db8:%s:%s::%s" % (h(), h(), h())
    if r < 0.6:
        return "fe80::%s:%s:%s:%s" % (h(), h(), h(), h())
    if r < 0.8:
        return "240e:3b7:%s:%s:%s:%s:%s:%s" % (h(), h(), h(), h(), h(), h())
    return "2001:db8:85a3::8a2e:%s:%s" % (h(), h())


def gen_eth(rng):
    hex40 = "".join(rng.choice("0123456789abcdef") for _ in range(40))
    return eip55(hex40) if rng.random() < 0.6 else "0x" + hex40


def gen_btc(rng, legacy=None):
    prog = bytes(rng.randint(0, 255) for _ in range(20))
    if legacy is None:
        legacy = rng.random() < 0.35
    if legacy:
        return base58check(rng.choice([0x00, 0x05]), prog)
    return bech32_segwit_v0(prog)


def _rand_token(rng, n, alphabet="abcdefghijklmnopqrstuvwxyz0123456789"):
    return "".join(rng.choice(alphabet) for _ in range(n))


def gen_secret_url(rng):
    hexs = lambda n: _rand_token(rng, n, "0123456789abcdef")  # noqa: E731
    b64 = lambda n: _rand_token(rng, n, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")  # noqa: E731,E501
    forms = [
        lambda: f"https://api.lantu-tech.cn/v1/export?token={hexs(32)}",
        lambda: f"https://files.brisamar.es/share/{hexs(8)}?expires=1718{rng.randint(100000, 999999)}&sig={b64(43)}",
        lambda: f"https://deploy:{b64(14)}@git.lantu-tech.cn/data/pipeline.git",
        lambda: f"https://app.example-crm.com/oauth/callback#access_token={b64(40)}&token_type=bearer",
        lambda: f"https://maps.googleapis.com/maps/api/geocode/json?address=Shanghai&key=AIza{b64(35)}",
        lambda: f"https://hooks.notify-hub.io/ingest?key={hexs(40)}",
        lambda: f"https://pan.example.cn/s/{b64(10)}?pwd={_rand_token(rng, 4)}&token={hexs(24)}",
        lambda: f"https://metrics.internal.lantu-tech.cn/api/query?access_token={b64(36)}",
        lambda: f"https://admin:{b64(12)}@grafana.lantu-tech.cn/d/ops",
        lambda: f"https://storage.kranich-gmbh.de/reports/q2.pdf?X-Goog-Expires=3600&sig={b64(48)}",
    ]
    return rng.choice(forms)()


def gen_date(rng):
    return datetime.date(2024, 1, 1) + datetime.timedelta(days=rng.randint(0, 364))


MONTHS_EN = ["January", "February", "March", "April", "May", "June", "July", "August",
             "September", "October", "November", "December"]
WEEKDAYS_ZH = ["周一", "周二", "周三", "周四", "周五", "周六", "周日"]
WEEKDAYS_EN = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def fmt_date_en(d, rng):
    return rng.choice([f"{d.day} {MONTHS_EN[d.month - 1]}", f"{MONTHS_EN[d.month - 1]} {d.day}",
                       f"{WEEKDAYS_EN[d.weekday()]} {d.day} {MONTHS_EN[d.month - 1]}",
                       f"{MONTHS_EN[d.month - 1][:3]} {d.day}, {d.year}"])


def strip_accents(s):
    return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))


def _pinyin_mail(py):
    parts = py.lower().replace(" ", "")
    return parts


# ---------------------------------------------------------------------------
# People in a text
# ---------------------------------------------------------------------------


class Person:
    """A contact (known=True) or a stranger (known=False) as used in one text."""

    def __init__(self, rec, known, rng):
        self.r = rec
        self.known = known
        self.rng = rng
        self.cache = {}

    @property
    def zh(self):
        return self.r["lang"] == "zh"

    def _fresh(self, key, fn):
        if key not in self.cache:
            self.cache[key] = fn()
        return self.cache[key]

    def field(self, f, arg):
        """Return (type or None, surface, known)."""
        r, rng = self.r, self.rng
        K = self.known
        if f == "any":
            f = self._pick_any()
        # ---- name forms -----------------------------------------------------
        if self.zh:
            if f == "full":
                return "PERSON", r["full"], K
            if f == "hon":
                suffix = arg or r["hon"] or ("先生" if r["g"] == "m" else "女士")
                return "PERSON", r["sur"] + suffix, K
            if f == "xiao":
                return "PERSON", "小" + r["sur"], K
            if f == "lao":
                return "PERSON", "老" + r["sur"], K
            if f == "xl":
                return "PERSON", ("小" if r["age"] == "young" else "老") + r["sur"], K
            if f in ("given", "first"):
                forms = ([r["given"]] if len(r["given"]) >= 2 else []) + r["nick"]
                return "PERSON", rng.choice(forms or [r["full"]]), K
            if f == "py":
                sur, giv = r["py"].split(" ", 1)
                return "PERSON", rng.choice([f"{sur} {giv}", f"{giv} {sur}"]), K
            if f == "title":
                t = arg or ("Mr." if r["g"] == "m" else "Ms.")
                return "PERSON", t + " " + r["py"].split(" ")[0], K
            if f == "ta":
                return None, "他" if r["g"] == "m" else "她", None
        else:
            if f == "full":
                return "PERSON", r["full"], K
            if f in ("first", "given"):
                return "PERSON", r["first"], K
            if f == "last":
                return "PERSON", r["last"], K
            if f in ("title", "hon"):
                return "PERSON", (arg or r["title"]) + " " + r["last"], K
            if f == "lower":
                return "PERSON", strip_accents(r["full"]).lower() if rng.random() < 0.5 \
                    else r["full"].lower(), K
            if f == "plain":
                return "PERSON", strip_accents(r["full"]), K
            if f == "plainfirst":
                return "PERSON", strip_accents(r["first"]), K
            if f == "py":
                return "PERSON", r["full"], K
            if f == "zhname":
                return "PERSON", r.get("zh") or r["full"], K
            if f in ("he", "him", "his"):
                m = r["g"] == "m"
                return None, {"he": "he" if m else "she", "him": "him" if m else "her",
                              "his": "his" if m else "her"}[f], None
            if f == "ta":
                return None, "他" if r["g"] == "m" else "她", None
        # ---- contact data ---------------------------------------------------
        if f == "email":
            if r.get("email"):
                return "EMAIL", r["email"], K
            return "EMAIL", self._fresh("email", self._gen_email), False
        if f == "phone":
            if r.get("phone"):
                return "PHONE", r["phone"], K
            return "PHONE", self._fresh("phone", lambda: gen_phone(
                rng, "cn" if self.zh else rng.choice(["uk", "us", "fr", "de"]))), False
        if f == "addr":
            if r.get("addr"):
                return "ADDRESS", self._fresh("addr", lambda: rng.choice(r["addr"])), K
            pool = ADDR_ZH_NEW if self.zh else ADDR_EN_NEW
            return "ADDRESS", self._fresh("addr", lambda: rng.choice(pool)), False
        if f == "cnid":
            if r.get("cnid"):
                return "CN_ID", r["cnid"], K
            return "CN_ID", self._fresh("cnid", lambda: gen_cnid(rng)), False
        if f == "card":
            return "CARD", self._fresh("card", lambda: gen_card(rng)), False
        if f == "iban":
            return "IBAN", self._fresh("iban", lambda: gen_iban(rng)), False
        if f == "co":
            return None, r.get("co") or ("一家创业公司" if self.zh else "a startup"), None
        raise KeyError(f"unknown person field {f!r} for {r['full']}")

    def _pick_any(self):
        r, rng = self.r, self.rng
        if self.zh and "sister" in r["tags"]:
            opts = [("full", 30), ("given", 70)]
        elif self.zh:
            opts = [("full", 35), ("hon", 30), ("xl", 20)]
            if r["age"] == "young" and (len(r["given"]) >= 2 or r["nick"]):
                opts.append(("given", 15))
        else:
            opts = [("full", 30), ("first", 40), ("title", 15), ("lower", 5)]
            if strip_accents(r["full"]) != r["full"]:
                opts.append(("plain", 10))
        names, weights = zip(*opts)
        return rng.choices(names, weights)[0]

    def _gen_email(self):
        rng, r = self.rng, self.r
        if self.zh:
            base = _pinyin_mail(r["py"])
            return rng.choice([base + str(rng.randint(10, 99)) + "@163.com",
                               base + "@126.com", str(rng.randint(10 ** 8, 10 ** 9)) + "@qq.com",
                               r["py"].split(" ")[1].lower() + "." + r["py"].split(" ")[0].lower()
                               + "@" + rng.choice(["aliyun.com", "foxmail.com", "sina.com"])])
        first, last = strip_accents(r["full"]).lower().replace("'", "").split(" ", 1)
        return rng.choice([f"{first}.{last}@gmail.com", f"{first[0]}{last}@outlook.com",
                           f"{first}@{last}.me", f"{first}.{last}@{rng.choice(['fastmail.com', 'icloud.com', 'proton.me'])}"])


def stranger_record(rng, lang, used):
    if lang == "zh":
        pool = [s for s in ZH_STRANGERS if s[0] not in used]
        full, sur, g, py = rng.choice(pool)
        return dict(lang="zh", full=full, sur=sur, given=full[len(sur):], g=g, hon=None,
                    age=rng.choice(["young", "old"]), py=py, email=None, phone=None, addr=None,
                    nick=[], en=None, cnid=None, co=None, tags=set())
    pool = [s for s in EN_STRANGERS if s[0] not in used]
    full, g = rng.choice(pool)
    first, last = full.split(" ", 1)
    return dict(lang="en", full=full, first=first, last=last, g=g,
                title="Mr." if g == "m" else "Ms.", email=None, phone=None, addr=None,
                zh=None, cnid=None, co=None, tags=set())


# ---------------------------------------------------------------------------
# Template rendering
# ---------------------------------------------------------------------------

SLOT_RE = re.compile(r"\{\{|\}\}|\{([A-Za-z][A-Za-z0-9_]*)(?::([^{}]*))?\}")
# A known contact is only picked if it really has the data the template asks for.
PERSON_FIELDS_NEEDING = {"email": "email", "phone": "phone", "addr": "addr"}


# How a stranger in a given role is addressed (known contacts carry their own).
ROLE_HON = {"doctor": "医生", "lawyer": "律师", "teacher": "老师", "client": "总",
            "investor": "总", "mechanic": "师傅", "agent": "经理", "insurance": "经理",
            "hr": "经理", "accountant": "会计"}


class Ctx:
    """Resolves slots for one rendering of one template."""

    def __init__(self, rng, who, needs):
        self.rng = rng
        self.who = who
        self.needs = needs          # key -> set of fields the template uses
        self.people = {}
        self.things = {}
        self.used_names = set()

    # -- people --------------------------------------------------------------
    def person(self, key):
        if key in self.people:
            return self.people[key]
        spec = self.who[key]
        culture, _, filt = spec.partition(":")
        mode = ""
        if culture[-1] in "!?":
            culture, mode = culture[:-1], culture[-1]
        filters = set(f for f in filt.split(",") if f)
        known = {"!": True, "?": False}.get(mode)
        if known is None:
            known = self.rng.random() < P_KNOWN
        rec = None
        if known:
            pool = [c for c in (ZH_CONTACTS if culture == "zh" else EN_CONTACTS)
                    if c["full"] not in self.used_names and self._fits(c, filters, key)]
            if pool:
                rec = self.rng.choice(pool)
            elif mode == "!":
                raise ValueError(f"no known contact for {spec} / {self.needs.get(key)}")
        if rec is None:
            rec = stranger_record(self.rng, culture, self.used_names)
            known = False
            g = filters & {"m", "f"}
            while g and rec["g"] not in g:
                rec = stranger_record(self.rng, culture, self.used_names)
            for tag in sorted(filters):
                if tag in ROLE_HON:
                    if culture == "zh":
                        rec["hon"] = ROLE_HON[tag]
                    elif tag == "doctor":
                        rec["title"] = "Dr."
        self.used_names.add(rec["full"])
        p = Person(rec, known, self.rng)
        self.people[key] = p
        return p

    def _fits(self, c, filters, key):
        for f in filters:
            if f in ("m", "f"):
                if c["g"] != f:
                    return False
            elif f not in c["tags"]:
                return False
        for f in self.needs.get(key, ()):
            need = PERSON_FIELDS_NEEDING.get(f)
            if need and not c.get(need):
                return False
        # avoid parents/sister unless asked for explicitly
        if c["tags"] & {"mother", "father"} and not filters & {"mother", "father", "family"}:
            return False
        return True

    # -- slots ---------------------------------------------------------------
    def resolve(self, name, arg):
        if name.startswith("own_"):
            return owner_field(name[4:], arg, self.rng)
        key, _, field = name.partition("_")
        if key in self.who:
            return self.person(key).field(field or "any", arg)
        if name not in self.things:
            # "price2" is a second, independent price; "ip4"/"last4" are names themselves.
            base = name if name in THINGS else name[:-1]
            if base not in THINGS:
                raise KeyError(f"unknown slot {name!r}")
            self.things[name] = THINGS[base](self.rng, arg)
        return self.things[name]


def owner_field(f, arg, rng):
    o = OWNER
    simple = {
        "zh": ("PERSON", o["zh"]), "en": ("PERSON", o["en"]), "first": ("PERSON", o["first"]),
        "lower": ("PERSON", o["first"].lower()), "given": ("PERSON", o["given"]),
        "hon": ("PERSON", "林先生"), "title": ("PERSON", rng.choice(["Mr. Lin", "Mr Lin"])),
        "xiao": ("PERSON", "小林"), "lin": ("PERSON", "林总"),
        "py": ("PERSON", o["py"]), "py2": ("PERSON", o["py2"]), "pnr": ("PERSON", o["pnr"]),
        "email": ("EMAIL", o["email"]), "wemail": ("EMAIL", o["wemail"]),
        "phone": ("PHONE", rng.choice(o["phone_forms"])), "ukphone": ("PHONE", o["ukphone"]),
        "home": ("ADDRESS", rng.choice(o["home_forms"])), "home_en": ("ADDRESS", o["home_en"]),
        "office": ("ADDRESS", o["office"]), "office_en": ("ADDRESS", o["office_en"]),
        "london": ("ADDRESS", o["london"]),
        "iban": ("IBAN", rng.choice([o["iban"], group4(o["iban"])])),
        "card": ("CARD", rng.choice([o["card"], group4(o["card"])])),
        "up": ("CARD", rng.choice([o["unionpay"], group4(o["unionpay"])])),
        "cnid": ("CN_ID", o["cnid"]),
    }
    if f in simple:
        t, s = simple[f]
        return t, s, True
    raise KeyError("owner field " + f)


def _plain(fn):
    return lambda rng, arg: (None, fn(rng, arg), None)


def _price(rng, arg):
    lo, hi = map(int, (arg or "20-9999").split("-"))
    v = rng.randint(lo, hi)
    if v > 200:   # people write round-ish amounts
        v = round(v, -1 if v < 2000 else -2)
    if v >= 1000 and rng.random() < 0.5:
        return f"{v:,}"
    return str(v)


def _known_or_new(rng, known_pool, new_pool, etype):
    if rng.random() < P_KNOWN:
        return etype, rng.choice(known_pool), True
    return etype, rng.choice(new_pool), False


def _proj_surface(rng, name):
    r = rng.random()
    if name.isascii() and r < 0.12:
        return name.lower()
    if name.isascii() and r < 0.2:
        return name.upper()
    return name


def _owner_id(which):
    return lambda rng, arg: ("ID", rng.choice(OWNER_IDS[which]), True)


def _new_id(kind):
    def gen(rng, arg):
        d = lambda n: "".join(rng.choice("0123456789") for _ in range(n))  # noqa: E731
        v = {
            "policy": lambda: rng.choice([f"PA-CAR-2024-{d(7)}", f"AXA-HM-{d(8)}",
                                          f"P2024{d(10)}", f"ALZ-TRV-{d(6)}"]),
            "member": lambda: rng.choice([f"HH {d(3)} {d(3)} {d(3)}", f"MU{d(10)}",
                                          f"IHG {d(9)}", f"SQ-KF {d(10)}"]),
            "patient": lambda: rng.choice([f"MZ2024{d(7)}", f"JZK{d(9)}", f"NHS {d(3)} {d(3)} {d(4)}"]),
            "account": lambda: rng.choice([f"ACC-{d(6)}", f"{d(4)}-{d(4)}-{d(2)}", f"CUST{d(8)}"]),
            "claim": lambda: rng.choice([f"CLM-2024-{d(6)}", f"LP{d(10)}"]),
        }[kind]()
        return "ID", v, False
    return gen


def _gen_order(rng):
    """Order numbers: never Luhn-valid, so they are honest negatives."""
    while True:
        d = lambda n: "".join(rng.choice("0123456789") for _ in range(n))  # noqa: E731
        v = rng.choice([d(12), f"{d(3)}-{d(7)}-{d(7)}", "E" + d(10)])
        if not luhn_ok(re.sub(r"\D", "", v)):
            return v


def _d(n):
    return lambda rng, arg: "".join(rng.choice("0123456789") for _ in range(n))


THINGS = {
    # --- labelled pattern types (not in memory) ---
    "phone": lambda rng, arg: ("PHONE", gen_phone(rng, arg), False),
    "phone_cn": lambda rng, arg: ("PHONE", gen_phone(rng, "cn"), False),
    "phone_cnl": lambda rng, arg: ("PHONE", gen_phone(rng, "cnl"), False),
    "phone_uk": lambda rng, arg: ("PHONE", gen_phone(rng, "uk"), False),
    "phone_us": lambda rng, arg: ("PHONE", gen_phone(rng, "us"), False),
    "iban": lambda rng, arg: ("IBAN", gen_iban(rng), False),
    "card": lambda rng, arg: ("CARD", gen_card(rng, arg), False),
    "cnid": lambda rng, arg: ("CN_ID", gen_cnid(rng), False),
    "ip4": lambda rng, arg: ("IP", gen_ip4(rng), False),
    "ip6": lambda rng, arg: ("IP", gen_ip6(rng), False),
    "ip": lambda rng, arg: ("IP", gen_ip4(rng) if rng.random() < 0.75 else gen_ip6(rng), False),
    "eth": lambda rng, arg: ("CRYPTO", gen_eth(rng), False),
    "btc": lambda rng, arg: ("CRYPTO", gen_btc(rng, False), False),
    "btc1": lambda rng, arg: ("CRYPTO", gen_btc(rng, True), False),
    "surl": lambda rng, arg: ("URL", gen_secret_url(rng), False),
    # --- places (known with P_KNOWN) ---
    "addr_zh": lambda rng, arg: _known_or_new(rng, PLACES_ZH, ADDR_ZH_NEW, "ADDRESS"),
    "addr_en": lambda rng, arg: _known_or_new(rng, PLACES_EN, ADDR_EN_NEW, "ADDRESS"),
    "addr_zhnew": lambda rng, arg: ("ADDRESS", rng.choice(ADDR_ZH_NEW), False),
    "addr_ennew": lambda rng, arg: ("ADDRESS", rng.choice(ADDR_EN_NEW), False),
    "addr_zhen": lambda rng, arg: ("ADDRESS", rng.choice(ADDR_ZHEN_NEW), False),
    # --- projects ---
    "proj": lambda rng, arg: ("PROJECT", _proj_surface(rng, rng.choice(PROJECTS_EN + PROJECTS_ZH)), True),
    # most project mentions are the owner's known code names, some are new ones
    "proj_en": lambda rng, arg: ("PROJECT", _proj_surface(rng, rng.choice(PROJECTS_EN)), True)
    if rng.random() < 0.85 else ("PROJECT", rng.choice(PROJECTS_NEW_EN), False),
    "proj_zh": lambda rng, arg: ("PROJECT", rng.choice(PROJECTS_ZH), True)
    if rng.random() < 0.85 else ("PROJECT", rng.choice(PROJECTS_NEW_ZH), False),
    "proj_new": lambda rng, arg: ("PROJECT", rng.choice(PROJECTS_NEW_EN), False),
    "proj_new_zh": lambda rng, arg: ("PROJECT", rng.choice(PROJECTS_NEW_ZH), False),
    # --- owner's IDs (in memory) and other people's / new IDs (not) ---
    **{"id_" + k: _owner_id(k) for k in OWNER_IDS},
    **{"newid_" + k: _new_id(k) for k in ["policy", "member", "patient", "account", "claim"]},
    # --- unlabelled fillers and hard negatives ---
    "date_zh": _plain(lambda rng, a: (lambda d: f"{d.month}月{d.day}日")(gen_date(rng))),
    "date_en": _plain(lambda rng, a: fmt_date_en(gen_date(rng), rng)),
    "date_iso": _plain(lambda rng, a: gen_date(rng).isoformat()),
    "time": _plain(lambda rng, a: "%d:%02d" % (rng.randint(8, 20), rng.choice([0, 15, 30, 45]))),
    "weekday": _plain(lambda rng, a: rng.choice(WEEKDAYS_ZH)),
    "weekday_en": _plain(lambda rng, a: rng.choice(WEEKDAYS_EN)),
    "price": _plain(_price),
    "qty": _plain(lambda rng, a: str(rng.randint(*map(int, (a or "2-500").split("-"))))),
    "pct": _plain(lambda rng, a: str(rng.randint(3, 45))),
    "last4": _plain(_d(4)),
    "digits4": _plain(_d(4)),
    "flight": _plain(lambda rng, a: rng.choice(["CA", "MU", "FM", "CZ", "BA", "LH", "AF", "TP", "HO"])
                     + str(rng.randint(101, 9899))),
    "train": _plain(lambda rng, a: rng.choice("GD") + str(rng.randint(1, 1999))),
    "tracking": _plain(lambda rng, a: rng.choice(["SF", "YT", "JD", "ZTO"]) + _d(13)(rng, a)),
    "order": _plain(lambda rng, a: _gen_order(rng)),
    "booking": _plain(lambda rng, a: _rand_token(rng, 6, "ABCDEFGHJKLMNPQRSTUVWXYZ23456789")),
    "version": _plain(lambda rng, a: "v%d.%d.%d" % (rng.randint(0, 4), rng.randint(0, 20), rng.randint(0, 15))),
    "pub_url": _plain(lambda rng, a: rng.choice(PUBLIC_URLS)),
    "neg_card": _plain(lambda rng, a: gen_bad_card(rng)),
    "neg_cnid": _plain(lambda rng, a: gen_bad_cnid(rng)),
    "git_sha": _plain(lambda rng, a: _rand_token(rng, 40, "0123456789abcdef")),
    "famous_en": _plain(lambda rng, a: rng.choice(FAMOUS_EN)),
    "famous_zh": _plain(lambda rng, a: rng.choice(FAMOUS_ZH)),
    "city_en": _plain(lambda rng, a: rng.choice(CITIES_EN)),
    "city_zh": _plain(lambda rng, a: rng.choice(CITIES_ZH)),
    "product": _plain(lambda rng, a: rng.choice(PRODUCTS_ZH)),
    "product_en": _plain(lambda rng, a: rng.choice(PRODUCTS_EN)),
    "bic": _plain(lambda rng, a: rng.choice(["BARCGB22", "DEUTDEFF", "CAIXESBB", "BSCHESMM", "COBADEFFXXX"])),
    "room": _plain(lambda rng, a: str(rng.randint(2, 28)) + "%02d" % rng.randint(1, 30)),
}


def needs_of(tpl, who):
    needs = defaultdict(set)
    for m in SLOT_RE.finditer(tpl):
        if m.group(1):
            key, _, field = m.group(1).partition("_")
            if key in who:
                needs[key].add(field or "any")
    return needs


def render(tpl, who, rng):
    ctx = Ctx(rng, who, needs_of(tpl, who))
    out, ents, pos, last = [], [], 0, 0
    for m in SLOT_RE.finditer(tpl):
        lit = tpl[last:m.start()]
        out.append(lit)
        pos += len(lit)
        if m.group(1) is None:
            etype, s, known = None, m.group(0)[0], None
        else:
            etype, s, known = ctx.resolve(m.group(1), m.group(2))
        if etype:
            ents.append(dict(type=etype, start=pos, end=pos + len(s), text=s, known=known))
        out.append(s)
        pos += len(s)
        last = m.end()
    out.append(tpl[last:])
    text = "".join(out)
    for e in ents:
        assert text[e["start"]:e["end"]] == e["text"], (e, text)
    return text, ents


# ---------------------------------------------------------------------------
# Templates
# ---------------------------------------------------------------------------
# Slot syntax: {key_field[:arg]}.
#   key in `who` (a, b, c, ...): a person.  who spec "<zh|en><mode>[:filters]",
#       mode "" = in memory with P_KNOWN, "!" = in memory, "?" = stranger;
#       filters = contact tags or m/f.
#   person fields: full, any, first/given, hon[:suffix|title], xiao, lao, xl, py,
#       title, lower, plain, plainfirst, email, phone, addr, cnid, card, co, ta, he/him/his
#   own_<field>: the owner (always in memory)
#   anything else: THINGS (a trailing digit makes a second, independent value)
#   {{ and }} are literal braces.

TEMPLATES = []


def T(lang, kind, text, n=3, **who):
    for m in SLOT_RE.finditer(text):
        key = (m.group(1) or "").partition("_")[0]
        assert len(key) != 1 or key in who, (f"person {key!r} not declared", text[:80])
    TEMPLATES.append(dict(lang=lang, kind=kind, text=textwrap.dedent(text).strip("\n"),
                          n=n, who=who))


# ============================== Chinese: mail ===============================

T("zh", "mail", """
    {a_hon}您好：

    感谢您昨天抽时间参加{proj_zh}项目的评审会。按照会上的讨论，我们会在{date_zh}前把修改后的方案发给您。报价部分维持{price:20000-300000}元不变，数量从{qty:200-2000}件调整为{qty2:150-3000}件，交付时间顺延两周。

    如有问题可以随时打我手机 {own_phone}。

    祝好
    {own_zh}
    上海澜图信息科技有限公司
    """, n=4, a="zh:client")

T("zh", "mail", """
    {a_hon}：

    您好！这个月的房租{price:4500-12000}元已经通过招行转到您尾号{last4}的账户了，麻烦查收。

    另外卫生间的水龙头又漏水了，上周末请了小区的{b_hon:师傅}来看过，他说要换整个阀门，费用大概{price2:300-900}元。您看是您这边安排人，还是我先垫付、下个月从房租里扣？

    房子地址：{own_home}
    {own_hon}
    """, a="zh:landlord", b="zh?")

T("zh", "mail", """
    {a_hon}您好，

    我上个月在瑞金医院做了胃镜检查，想申请理赔。保单号是 {id_pingan}，被保险人{own_zh}，身份证号 {own_cnid}。发票和病历扫描件已附上，总金额{price:800-6000}元。

    理赔款请打到我的招商银行卡 {own_up}，谢谢！

    {own_zh}
    {own_phone}
    """, a="zh:insurance")

T("zh", "mail", """
    {a_xl}，

    我下周一到周三请假回杭州看我妈，{proj_zh}的对接先交给你。几件事：
    1. {b_full}那边的接口文档还没给，记得催一下，邮箱是 {b_email}；
    2. 测试服务器 {ip4} 的 root 密码我已经改了，新密码在 1Password 里；
    3. 周四上午10点跟{c_hon}开会，会议室已经订好了。

    有事微信找我。
    {own_given}
    """, n=4, a="zh!:colleague", b="zh:work", c="zh:work")

T("zh", "mail", """
    尊敬的{own_zh}先生：

    您已成功预约{date_zh}上午{time}心内科{a_full}主任医师门诊，就诊序号{qty:1-40}。请携带身份证及就诊卡（卡号 {id_patient}）提前30分钟到门诊二楼自助机签到。

    您的预留手机为 139****4417，如需取消请于就诊前一日在“健康云”App内操作。

    瑞金医院预约中心
    """, a="zh:doctor")

T("zh", "mail", """
    尊敬的{own_hon}：

    您尾号{last4}的信用卡本期账单已出，应还金额人民币{price:1200-28000}元，最低还款额{price2:120-2800}元，到期还款日{date_zh}。您的一网通客户号为 {id_cmb}。

    如您已还款，请忽略本邮件。本邮件由系统自动发出，请勿直接回复。客服热线 95555。

    招商银行信用卡中心
    """)

T("zh", "mail", """
    {own_given}：

    好久不见！我和{b_full}定在{date_zh}结婚啦，地点在{addr_zh}的宴会厅，中午11点半开席。你和{c_given}一起来吧，到时候给你们安排在同学那桌。

    礼金什么的千万别客气，人来就好😄
    收到回个消息哈，我的新手机号是 {phone_cn}。

    {a_given}
    """, a="zh!:friend", b="zh?", c="zh!:sister")

T("zh", "mail", """
    各位同事：

    欢迎新同事{b_full}加入产品部！{b_ta}之前在阿里巴巴做了五年数据平台，入职后主要负责{proj_zh}的数据中台部分，汇报给{a_full}。工位在5楼靠窗，邮箱 {b_email}，分机 8021。

    请大家多多关照！
    人力资源部 {c_full}
    """, a="zh!:colleague", b="zh?", c="zh!:hr")

T("zh", "mail", """
    {a_hon}：

    附件是我和{b_full}的合作协议初稿，请您帮忙看一下第7条和第12条的违约责任。对方公司地址是{addr_zhnew}，注册资本500万。{b_hon}希望月底前签，麻烦您本周内给个意见。

    律师费按上次说的{price:5000-30000}元，我会转到您所里的对公账户。
    谢谢！
    {own_zh}
    """, a="zh:lawyer", b="zh:work")

T("zh", "mail", """
    {a_hon}好，

    下周六的钢琴课想改到下午三点，我外甥女上午要去考英语。学费{price:1600-4800}已经微信转给您了。她最近迷上了《菊次郎的夏天》，您看这个难度合适吗？

    那天她妈妈{b_given}（{b_phone}）会来接她。
    """, n=2, a="zh:teacher", b="zh!:sister")

T("zh", "mail", """
    {a_hon}，您好：

    2023年度个税汇算的材料整理好了，附件里有工资流水和租房合同。住房租金扣除那里，出租方填{b_full}，身份证号 {b_cnid}，房屋地址 {own_home}。

    另外我在英国还有一笔存款利息，账户 {own_iban}，金额大概{price:40-900}英镑，需要一起申报吗？

    {own_zh}
    """, a="zh:accountant", b="zh!:landlord")

T("zh", "mail", """
    亲，您在本店购买的{product}已经发货啦～顺丰单号 {tracking}，预计{date_zh}送达。

    收货人：{own_zh}
    电话：{own_phone}
    地址：{own_home}
    交易流水号：{neg_cnid}

    如有问题请在旺旺联系客服，祝您生活愉快！
    """)

T("zh", "mail", """
    尊敬的{own_zh}，您好：

    您预订的酒店已确认。
    酒店：湖畔居精品酒店
    地址：{addr_zhnew}
    入住：{date_zh}　离店：{date_zh2}
    入住人：{own_zh}、{a_full}
    订单号：{order}
    联系电话：{own_phone}

    温馨提示：办理入住时请出示入住人身份证原件。
    """, a="zh:friend")

T("zh", "mail", """
    {own_zh}您好，您于{date_zh}购买的{train}次列车车票已出票：上海虹桥—北京南，{time}开，8车12F号，二等座，票价{price:350-650}元。
    乘车人：{own_zh}（身份证 {own_cnid}）、{a_full}（身份证 {a_cnid}）。
    请携带购票时所使用的有效身份证件原件进站乘车。【铁路12306】
    """, a="zh:friend")

T("zh", "mail", """
    {x_hon}：

    您好！简单汇报一下{proj_zh}的进展：
    - 上个月活跃用户{qty:8000-90000}，环比增长{pct}%；
    - {a_full}牵头的支付模块已经上线，接入了招商银行和支付宝；
    - 下一轮融资材料预计{date_zh}前给到您，{b_full}（{b_email}）那边也在看。

    另外，“{proj_new_zh}”是我们内部孵化的新方向，暂时还请保密。

    {own_given}
    """, x="zh!:investor", a="zh:work", b="en:investor")

T("zh", "mail", """
    各位业主：

    因小区二次供水设备检修，{date_zh}（{weekday}）上午9:00至下午5:00将暂停供水，请提前做好储水准备。检修期间电梯正常运行，地下车库B区暂停使用{qty:10-40}个车位。给您带来的不便，敬请谅解。

    永嘉路物业服务中心
    """)

T("zh", "mail", """
    {own_hon}您好，

    我是猎头顾问{a_full}，通过{b_full}推荐联系到您。我们有个客户（国内头部新能源车企）在招数据平台负责人，base上海，年薪{price:60-150}万左右。不知道您最近是否考虑新机会？方便的话加个微信，或者直接打我电话 {a_phone}。

    {a_full}
    {a_email}
    """, a="zh?", b="zh!:work")

T("zh", "mail", """
    {s_given}：

    妈的检查结果出来了，{a_hon}说问题不大，就是血压有点高，开了降压药，一天一次。我把报告拍照发你微信了。

    下周六我回杭州，直接去爸妈那儿（{m_addr}），你那天有空吗？顺便把妈医保卡补办的事办了，旧卡号我记在备忘录里：{newid_patient}。

    哥
    """, n=3, s="zh!:sister", a="zh:doctor", m="zh!:mother")

T("zh", "mail", """
    大家好，

    今天是我在澜图的最后一天。三年来跟{a_xl}、{b_xl}还有{c_hon}一起做{proj_zh}，真的学到很多。以后保持联系，私人邮箱 {d_email}，手机号不变 {d_phone}。

    江湖再见！
    {d_full}
    """, a="zh!:colleague", b="zh!:work", c="zh:work", d="zh:work")

T("zh", "mail", """
    {a_hon}：

    我上周去深圳出差的报销单已经提交了，机票（{flight}）{price:900-2600}元，住宿三晚{price2:1200-2400}元，发票原件明天放您桌上。报销款打到工资卡就行，卡号 {own_up}。

    {own_zh}　工号 {id_emp}
    """, a="zh!:hr")

T("zh", "mail", """
    {own_hon}：

    车已经检查过了，刹车片磨损比较严重，建议前后都换，配件加工时一共{price:600-1800}元。小保养顺便做了，机油用的是美孚1号，下次保养里程{qty:5000-60000}公里。您明天下班后来取就行，地址还是{a_addr}。

    {a_hon}　{a_phone}
    """, a="zh!:mechanic")

T("zh", "mail", """
    {a_hon}您好，

    我外甥今年在德国读研，下个月要给他汇一笔生活费{price:800-1500}欧元。对方账户 IBAN 是 {iban}，收款人{b_py}，开户行在慕尼黑。请问用招行的境外汇款需要准备什么材料？我的客户号 {id_cmb}。

    谢谢！
    {own_zh}
    """, a="zh?", b="zh?")

T("zh", "mail", """
    {a_hon}：

    关于{proj_zh}二期的合同，我们这边法务提了几点意见：
    一、数据归属条款需要明确；
    二、违约金比例建议从30%降到10%；
    三、对方盖章的合同请寄到我们公司：{own_office}，收件人{b_full}，电话 {b_phone}。

    {own_zh}
    """, a="zh!:client", b="zh!:colleague")

# ============================== Chinese: chat ===============================

T("zh", "chat", """
    {a_lao}：周末打球吗？
    我：可以啊，几点？
    {a_lao}：周六下午两点，老地方，{addr_zh}那个球馆
    我：行，我叫上{b_xl}
    {a_lao}：他上次说膝盖不舒服，你问问
    """, a="zh:friend,m", b="zh:m")

T("zh", "chat", """
    妈：{own_given}，你{a_hon:阿姨}说她儿子在上海找工作，让我问问你们公司招不招人
    我：什么专业的？
    妈：学计算机的，研究生刚毕业。电话 {phone_cn}，叫{b_full}
    我：好，我让{c_hon}看看简历
    妈：你周末回不回来吃饭？你爸买了条鲈鱼
    """, a="zh?:f", b="zh?:m", c="zh!:hr")

T("zh", "chat", """
    [产品部群]
    {a_full}：@{b_full} {proj_zh}的新版本{version}今晚发吗？
    {b_full}：测试还有两个bug，估计明早
    {c_xl}：我这边接口已经好了，部署在 {ip4}:8080
    {a_full}：好，明天上午10点前一定要上线，{d_hon}那边在催
    """, a="zh:work", b="zh:work", c="zh:work", d="zh:work")

T("zh", "chat", """
    {a_given}：你上次说的那个钱包地址再发我一下
    我：{eth}
    {a_given}：收到，我先转0.05个ETH试试
    我：到了跟我说一声。比特币的话用这个 {btc}
    {a_given}：好嘞
    """, a="zh:friend")

T("zh", "chat", """
    {a_xiao}：{own_hon}，您要看的那套房子在{addr_zhnew}，三室两厅，月租{price:8000-16000}，明天下午可以看房
    我：好的，几点？
    {a_xiao}：三点吧，我在小区门口等您。房东{b_hon}也会过来
    我：OK，我可能带朋友{c_full}一起
    """, a="zh:agent", b="zh?", c="zh:friend")

T("zh", "chat", """
    今晚吃什么？我看了下，楼下那家兰州拉面人均{qty:25-60}块，或者点外卖，美团上那家湘菜满50减15。
    我马上要开个会，你先点吧，别放香菜。{time}之前到就行。
    """)

T("zh", "chat", """
    {a_xl}：{own_given}，能不能先借我五千，下个月发工资还你
    我：行，转哪张卡？
    {a_xl}：{a_card}，工商银行的，户名{a_full}
    我：转了，你查一下
    {a_xl}：收到了，谢谢兄弟！
    """, a="zh:friend,m")

T("zh", "chat", """
    快递员{a_hon:师傅}：您好，{own_home}的快递，家里有人吗？我在楼下
    我：不在家，放门卫吧
    快递员{a_hon:师傅}：好的，运单号 {tracking}，记得确认收货哈
    """, a="zh?:m")

T("zh", "chat", """
    [大学同学群]
    {a_lao}：五一去哪儿？
    {b_given}：要不去爬长城？好久没爬了
    {c_xl}：五一人太多了吧，还不如去西湖
    {a_lao}：我订了{addr_zhnew}那边的民宿，四个人一间
    我：我可以，@{b_given} 你带上{d_full}吗
    """, a="zh:friend", b="zh:friend,f", c="zh:friend", d="zh?")

T("zh", "chat", """
    我：{a_hon}您好，我是上周三来看门诊的{own_zh}，想问一下报告出来了吗
    {a_hon}：出来了，甲状腺结节3类，问题不大，半年后复查
    我：好的，需要吃药吗？
    {a_hon}：不用，注意别熬夜。复查直接在公众号预约，就诊卡号 {id_patient}
    """, a="zh:doctor")

T("zh", "chat", """
    {a_xiao}：线上那台 {ip4} 又挂了
    我：看下日志，是不是磁盘满了
    {a_xiao}：是的，/var/log 占了{pct}%
    我：先清一下，然后把日志转到 {ip42} 那台去
    {a_xiao}：好。另外{proj_zh}测试环境的导出链接：{surl}
    """, a="zh:colleague")

T("zh", "chat", """
    {a_given}：今晚七点，{addr_zh}，那家云南菜
    我：好，我可能晚十分钟
    {a_given}：没事，{b_xl}也来，说给你带了上次说的那本书
    我：哈哈太好了
    """, a="zh:friend", b="zh:friend")

T("zh", "chat", """
    A：明天几点开会？
    B：上午十点，3号会议室。记得带电脑，{version}那个包要演示
    A：好的，我马上去准备。对了，昨天{famous_zh}那个采访你看了吗？
    B：看了，这招确实高明
    """)

T("zh", "chat", """
    [相亲相爱一家人]
    妈：今天包了饺子，{a_given}你什么时候回来
    {a_given}：周五晚上到，{train}次
    爸：我去车站接你
    妈：{own_given}呢？国庆回不回？
    我：回，订了{date_zh}的高铁
    """, n=2, a="zh!:sister")

T("zh", "chat", """
    {a_xiao}：西班牙那边的货款要打到哪个账户？
    我：{b_first}给的是这个：{iban}，户名 Brisamar Tecnologías S.L.
    {a_xiao}：好的，金额是{price:12000-90000}欧元对吧
    我：对，备注写合同号 BR-2024-{digits4}
    """, a="zh:colleague", b="en!:partner")

T("zh", "chat", """
    {a_xiao}：帮我个忙，我的卡额度满了，你帮我在京东下个单，回头转你
    我：行，用我招行卡 {own_up} 付吧，多少钱？
    {a_xiao}：{price:80-3000}，收货地址写{a_addr}
    我：下好了，订单号 {order}
    """, a="zh:friend")

T("zh", "chat", """
    {a_xl}：合同扫描件放网盘了 {surl}
    {a_xl}：有身份证正反面，你下载完记得跟我说，我把链接删掉
    我：收到，已下载
    """, a="zh:work")

T("zh", "chat", """
    {a_hon}：{own_xiao}，下周二的董事会材料准备得怎么样了？
    我：{proj_zh}的部分写完了，财务数据等{b_hon}确认
    {a_hon}：好，{b_hon}今天在{city_zh}出差，晚上应该能回你
    我：明白，我晚点再催一下
    """, a="zh!:investor", b="zh:work")

T("zh", "chat", """
    {a_hon}：{own_xiao}，明天{time}我过去收一下水电费，顺便看看热水器
    我：好的{a_hon:叔}，明天我在家
    {a_hon}：电费户号还是 {id_power} 吧？
    我：对，我这个月在网上交过一次了
    """, n=2, a="zh!:landlord")

T("zh", "chat", """
    {a_hon}：{own_given}，明天我早上九点过来打扫，钥匙还是放在门口鞋柜里吗？
    我：对的，{a_hon}，冰箱里的菜帮我处理一下
    {a_hon}：好，这个月的钱你转我微信就行，{price:800-1600}
    """, n=2, a="zh!:home")

T("zh", "chat", """
    {a_given}：我到你家楼下了，{own_home}是这栋吧？门禁怎么按
    我：按302，我下来接你
    {a_given}：好，{b_xl}晚点到，他在{addr_zh}那边堵车
    """, a="zh:friend", b="zh:m")

T("zh", "note", """
    中秋礼盒寄送清单（{date_zh}前寄出）
    - 爸妈：{m_addr}，{m_phone}
    - {a_full}：{a_addr}
    - {b_hon}：{b_addr}
    - 公司前台：{own_office}
    """, m="zh!:mother", a="zh!:friend", b="zh!:client")

# ============================== Chinese: notes ==============================

T("zh", "note", """
    # {proj_zh} 周会纪要 {date_iso}

    参会：{a_full}、{b_full}、{c_xl}、{own_zh}
    缺席：{d_hon}（出差）

    1. 上周数据迁移完成98%，剩余部分涉及老系统 {ip4}，{b_hon}负责本周五前迁完。
    2. 供应商报价{price:60000-300000}元/年，比去年高了{pct}%，需要再谈。
    """, n=4, a="zh:work", b="zh:work", c="zh:work", d="zh:work")

T("zh", "note", """
    体检预约：{date_zh} 早上7:30，美年大健康（{addr_zhnew}），空腹。
    带身份证 {own_cnid}。
    套餐{price:800-2600}元，公司报销。体检号 {newid_patient}。
    """)

T("zh", "note", """
    读书笔记：《乡土中国》第三章
    费孝通说的“差序格局”，像石子投入水中激起的波纹，一圈圈推出去。老王卖瓜自卖自夸的说法放在这里也挺贴切——每个人都以自己为中心。
    周末再读两章，争取{date_zh}前读完，顺便把第{qty:12-300}页那段抄下来。
    """)

T("zh", "note", """
    待办：
    - 给{a_hon}回电话，问{proj_zh}合同的事
    - 交电费，户号 {id_power}
    - 周三前把发票寄给{b_full}（{b_addr}）
    - 取快递，取件码 8-3-{digits4}
    """, n=4, a="zh:work", b="zh:work")

T("zh", "note", """
    {date_iso} 看病记录
    医生：{a_full}（{a_hon}人很耐心）
    症状：咽喉痛三天，低烧37.8℃
    医生让我张开嘴看了看，说是扁桃体发炎，开了阿莫西林，一天三次，一次两粒。
    下次复诊：{date_zh}，挂号费50元。
    """, a="zh:doctor")

T("zh", "note", """
    备忘：
    招行一网通客户号 {id_cmb}
    平安健康险保单 {id_pingan}（{a_hon}经手，电话 {a_phone}）
    国航知音卡 {id_phoenix}
    护照 {id_passport}，{date_iso}到期，记得提前半年换
    """, n=2, a="zh!:insurance")

T("zh", "note", """
    {proj_zh} 二期想法：
    1. 用户画像模块复用{proj_zh2}的标签体系
    2. 找{a_hon}聊一下数据合规的问题
    3. 新开一个子项目，代号“{proj_new_zh}”，先小范围试点
    预算：{price:20-200}万，Q3前完成
    """, a="zh:lawyer")

T("zh", "note", """
    帮{a_given}搬家（{date_zh}）
    旧地址：{a_addr}
    新地址：{addr_zhnew}
    搬家公司：蚂蚁搬家，{b_hon:师傅} {b_phone}，报价{price:600-2000}元
    记得：宽带迁移、水电燃气过户、找{c_hon}退押金
    """, a="zh!:friend", b="zh?:m", c="zh?")

T("zh", "note", """
    # 测试环境配置，别提交到仓库！
    DB_HOST = "{ip4}"
    EXPORT_URL = "{surl}"
    # 负责人：{a_full}，有问题找{b_xl}
    # 版本 {version}，commit {git_sha}
    """, a="zh:work", b="zh:work")

T("zh", "note", """
    日本旅行计划（{date_zh}—{date_zh2}）
    航班：{flight}，浦东T2 08:35起飞
    酒店：京都四条乌丸附近，{addr_ennew}
    同行：{a_given}、{b_full}
    护照：我的 {id_passport}，{a_given}的让她自己带
    """, a="zh!:sister", b="zh:friend")

T("zh", "note", """
    重读鲁迅的《朝花夕拾》，小时候觉得枯燥，现在读出很多味道。百草园那段写得真好。
    李白说“人生得意须尽欢”，这个周末想去西湖边走走，顺便去灵隐寺。高铁{train}，{time}出发，票价{price:70-280}元。
    """)

T("zh", "note", """
    红烧肉（{qty:2-6}人份）
    五花肉500克，冰糖30克，生抽2勺，老抽1勺，料酒适量，八角2个。
    冷水下锅焯水，小火炒糖色，加开水没过肉，炖{pct}分钟，最后大火收汁。
    """)

T("zh", "note", """
    租房合同要点
    出租方：{a_full}，身份证 {a_cnid}，电话 {a_phone}
    承租方：{own_zh}，身份证 {own_cnid}
    房屋：{own_home}
    租期两年，月租{price:6000-15000}元，押二付三。
    """, n=2, a="zh!:landlord")

T("zh", "note", """
    年会节目安排（{date_zh}）
    开场：{a_full}、{b_full}合唱《平凡之路》
    小品：{c_xl}、{d_xl}
    抽奖嘉宾：{e_hon}（一等奖 iPhone 15，二等奖{qty:300-2000}元京东卡）
    """, a="zh:work", b="zh:work", c="zh:work", d="zh:work", e="zh:work")

T("zh", "note", """
    新同事信息
    姓名：{a_full}
    岗位：后端开发（{proj_zh}组）
    邮箱：{a_email}
    手机：{a_phone}
    紧急联系人：{b_full} {b_phone}
    """, a="zh?", b="zh?")

T("zh", "note", """
    {date_iso} 家长会笔记
    班主任说这学期数学平均分{qty:78-96}，语文作文要多练。外甥女的同桌马上要转学了，班主任让大家多照顾新来的插班生，别欺负人家。
    下次开放日：{date_zh}，下午两点，记得带成绩单。
    """)

T("zh", "note", """
    报销单据整理
    - 打车：{price:30-180}元（{date_zh}，客户拜访{a_hon}）
    - 餐费：{price2:200-900}元，和{b_full}、{c_xl}
    - 发票抬头：上海澜图信息科技有限公司
    - 付款卡：{own_up}
    """, a="zh:client", b="zh:work", c="zh:work")

# ============================== English: mail ===============================

T("en", "mail", """
    Subject: Re: {proj_en} - next steps

    Hi {a_first},

    Great talking to you on Thursday. As agreed, I'll send the revised SOW by {date_en}. {b_first} from our side will own the integration work; you can reach {b_him} at {b_email}.

    One thing to flag: the pilot is still under NDA, so please don't mention {proj_en} outside your core team.

    Best,
    {own_first}

    --
    {own_en} | Lantu Technology
    {own_phone}
    """, n=4, a="en!:partner", b="en:colleague")

T("en", "mail", """
    Dear {own_title},

    Your international payment of £{price:150-4000} to {a_full} has been processed.

    From account: {own_iban}
    Payee IBAN:   {iban}
    Reference:    INV-{digits4}
    Customer ID:  {id_barclays}

    If you did not make this payment, call us immediately using the number on the back of your card.
    Barclays Online Banking
    """, a="en")

T("en", "mail", """
    Dear {own_title},

    Your annual multi-trip travel insurance, policy {id_axa}, renews on {date_en}. The correspondence address we hold for you is:

    {own_home_en}

    If this has changed, please let us know before renewal. Your broker, {a_title}, can also update it for you ({a_email}).

    Kind regards,
    AXA Customer Services
    """, a="en!:broker")

T("en", "mail", """
    Dear {own_first},

    This is to confirm your follow-up appointment with {a_title} on {date_en} at {time} at our clinic, {a_addr}. Please bring your previous blood test results and arrive ten minutes early.

    If you need to reschedule, simply reply to this email.

    Reception team
    """, a="en!:doctor")

T("en", "mail", """
    Hi {own_first},

    This is {a_first} from QuickFix Plumbing. Just confirming I'll be at the flat ({own_london}) tomorrow between 9 and 11 to look at the boiler. The call-out fee is £{price:60-120}, parts extra.

    If the tenants aren't in, I can pick up the key from your neighbour, {b_full} - just let me know. My mobile is {a_phone}.

    Cheers,
    {a_full}
    """, a="en?", b="en")

T("en", "mail", """
    Hi {own_first},

    Hope you're well! I'm working with a Series B fintech in Singapore that is looking for a Head of Data Platform, and your background looks like a strong fit. Package is around ${price:180-260}k plus equity.

    Would you have 20 minutes for a call in May? My direct line is {a_phone}.

    Best regards,
    {a_full}
    Talent Bridge
    """, a="en:recruiter")

T("en", "mail", """
    Dear {own_en},

    Thank you for your reservation at The Lanes Hotel.

    Confirmation number: {order}
    Guest: {own_en}    Bonvoy member: {id_bonvoy}
    Arrival: {date_en}    Departure: {date_en2}
    Address: {addr_ennew}
    Additional guest: {a_full}
    Rate: ${price:160-420} per night, taxes included

    We look forward to welcoming you.
    """, a="en:friend")

T("en", "mail", """
    Your e-ticket receipt

    Booking reference: {booking}
    Passenger: {own_pnr}
    Flight {flight}  Shanghai (PVG) -> London (LHR)  {date_en}  dep 13:25  arr 18:05
    Frequent flyer: CA {id_phoenix}
    Passport: {id_passport}
    Seat: 42K    Baggage: 2PC

    Please be at the gate 30 minutes before departure.
    """)

T("en", "mail", """
    Hello {own_first},

    Your order #{order} has shipped and will arrive {date_en}.

    Ship to: {a_full}, {a_addr}
    Item: {product_en}
    Order total: £{price:15-300}

    Track your package in Your Orders: https://www.amazon.co.uk/gp/css/order-history
    """, a="en!:friend")

T("en", "mail", """
    Hi {own_first},

    Attached is invoice #{digits4} for the {proj_en} dashboard work ({qty:12-90} hours at €{price:60-120}/h). Please wire the amount to:

    Account holder: {a_full}
    IBAN: {iban}
    BIC: {bic}

    Thanks!
    {a_first}
    {a_phone}
    """, a="en:freelancer")

T("en", "mail", """
    Hi {own_first}, hi {b_first},

    Happy to connect you two. {b_first} runs data engineering at a logistics startup in Rotterdam and is working on the same problem you're tackling with {proj_en}. {own_first}, {b_he}'ll be in Shanghai the week of {date_en} - maybe grab a coffee?

    Email: {b_email}

    I'll let you take it from here.
    {a_first}
    """, a="en!:investor", b="en?")

T("en", "mail", """
    Hey {a_first},

    Quick heads-up: the PR you merged yesterday has a pre-signed link hard-coded in config/staging.toml:

        {surl}

    It is still valid for another 6 days. Can you rotate it and move it to Vault? Also, the staging box at {ip4} is exposing port 9200 to the internet.

    Thanks,
    {own_first}
    """, a="en:colleague")

T("en", "mail", """
    This week in Rust #{qty:520-560}

    Rust 1.78 is out with improved diagnostics. Read the release notes at https://blog.rust-lang.org/ and the updated book at https://www.rust-lang.org/learn.
    Upcoming meetups: Berlin (May 14), Paris (May 21), London ({date_en}).
    Quote of the week: "I will not write unsafe code" - a hopeful contributor.
    """)

T("en", "mail", """
    Hi all,

    Please mark the date: our team offsite will be in May, most likely the week of {date_en}. I will send the venue details once {a_first} confirms the booking at {addr_en}.

    Bring your rose-tinted glasses for the Q3 plan :)
    {own_first}
    """, a="en:colleague")

T("en", "mail", """
    Dear {own_first},

    Thanks for sending over the P60 and the rental statements for {own_london}. I have your UTR as {id_utr} and your National Insurance number as {id_ni} - please confirm both are current before I file.

    Rental income this year came to £{price:12000-24000}; after allowable expenses the taxable amount is roughly £{price2:6000-11000}.

    Regards,
    {a_full}
    {a_co}
    {a_phone}
    """, a="en!:accountant")

T("en", "mail", """
    Coucou {own_first} !

    I'm finally coming to Shanghai on {date_en} with {b_first}. Could we crash at your place for two nights? If not, no worries - we found an Airbnb at {addr_zhen}.

    My new number: {a_phone}
    Bisous,
    {a_first}
    """, a="en!:friend,f", b="en:friend")

T("en", "mail", """
    Dear {own_first},

    Following our call, Kranich GmbH would like to extend the {proj_en} pilot to our Hamburg warehouse. Our purchasing contact is {b_full} ({b_email}, {b_phone}). Please send the updated quote to {b_him} directly and copy me.

    Invoices should still go to our Berlin office: {a_addr}.

    Best regards,
    {a_full}
    """, a="en!:client", b="en?")

T("en", "mail", """
    Withdrawal confirmation

    You requested a withdrawal of 0.{digits4} BTC to {btc}.
    Network fee: 0.00002 BTC. Estimated arrival: 30 minutes.

    If this wasn't you, lock your account immediately. This request was made from IP {ip4} ({city_en}).
    """)

T("en", "mail", """
    {own_first}!!

    It's been ages. {b_first} and I finally moved - new address is {addr_ennew}, so update your contacts. Also, did you hear {c_full} left Google to start a bakery? Call me when you're up: {a_phone}

    {a_first}
    """, a="en!:friend", b="en", c="en")

T("en", "mail", """
    {own_first},

    Ahead of the board meeting on {date_en}, could you send the {proj_en} KPIs and the updated cap table? Also, {b_full} from our LP side would like to join as an observer - I'll forward {b_his} NDA tonight.

    /{a_first}
    """, a="en!:investor", b="en:investor")

T("en", "mail", """
    Hi {own_first},

    Your membership ({id_gym}) at Pure Fitness Xintiandi expires on {date_en}. Renew before then to keep your current rate of ¥{price:600-1200}/month.

    Your trainer {a_first} still has {qty:1-12} sessions left on your package.
    """, a="en?")

T("en", "mail", """
    Hi,

    I've lost my Visa card ending in {last4}. Please block it. The full number is {own_card} and it is linked to customer ID {id_barclays}. My billing address is {own_london}.

    {own_en}
    {own_ukphone}
    """, n=2)

T("en", "mail", """
    Hi {own_first},

    Sorry for the delay with the deposit refund for {addr_ennew}. Could you confirm your IBAN? I have {own_iban} on file, but the bank rejected the transfer with "beneficiary name mismatch". Should it be in the name of {own_en} or {own_py2}?

    Best,
    {a_full}
    """, a="en?")

T("en", "mail", """
    Hi {own_first},

    Someone requested a password reset for your account. If it was you, use this link within 30 minutes:

    {surl}

    If you didn't ask for this, you can ignore this email.
    """)

T("en", "mail", """
    Hi {a_first},

    Thanks for the lovely dinner last night - {b_first} is still talking about the risotto. I will send you the photos once I sort through them.

    Are you around in June? My sister {c_given} is visiting and would love to meet you.

    {own_first}
    """, a="en:friend", b="en", c="zh!:sister")

T("en", "mail", """
    Dear {a_title},

    Please find attached my signed engagement letter. For your records:
    Name: {own_en}
    Date of birth: 15 March 1990
    Address: {own_home_en}
    Passport: {id_passport}

    Many thanks,
    {own_first}
    """, a="en:accountant")

# ============================== English: chat ===============================

T("en", "chat", """
    {a_first}: are you joining the {proj_en} standup?
    me: yes, 2 min
    {a_first}: cool. I will share the dashboard, can you pull numbers from {ip4}?
    me: will do
    {a_first}: also {b_first} says the staging creds are in 1Password now
    """, n=4, a="en:colleague", b="en:work")

T("en", "chat", """
    {a_first}: dinner saturday?
    me: sure, where?
    {a_first}: that new thai place, {addr_en}
    me: 7pm works. bringing {b_first}
    {a_first}: perfect. mark it in your calendar or you'll forget lol
    """, a="en:friend", b="en")

T("en", "chat", """
    {a_first}: send me your ETH address for the split
    me: {eth}
    {a_first}: sent 0.42. btw my new one is {eth2}, the old wallet got drained
    me: ouch. got it
    """, a="en")

T("en", "chat", """
    {a_first}: webhook keeps failing
    me: which url are you hitting?
    {a_first}: {surl}
    me: that token expired yesterday, regenerate it in the console
    {a_first}: ah ok. also the db at {ip6} refuses connections
    """, a="en:work")

T("en", "chat", """
    me: hey did {a_lower} ever reply about the contract?
    {b_first}: not yet. i pinged {a_plainfirst} twice
    me: ok, i'll call {a_title} tomorrow morning
    """, a="en!", b="en!:colleague")

T("en", "chat", """
    A: what time is the flight?
    B: {flight} leaves at {time}, gate closes 30 min before
    A: ok. I will grab coffee. want anything?
    B: a flat white. and mark the receipt for expenses pls
    """)

T("en", "chat", """
    {a_full} (IT Helpdesk): Hi {own_first}, I've reset your VPN. Your laptop's IP on the office network is {ip4}.
    me: thanks! still can't reach the wiki
    {a_first}: try {pub_url} instead, the old link is deprecated
    """, a="en?")

T("en", "chat", """
    {a_first}: landed in Paris!! the Eiffel Tower is literally outside the window
    me: nice. which hotel?
    {a_first}: {addr_ennew}, room {room}
    me: {b_first} is in Paris this week too, here's her number: {b_phone}
    """, a="en:friend", b="en:f")

T("en", "chat", """
    {a_first}: can you pay the deposit? my card keeps getting declined
    me: sure, using mine: {own_card}, exp 08/27
    {a_first}: omg don't paste your card number in a group chat 😅
    me: lol fine, deleted
    """, a="en:friend")

T("en", "chat", """
    {a_first}: is the {proj_en} demo still on for {weekday_en}?
    me: yes, 3pm. {b_title} is joining from Berlin
    {a_first}: great. I'll book the big room. is {c_first} presenting?
    me: no, {c_he} is out sick
    """, a="en:work", b="en:work", c="en:colleague")

T("en", "chat", """
    A: did you see the Messi documentary?
    B: yes! and the one about Steve Jobs. will watch the Einstein one next
    A: haha you and your biopics. May I borrow your Netflix login? kidding
    B: it's ¥{price:40-90} a month, get your own 😂
    """)

T("en", "chat", """
    {a_first}: hey, got a new number - {a_phone}. old one's dead
    me: saved. are you still at {a_addr}?
    {a_first}: yep, same place. come visit!
    """, a="en:friend")

T("en", "chat", """
    {a_first}: what's your address again? want to send you something for your birthday
    me: {own_home_en}
    {a_first}: got it. still {own_phone} for the courier?
    me: yep
    """, a="en!:friend")

# ============================== English: notes ==============================

T("en", "note", """
    # {proj_en} sync - {date_iso}

    Attendees: {a_full}, {b_full}, {c_first}, me
    Notes:
    - {a_first} demoed the new ingestion pipeline; throughput up 3x vs {version}.
    - Legal review pending with {d_title}.
    - Next sync moved to Thursday; I will circulate an agenda.
    """, n=4, a="en:work", b="en:work", c="en:work", d="en")

T("en", "note", """
    // TODO({own_lower}): move secrets out before merging
    const EXPORT_URL: &str = "{surl}";
    const REPLICA: &str = "{ip4}:5432";
    // docs: https://docs.rs/tokio/latest/tokio/ (pinned to {version})
    """)

T("en", "note", """
    import requests

    # Ask {a_first} before changing the endpoint
    resp = requests.get("{surl}", timeout=10)
    resp.raise_for_status()
    print(len(resp.json()["items"]))  # expect ~{qty:100-5000} items
    """, a="en:work")

T("en", "note", """
    Lisbon trip
    Flight: {flight} on {date_en}
    Stay: {addr_ennew}
    Host: {a_full}, {a_phone}
    Travel insurance: {newid_policy}
    Notes: visit Belém Tower; ask {b_first} for restaurant tips
    """, a="en?", b="en")

T("en", "note", """
    Groceries:
    - 2 kg apples
    - eggs ({qty:6-12})
    - oat milk x3
    - a rose for the table
    - AA batteries (pack of 8)
    Budget: £{price:30-60}
    """)

T("en", "note", """
    Reading notes - "Einstein: His Life and Universe" (Isaacson)
    Chapter 5: the 1905 papers. Einstein was 26. Photoelectric effect -> Nobel in 1921. Compare with Marie Curie's two Nobels.
    Will finish by {date_en}; page {qty:40-600} has the best quote.
    """)

T("en", "note", """
    Passport renewal
    Current passport: {id_passport} (expires {date_iso})
    Chinese ID: {own_cnid}
    Photos: 33x48mm, white background
    Appointment at the exit-entry bureau, {addr_zhen}, {date_en} {time}
    """, n=2)

T("en", "note", """
    People to follow up with after the conference:
    - {a_full} ({a_email}) - interested in {proj_en}
    - {b_full} - wants an intro to {c_first}
    - {d_full}, {d_phone}
    """, a="en?", b="en", c="en!", d="en?")

T("en", "note", """
    1:1 with {a_first} ({date_iso})
    - feeling stretched between {proj_en} and {proj_en2}
    - wants to move to {proj_new} when it kicks off
    - asked about the promotion timeline; will raise it with {b_title}
    """, a="en:colleague", b="en:work")

T("en", "note", """
    Cold wallet receive addresses (do NOT share):
    BTC: {btc}
    BTC (legacy): {btc1}
    ETH: {eth}
    Ledger firmware {version}; seed phrase is in the safe.
    """)

T("en", "note", """
    | host   | ip            | owner |
    |--------|---------------|-------|
    | web-01 | {ip4}   | {a_first} |
    | web-02 | {ip42}   | {a_first} |
    | db-01  | {ip6} | {b_first} |
    """, a="en:work", b="en:work")

T("en", "note", """
    Claim for lost luggage (flight {flight}, {date_en})
    Policy: {id_axa}
    Claim ref: {newid_claim}
    Items: laptop bag, 2 shirts, charger - total approx. £{price:600-1800}
    Contact at AXA: {a_full}, {a_phone}
    """, a="en?")

T("en", "note", """
    Things to cancel before moving:
    - Netflix (billed to {own_card})
    - Spotify family - {a_first} pays with {card}
    - Gym membership {id_gym}
    - Broadband (contract ends {date_en})
    """, a="en")

T("en", "note", """
    Release checklist {version}
    - bump Cargo.lock, rerun cargo deny
    - tag commit {git_sha}
    - announce on https://users.rust-lang.org/
    - order {qty:50-300} stickers for the meetup in May
    """)

T("en", "note", """
    Paris ideas for {date_en}
    - Louvre early (tickets €22), then walk to the Eiffel Tower
    - dinner near Montmartre, ~€{price:70-160} for two
    - day trip to Versailles if it doesn't rain
    - transaction id for the museum pass: {neg_card}
    """)

T("en", "note", """
    Doctor's notes ({date_iso})
    Saw {a_title} about the thyroid results. TSH slightly high; retest in 3 months.
    Referral letter sent to {b_title}; NHS number {newid_patient}.
    Pharmacy at {addr_ennew}.
    """, a="en:doctor", b="en?")

T("en", "note", """
    Christmas cards {qty:2023-2024}
    - {a_full}, {a_addr}
    - {b_full}, {b_addr}
    - {c_first} (new place!): {addr_ennew}
    Post by {date_en}; stamps £2.20 each for Europe.
    """, a="en!", b="en!", c="en")

T("en", "note", """
    Order summary
    Order #{order}, {qty:1-5} x USB-C cables, £{price:8-40}
    Gift card serial: {neg_card}
    Delivery: {date_en}, between {time} and 18:00
    """)

# ============================== Mixed =======================================

T("mixed", "mail", """
    Dear {a_title},

    Thank you for hosting us in Shanghai last week. As discussed, {b_first} will send the pilot agreement for {proj_en}. You can reach {b_him} at {b_email}.

    Could you confirm the delivery address for the demo units - is it still {a_addr}?

    Best regards,
    {own_en}
    """, a="zh!:client", b="en!:colleague")

T("mixed", "chat", """
    {a_first}：staging 又挂了，{ip4} ping 不通
    我：我看看，可能是安全组改了
    {b_xiao}：是我改的😂 下午{c_first}让加白名单
    我：OK，把 {ip42} 也加进去
    """, n=4, a="en!:colleague", b="zh!:colleague", c="en:work")

T("mixed", "note", """
    Beijing trip - contacts
    - {a_full} ({a_py}), {a_phone}, meets us at the hotel
    - Hotel: {addr_zhnew}
    - Dinner with {b_hon} on Friday; {b_hon} prefers 烤鸭 (Peking duck)
    - Forbidden City tickets booked for {date_en}
    """, a="zh", b="zh")

T("mixed", "chat", """
    【招商银行】尊敬的{own_hon}，您尾号{last4}的账户于{date_zh}{time}向{a_full}转出人民币{price:500-20000}元。
    Dear customer, a transfer of CNY {price} to {a_py} was made from your account ending {last4}.
    """, a="zh")

T("mixed", "note", """
    {proj_zh} / {proj_en} alignment - {date_iso}
    参会：{a_full}, {b_first}, {c_xl}
    - {b_first}: API freeze by {date_en}
    - {c_xl}：数据迁移还差{pct}%
    - Action: send summary to {d_email}
    """, n=4, a="zh:work", b="en:work", c="zh:work", d="en:work")

T("mixed", "chat", """
    me: {a_hon} hi, the AC in the bedroom is broken again
    {a_hon}：好的{own_hon}，我明天叫{b_hon:师傅}过去修
    me: thanks! I'm home after 6pm. address is {own_home}, right?
    {a_hon}：对的
    """, a="zh!:landlord", b="zh?:m")

T("mixed", "note", """
    Guest registration / 住客登记
    Name 姓名: {a_full}
    ID No. 证件号: {a_cnid}
    Phone 电话: {a_phone}
    Address 地址: {a_addr}
    Room 房号: {room}   Nights: 2   Rate: ¥{price:380-1200}
    """, n=4, a="zh")

T("mixed", "note", """
    Visa application checklist 签证材料
    - Passport 护照: {id_passport}
    - 身份证: {own_cnid}
    - Bank statement: 招行, account holder {own_py}
    - Invitation letter from {a_full}, {a_addr}
    - Travel dates: {date_en} - {date_en2}
    """, a="en!")

T("mixed", "chat", """
    {a_first}: {own_given}, are we still on for 周六?
    me: yes! 我订了{addr_zh}那家火锅
    {a_first}: great, I'll bring {b_full}. she's been dying to try Sichuan food
    """, a="en:friend", b="zh:f")

T("mixed", "mail", """
    Hi {own_first},

    附件是{proj_zh}项目的英文版介绍，{a_hon}让我转给你。Please review before the call with {b_full} on {date_en}.

    另外 the test cluster credentials changed - use {surl}
    {c_full}
    """, a="zh:work", b="en:work", c="zh:work")

T("mixed", "note", """
    fn main() {{
        // 连接生产库前先找{a_xl}要权限
        let db = connect("{ip}", 5432);
        let rows = db.query("SELECT count(*) FROM orders WHERE qty > {qty:1-100}");
        println!("{{}}", rows);
    }}
    """, a="zh:work")

T("mixed", "chat", """
    {a_first}：这周末的 hackathon 你来吗？
    我：来，不过{proj_en}那边{weekday}要 release {version}
    {a_first}：OK, I will cover for you on Saturday morning
    """, a="en:colleague")


# ---------------------------------------------------------------------------
# Memory corpus
# ---------------------------------------------------------------------------

OWNER_SIG_ZH = f"""——
{OWNER['zh']}
{OWNER['company_zh']}　数据平台负责人
手机：{OWNER['phone']}
邮箱：{OWNER['wemail']}
地址：{OWNER['office']}"""

OWNER_SIG_EN = f"""--
{OWNER['en']}
Head of Data Platform, {OWNER['company_en']}
M: {OWNER['phone']} | UK: {OWNER['ukphone']}
{OWNER['office_en']}"""

# (direction, subject, body). "in" = contact -> owner, "out" = owner -> contact.
MAILS = {
    "王建国": ("in", "关于仓储系统二期的报价", """思远：

上周的会开得很好。二期我们内部又过了一遍，主要是增加华东三个仓的接入，预算希望控制在去年的水平。蓝鲸项目的保密协议我这边已经签好，扫描件附上。

下周找个时间再碰一下？"""),
    "李娜": ("in", "本周产品周报", """思远，

本周青鸟的需求评审已经完成，孙浩那边预计下周三提测。用户访谈约了五家客户，时间表见附件。

有问题随时说～"""),
    "张伟": ("in", "续租的事", """林先生：

您好！房子的租约下个月到期，我同意按原价续租两年，月租不变。合同我打印好了，您看哪天方便，我到永嘉路那边找您签字。

另外燃气公司下周有人上门检查，麻烦留个门。"""),
    "陈静": ("in", "下学期钢琴课安排", """林先生好，

下学期的课还是安排在每周六上午十点，地点不变。小朋友进步很快，可以开始准备四级的考级曲目了。学费按学期交，具体见附件。"""),
    "刘洋": ("in", "复查提醒", """林思远您好：

您上次的心电图和血脂结果我看过了，总体正常，LDL略高，建议三个月后复查，饮食上少油少盐。复查时带上就诊卡（MZ20230418112）即可。"""),
    "赵敏": ("in", "个税汇算材料清单", """思远：

今年的个税汇算需要准备：工资流水、租房合同、房东身份证信息、境外收入证明。英国那边的利息收入也要一起申报，你把Barclays的年度对账单发我一份。"""),
    "周杰": ("in", "平安健康险续保提醒", """林先生您好，

您的平安健康险（保单号 PA-HLT-2023-0871245）将于下月到期，续保保费与去年持平。如需为家人增加保障，可以随时联系我。"""),
    "吴磊": ("out", "周六羽毛球", """老吴：

周六下午两点老地方打球，龙华中路596号那个球馆，我订了两片场地。叫上晓燕他们一起吧。"""),
    "黄晓燕": ("in", "生日聚会", """思远～

下周五是我生日，晚上七点在常德路800号那家火锅店，来的话回我一下哈。别带礼物！"""),
    "孙浩": ("in", "磐石服务器迁移方案", """思远：

磐石的服务器迁移方案初稿已完成，新集群准备放在华东2。老机房的数据预计两个周末迁完，期间会有短暂停机。方案文档放在共享盘了。"""),
    "胡军": ("in", "合作协议审阅意见", """林先生：

您发来的与恒远物流的合作协议我已看过，第7条的违约责任约定过重，建议修改；数据归属条款需写明归贵司所有。修改稿见附件。"""),
    "郭芳": ("in", "年假及体检安排", """思远：

今年的年度体检安排在下个月，名单已经报给体检中心。你还剩8天年假，年底前记得休完。你的工号 LT-04417，系统里可以直接预约。"""),
    "林思雨": ("in", "妈下周复查", """哥：

妈下周三去医院复查血压，我请了假陪她去。你要是能回来就好了。另外爸说家里热水器坏了，我已经叫人来修了。"""),
    "何雪": ("in", "蓝鲸新版UI稿", """思远，新版UI稿已上传到Figma，主要改了首页和报表页，配色按你说的换成了深蓝。周四评审前帮忙看一下～"""),
    "高远": ("in", "关于下一轮融资", """思远：

上次聊的下一轮融资，我们投委会有兴趣，想先看一下蓝鲸和磐石的核心数据。下月初我来上海，我们当面聊。"""),
    "郑婷婷": ("in", "房源推荐", """林先生您好，

根据您的需求，给您筛选了三套徐汇区的房源，都在地铁站附近。您周末有空的话我带您看房，随时联系我。"""),
    "José Álvarez": ("out", "Bluefin pilot timeline", """Hi José,

Following our call: we'll start the Bluefin pilot with two warehouses in Madrid in June. Liam will be your technical contact. Let's keep the scope under NDA for now."""),
    "Mark Thompson": ("in", "Self assessment 2022/23", """Dear Simon,

Your self-assessment has been filed. For your records: UTR 53829 10466, NI number JT 48 19 27 C. Rental income from Aldridge Road Villas was declared in full. Please send the new tenancy agreement when you have it."""),
    "Rose Miller": ("in", "Bath this summer?", """Simon!

Are you coming to the UK this summer? The spare room at Orchard Lane is yours whenever you want. Bring Siyu if she's free!"""),
    "Will Harris": ("in", "Nightjar on-call rota", """Hi Simon,

Attached is the on-call rota for Nightjar for next quarter. Liam and I will alternate weeks; I've put you as escalation for the first two weeks of July."""),
    "May Okafor": ("in", "Halcyon brand concepts", """Hi Simon,

Here are three brand concepts for Halcyon. I'd lean towards option B. Happy to jump on a call Thursday."""),
    "Paul Martin": ("in", "Your AXA travel policy", """Dear Simon,

I've renewed your annual travel policy with AXA (policy AXA-TR-77120458). The correspondence address is now your Shanghai flat."""),
    "Björn Lindqvist": ("in", "Copperleaf follow-up", """Simon,

Thanks for walking us through Copperleaf. The partners liked it. Could you send the data room link and the latest cap table?"""),
    "Chloé Lefèvre": ("in", "Paris en septembre ?", """Simon !

Tu viens à Paris en septembre ? You can stay at my place on Rue des Martyrs, the sofa bed is now a real bed. Bisous"""),
    "Priya Natarajan": ("in", "Your test results", """Dear Mr Lin,

Your thyroid panel is within normal limits except for a mildly raised TSH. I suggest repeating the test in three months. Please book through the clinic reception."""),
    "Hannah Schmidt": ("in", "Pilot in Berlin", """Dear Simon,

We would like to start the Bluefin pilot at our Berlin warehouse in Q3. Please send the contract draft to me; invoices should be addressed to our office on Kastanienallee."""),
    "Liam O'Connor": ("in", "Nightjar ingestion benchmarks", """Simon, benchmarks attached. The new ingestion path is about 3x faster on the replay set. I'll present it at Thursday's sync."""),
    "Fatima Haddad": ("in", "Opportunity in Singapore", """Hi Simon,

I hope you don't mind me reaching out. I'm hiring for a Head of Data role at a Series B fintech in Singapore. Would you be open to a short call?"""),
    "Renée Dubois": ("in", "Cours de jeudi", """Bonjour Simon,

Le cours de jeudi est déplacé à 19h. N'oubliez pas les exercices du chapitre 6. À jeudi !"""),
    "Greg Kowalski": ("in", "Halcyon dashboard - March invoice", """Hi Simon,

Invoice for March attached (62 hours). Same bank details as before. The Halcyon dashboard is deployed to staging."""),
    "Emily Carter": ("in", "NYC in October?", """Simon,

Any chance you're in New York in October? We'd love to have you over. Still on Bleecker Street, same apartment."""),
    "David Chen": ("in", "Copperleaf paper draft", """Simon,

Attached is the draft of our joint paper on the Copperleaf anomaly detection results. Could you check the numbers in section 4 before Friday?"""),
    "Sarah Goldberg": ("in", "Intro via Björn", """Hi Simon,

Björn suggested we talk - we're looking at data infrastructure companies in Asia and I'd love to hear about what you're building. Free next week?"""),
    "林国栋": ("out", "爸，体检报告", """爸：

您的体检报告我看了，整体还好，就是血糖有点偏高，平时少吃甜的。下个月我回杭州陪您去复查。"""),
}

SERVICE_MAILS = [
    ("招商银行信用卡中心", "cmbchina@message.cmbchina.com", "招商银行信用卡电子账单",
     f"""尊敬的林先生：

您的信用卡账单已出。一网通客户号：{OWNER_IDS['cmb'][0]}。
本期应还款额请于到期还款日前还清。"""),
    ("Air China PhoenixMiles", "phoenixmiles@airchina.com", "Your PhoenixMiles statement",
     f"""Dear Mr LIN SIYUAN,

Your PhoenixMiles membership number {OWNER_IDS['phoenix'][0]} earned 4,820 miles this quarter."""),
    ("Marriott Bonvoy", "bonvoy@email.marriott.com", "Your Bonvoy account summary",
     f"""Hello Simon,

Member number: {OWNER_IDS['bonvoy'][0]}
You have 12,400 points."""),
    ("Barclays", "noreply@barclays.co.uk", "Your statement is ready",
     f"""Dear Mr Lin,

Your statement for account {group4(OWNER['iban'])} is ready to view.
Customer ID: {OWNER_IDS['barclays'][0]}"""),
    ("国网上海电力", "service@sh.sgcc.com.cn", "电费账单提醒",
     f"""尊敬的客户：

您的用电户号 {OWNER_IDS['power'][0]}（{OWNER['home']}）本月电费已出账，请及时缴纳。"""),
    ("Pure Fitness", "members@purefitness.cn", "Welcome to Pure Fitness Xintiandi",
     f"""Hi Simon,

Welcome! Your membership number is {OWNER_IDS['gym'][0]}. Our club is at {PLACES_ZH[2]}."""),
]


def contact_signature(c):
    if c["lang"] == "zh":
        lines = ["——", c["full"]]
        if c["co"]:
            lines.append(f"{c['co']}　{c['role']}")
        lines.append(f"手机：{c['phone']}")
        if c.get("email"):
            lines.append(f"邮箱：{c['email']}")
        if c.get("addr"):
            lines.append(f"地址：{c['addr'][0]}")
    else:
        lines = ["--", c["full"]]
        if c["co"]:
            lines.append(f"{c['role']}, {c['co']}")
        lines.append(f"T: {c['phone']}")
        if c.get("addr"):
            lines.append(c["addr"][0])
    return "\n".join(lines)


def hdr(value, encode):
    if encode and not value.isascii():
        return Header(value, "utf-8").encode()
    return value


def addr_hdr(name, email, encode):
    if encode and not name.isascii():
        return f"{Header(name, 'utf-8').encode()} <{email}>"
    if re.search(r"[^\w .-]", name):
        return f'"{name}" <{email}>'
    return f"{name} <{email}>"


def eml(rng, frm, to, subject, body, when, domain):
    encode = rng.random() < 0.67
    msgid = hashlib.sha1((frm[1] + subject + when.isoformat()).encode()).hexdigest()[:20]
    headers = [
        f"From: {addr_hdr(frm[0], frm[1], encode)}",
        f"To: {addr_hdr(to[0], to[1], encode)}",
        f"Subject: {hdr(subject, encode)}",
        f"Date: {format_datetime(when)}",
        f"Message-ID: <{msgid}@{domain}>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
    ]
    return "\n".join(headers) + "\n\n" + body.rstrip() + "\n"


def mail_date(rng):
    tz = datetime.timezone(datetime.timedelta(hours=8))
    base = datetime.datetime(2023, 6, 1, 8, 0, tzinfo=tz)
    return base + datetime.timedelta(days=rng.randint(0, 320), minutes=rng.randint(0, 12 * 60))


def slug(s):
    s = strip_accents(s).lower()
    return re.sub(r"[^a-z0-9]+", "-", s).strip("-")


def build_memory(rng):
    files = {}
    owner_personal = (OWNER["en"], OWNER["email"])
    # ---- mails -------------------------------------------------------------
    for i, c in enumerate(CONTACTS):
        c_email = c.get("email")
        if not c_email or c["full"] not in MAILS:
            continue
        direction, subject, body = MAILS[c["full"]]
        when = mail_date(rng)
        zh = c["lang"] == "zh"
        owner_addr = (OWNER["zh"] if zh else OWNER["en"],
                      OWNER["wemail"] if "work" in c["tags"] or "client" in c["tags"] else OWNER["email"])
        if direction == "in":
            text = body + "\n\n" + contact_signature(c)
            frm, to = (c["full"], c_email), owner_addr
        else:
            text = body + "\n\n" + (OWNER_SIG_ZH if zh else OWNER_SIG_EN)
            frm, to = owner_addr, (c["full"], c_email)
        if rng.random() < 0.3:   # some are replies quoting the other side
            subject = ("回复：" if zh else "Re: ") + subject
        name = f"mail/{when:%Y%m%d}-{slug(c['py'] if zh else c['full'])}.eml"
        files[name] = eml(rng, frm, to, subject, text, when, frm[1].split("@")[1])
    # parents have no e-mail: a mail from the owner's sister about them, and one to dad via sister
    when = mail_date(rng)
    father = next(c for c in ZH_CONTACTS if c["full"] == "林国栋")
    sister = next(c for c in ZH_CONTACTS if c["full"] == "林思雨")
    _, subject, body = MAILS["林国栋"]
    files[f"mail/{when:%Y%m%d}-lin-guodong-via-siyu.eml"] = eml(
        rng, (OWNER["zh"], OWNER["email"]), (sister["full"], sister["email"]),
        subject, "思雨，帮我把这封转给爸。\n\n" + body + f"\n\n（爸的手机 {father['phone']}）\n\n" + OWNER_SIG_ZH,
        when, "fastmail.com")
    for name, addr, subject, body in SERVICE_MAILS:
        when = mail_date(rng)
        files[f"mail/{when:%Y%m%d}-{slug(addr.split('@')[1])}.eml"] = eml(
            rng, (name, addr), owner_personal, subject, body, when, addr.split("@")[1])
    # a few longer threads
    wang = ZH_CONTACTS[0]
    when = mail_date(rng)
    files[f"mail/{when:%Y%m%d}-wang-jianguo-thread.eml"] = eml(
        rng, (OWNER["zh"], OWNER["wemail"]), (wang["full"], wang["email"]),
        "回复：蓝鲸项目启动会纪要",
        f"""王总：

启动会纪要如下：
1. 蓝鲸一期覆盖恒远物流上海、苏州两个仓；
2. 我方项目经理李娜，技术负责人孙浩，设计何雪；
3. 贵方对接人为您本人，技术对接待定。

{OWNER_SIG_ZH}

> 在 2023年7月3日，王建国 <{wang['email']}> 写道：
> 思远，启动会的纪要麻烦整理一下发我，谢谢。
>
{textwrap.indent(contact_signature(wang), '> ')}""", when, "lantu-tech.cn")
    jose = EN_CONTACTS[0]
    when = mail_date(rng)
    files[f"mail/{when:%Y%m%d}-jose-alvarez-thread.eml"] = eml(
        rng, (jose["full"], jose["email"]), (OWNER["en"], OWNER["wemail"]),
        "Re: Bluefin - Madrid site visit",
        f"""Hi Simon,

Confirmed for the 14th. Our office is at {jose['addr'][0]}; ask for me at the front desk. Hannah Schmidt from Kranich may join by video.

{contact_signature(jose)}

On Mon, Simon Lin <{OWNER['wemail']}> wrote:
> José, can we do the Bluefin site visit in Madrid mid-month? I'll bring Will Harris.
>
> {OWNER['en']}
> {OWNER['phone']}""", when, "brisamar.es")

    # ---- notes -------------------------------------------------------------
    rows = ["# Contacts", "", "| Name | Email | Phone | Company / role | Notes |",
            "|---|---|---|---|---|"]
    for c in CONTACTS:
        name = f"{c['full']} ({c['py']})" if c["lang"] == "zh" else c["full"]
        if c["lang"] == "en" and c.get("zh"):
            name += f" / {c['zh']}"
        co = ", ".join(x for x in [c["role"], c["co"]] if x)
        rows.append(f"| {name} | {c.get('email') or ''} | {c['phone']} | {co} | "
                    f"{', '.join(sorted(c['tags']))} |")
    files["notes/contacts.md"] = "\n".join(rows) + "\n"

    lines = ["# 通讯录（常用称呼）", ""]
    for c in ZH_CONTACTS:
        call = []
        if c["hon"] and not c["tags"] & {"mother", "father"}:
            call.append(c["sur"] + c["hon"])
        call.append(("小" if c["age"] == "young" else "老") + c["sur"])
        call += c["nick"]
        if c["tags"] & {"mother"}:
            call = ["妈"]
        if c["tags"] & {"father"}:
            call = ["爸"]
        if c["tags"] & {"sister"}:
            call = [c["given"], "妹妹"]
        lines.append(f"- {c['full']}（{'、'.join(call)}）：{c['role']}，{c['co'] or '—'}，"
                     f"{'电话' if c['phone'].startswith('0') else '手机'} {c['phone']}" + (f"，邮箱 {c['email']}" if c.get("email") else ""))
    files["notes/通讯录.md"] = "\n".join(lines) + "\n"

    lines = ["# Addresses / 地址", "", "## 我", "",
             f"- 家：{OWNER['home']}",
             f"- Home (English): {OWNER['home_en']}",
             f"- 公司：{OWNER['office']}",
             f"- Office (English): {OWNER['office_en']}",
             f"- London flat (let out): {OWNER['london']}", "", "## 家人和朋友", ""]
    for c in CONTACTS:
        if c.get("addr"):
            lines.append(f"- {c['full']}：{c['addr'][0]}")
    lines += ["", "## 常去的地方", "",
              f"- 火锅店：{PLACES_ZH[0]}", f"- 羽毛球馆：{PLACES_ZH[1]}",
              f"- 健身房（Pure Fitness）：{PLACES_ZH[2]}", f"- 团建餐厅：{PLACES_ZH[3]}",
              f"- The Crown, Covent Garden: {PLACES_EN[0]}",
              f"- Chloé's favourite bistro: {PLACES_EN[1]}",
              f"- Brisamar office: {PLACES_EN[2]}"]
    files["notes/addresses.md"] = "\n".join(lines) + "\n"

    files["notes/accounts.md"] = f"""# Accounts & IDs (private!)

- Passport 护照: {OWNER_IDS['passport'][0]} (expires 2031-08)
- 身份证: {OWNER['cnid']}
- 招商银行一网通客户号: {OWNER_IDS['cmb'][0]}
- 招行借记卡: {group4(OWNER['unionpay'])}
- Barclays current account IBAN: {group4(OWNER['iban'])}
- Barclays customer ID: {OWNER_IDS['barclays'][0]}
- Barclays Visa: {group4(OWNER['card'])}
- 平安健康险保单号: {OWNER_IDS['pingan'][0]} (agent 周杰)
- AXA travel insurance: {OWNER_IDS['axa'][0]} (broker Paul Martin)
- 国航知音卡 PhoenixMiles: {OWNER_IDS['phoenix'][0]}
- Marriott Bonvoy: {OWNER_IDS['bonvoy'][0]}
- UK National Insurance: {OWNER_IDS['ni'][0]}
- HMRC UTR: {OWNER_IDS['utr'][0]}
- 工号: {OWNER_IDS['emp'][0]}
- 国家电网户号: {OWNER_IDS['power'][0]}
- 瑞金医院就诊卡: {OWNER_IDS['patient'][0]}
- Pure Fitness membership: {OWNER_IDS['gym'][0]}
- Email: {OWNER['email']} (personal), {OWNER['wemail']} (work)
- Phone: {OWNER['phone']}, UK {OWNER['ukphone']}
"""

    mom, dad = ZH_CONTACTS[14], ZH_CONTACTS[15]
    files["notes/家人.md"] = f"""# 家人

- 妈妈：{mom['full']}，{mom['phone']}（家里座机），住 {mom['addr'][0]}
- 爸爸：{dad['full']}，手机 {dad['phone']}，跟妈妈住一起
- 妹妹：{sister['full']}，{sister['phone']}，{sister['email']}
  - 住址：{sister['addr'][0]}
  - 身份证：{sister['cnid']}（帮她订票用）
- 外甥女在上海学钢琴，老师是陈静（陈老师）

妈的生日是农历八月十二，爸的生日是5月3日。
"""
    landlord = ZH_CONTACTS[2]
    files["notes/租房.md"] = f"""# 租房信息

房东：{landlord['full']}（张先生），手机 {landlord['phone']}，身份证 {landlord['cnid']}
房东住址：{landlord['addr'][0]}
租住地址：{OWNER['home']}
月租按月转账到房东招行卡，押二付三，租期到明年6月。
中介：郑婷婷（链居地产），{ZH_CONTACTS[18]['phone']}
钟点工：马丽华（马阿姨），{ZH_CONTACTS[10]['phone']}，每周二、五上午
"""
    files["notes/projects/bluefin.md"] = """# Project Bluefin

Code name for the warehouse-routing pilot. Confidential - do not use the name outside the team.

- Partners: José Álvarez (Brisamar Tecnologías, Madrid), Hannah Schmidt (Kranich GmbH, Berlin)
- Team: Will Harris (EM), Liam O'Connor (data), 孙浩 (backend)
- Pilot: two Madrid warehouses from June, Berlin in Q3
- Open questions: data residency in the EU, pricing per route
"""
    files["notes/projects/nightjar.md"] = """# Nightjar

Internal streaming ingestion rewrite (replaces the old batch loader).

- Owners: Will Harris, Liam O'Connor
- Target: 3x throughput, p99 < 200 ms
- On-call: Will and Liam alternate; escalation to me
"""
    files["notes/projects/halcyon.md"] = """# Halcyon

Customer-facing analytics dashboard + rebrand.

- Design: May Okafor (brand), 何雪 (product UI)
- Frontend contractor: Greg Kowalski
- Launch goal: end of Q3
"""
    files["notes/projects/copperleaf.md"] = """# Copperleaf

Anomaly-detection research with Dr. David Chen (Pinecrest University).

- Joint paper in preparation
- Björn Lindqvist (Nordvik Capital) and Sarah Goldberg (Foundry Ventures) have seen the deck
"""
    files["notes/projects/蓝鲸.md"] = """# 蓝鲸项目

恒远物流仓储系统改造，对方负责人王建国（王总）。项目代号对外保密。

- 产品经理：李娜
- 技术负责人：孙浩
- 设计：何雪
- 合同审阅：胡军律师
"""
    files["notes/projects/青鸟.md"] = """# 青鸟计划

用户增长App，面向中小物流公司。

- 负责人：李娜
- 开发：孙浩、Liam O'Connor
- 目标：年底前月活10万
"""
    files["notes/projects/磐石.md"] = """# 磐石

基础设施迁移项目：老机房迁到云上。

- 负责人：孙浩
- 投资人高远（北辰资本）对磐石的成本数据很感兴趣
"""
    files["notes/meetings/2024-01-15-蓝鲸周会.md"] = """# 蓝鲸周会 2024-01-15

参会：王建国、李娜、孙浩、何雪、我

1. 苏州仓接入延期一周，孙浩跟进。
2. 何雪出新版报表页设计。
3. 王总希望春节前上线一期。
"""
    files["notes/meetings/2024-02-02-bluefin-sync.md"] = """# Bluefin sync - 2024-02-02

Attendees: José Álvarez, Hannah Schmidt, Will Harris, Liam O'Connor, me

- José: Madrid sites ready in June.
- Hannah: Berlin warehouse wants to join in Q3; procurement needs a quote.
- Liam: routing model v2 ready for replay tests.
"""
    files["notes/meetings/2024-03-08-1on1-liam.md"] = """# 1:1 with Liam - 2024-03-08

- Enjoying Nightjar, a bit stretched with Bluefin on top.
- Wants to present at the Rust meetup.
- Follow up with Will Harris about the promotion cycle.
"""
    files["notes/medical.txt"] = f"""Medical / 看病

- 瑞金医院心内科 刘洋医生（主任医师），就诊卡 {OWNER_IDS['patient'][0]}
- London: Dr. Priya Natarajan, {EN_CONTACTS[8]['addr'][0]}, {EN_CONTACTS[8]['phone']}
- 平安健康险 {OWNER_IDS['pingan'][0]}，理赔找周杰 {ZH_CONTACTS[6]['phone']}
- 过敏：青霉素（轻度）
"""
    files["notes/travel-2023-london.txt"] = f"""London trip, Aug 2023

- Stay with Rose Miller in Bath for the weekend ({EN_CONTACTS[2]['addr'][0]})
- Meet Mark Thompson re: tax ({EN_CONTACTS[1]['addr'][0]})
- Check the flat at {OWNER['london']} - tenants leaving in October
- PhoenixMiles {OWNER_IDS['phoenix'][0]}, passport {OWNER_IDS['passport'][0]}
"""
    files["notes/todo.md"] = f"""# TODO

- [ ] 给王总发蓝鲸二期报价
- [ ] Send Copperleaf numbers to David Chen
- [ ] 续交电费（户号 {OWNER_IDS['power'][0]}）
- [ ] Renew AXA travel insurance ({OWNER_IDS['axa'][0]})
- [ ] 问赵姐个税汇算的事
- [ ] Rose's birthday present
- [ ] 周六陈老师钢琴课，接外甥女
"""
    files["notes/french-class.txt"] = """Cours de français - Alliance Française
Teacher: Renée Dubois, jeudi 19h
Chapter 6 exercises due. Practice with Chloé when in Paris.
"""
    return files


# ---------------------------------------------------------------------------
# Evaluation set
# ---------------------------------------------------------------------------

TYPES = ["PERSON", "EMAIL", "PHONE", "ADDRESS", "IBAN", "CARD", "CN_ID", "IP", "CRYPTO",
         "URL", "ID", "PROJECT"]
PATTERN_TYPES = ["EMAIL", "PHONE", "IBAN", "CARD", "CN_ID", "IP", "CRYPTO", "URL"]
MEMORY_TYPES = ["PERSON", "ADDRESS", "ID", "PROJECT"]

EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
IPV4_RE = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
DIGITRUN_RE = re.compile(r"(?<![\w-])\d(?:[ -]?\d){14,18}(?![\w-])")
CNID_RE = re.compile(r"(?<!\d)\d{17}[\dX](?!\d)")


def check_labels(text, ents):
    """Guard against unlabelled checksum-valid items and overlapping labels."""
    covered = [False] * len(text)
    last_end = -1
    for e in sorted(ents, key=lambda e: e["start"]):
        assert e["start"] >= last_end, ("overlap", e, text)
        last_end = e["end"]
        for i in range(e["start"], e["end"]):
            covered[i] = True
        if e["type"] == "IBAN":
            assert iban_ok(e["text"]), e
        if e["type"] == "CARD":
            assert luhn_ok(re.sub(r"\D", "", e["text"])), e
        if e["type"] == "CN_ID":
            assert cnid_ok(e["text"]), e

    def free(m):
        return not any(covered[m.start():m.end()])

    for m in EMAIL_RE.finditer(text):
        assert not free(m), ("unlabelled e-mail", m.group(0), text)
    for m in IPV4_RE.finditer(text):
        assert not free(m), ("unlabelled IPv4", m.group(0), text)
    for m in DIGITRUN_RE.finditer(text):
        if free(m):
            assert not luhn_ok(re.sub(r"\D", "", m.group(0))), ("Luhn-valid negative", m.group(0), text)
    for m in CNID_RE.finditer(text):
        if free(m):
            assert not cnid_ok(m.group(0)), ("valid CN ID unlabelled", m.group(0), text)


def build_eval(rng):
    records, seen = [], set()
    for t in TEMPLATES:
        made = tries = 0
        while made < t["n"]:
            tries += 1
            assert tries < 60, ("cannot make enough distinct texts", t["text"][:60])
            text, ents = render(t["text"], t["who"], rng)
            if text in seen:
                continue
            assert len(ents) <= 8, (len(ents), text)
            check_labels(text, ents)
            seen.add(text)
            records.append(dict(lang=t["lang"], kind=t["kind"], text=text, entities=ents))
            made += 1
    rng.shuffle(records)
    per = Counter()
    out = []
    for r in records:
        per[(r["lang"], r["kind"])] += 1
        out.append({"id": "%s-%s-%03d" % (r["lang"], r["kind"], per[(r["lang"], r["kind"])]),
                    "lang": r["lang"], "kind": r["kind"], "text": r["text"],
                    "entities": [{"type": e["type"], "start": e["start"], "end": e["end"],
                                  "text": e["text"], "known": e["known"]}
                                 for e in sorted(r["entities"], key=lambda e: e["start"])]})
    return out


def stats(records, memory_files):
    s = {}
    s["texts"] = len(records)
    s["by_lang"] = Counter(r["lang"] for r in records)
    s["by_kind"] = Counter(r["kind"] for r in records)
    s["by_lang_kind"] = Counter((r["lang"], r["kind"]) for r in records)
    s["empty"] = sum(1 for r in records if not r["entities"])
    s["types"] = Counter(e["type"] for r in records for e in r["entities"])
    s["types_by_lang"] = Counter((r["lang"], e["type"]) for r in records for e in r["entities"])
    s["known"] = Counter(e["type"] for r in records for e in r["entities"] if e["known"])
    s["entities"] = sum(s["types"].values())
    s["max_per_text"] = max(len(r["entities"]) for r in records)
    s["memory_files"] = len(memory_files)
    s["memory_by_ext"] = Counter(os.path.splitext(f)[1] for f in memory_files)
    mem_total = sum(s["types"][t] for t in MEMORY_TYPES)
    mem_known = sum(s["known"][t] for t in MEMORY_TYPES)
    s["memory_known_share"] = mem_known / mem_total
    return s


def format_stats(s):
    langs = ["zh", "en", "mixed"]
    out = []
    out.append(f"Texts: {s['texts']}  (no entities: {s['empty']}, "
               f"{100 * s['empty'] / s['texts']:.1f}%; max entities in one text: {s['max_per_text']})")
    out.append("")
    out.append("| language | mail | chat | note | total | share |")
    out.append("|---|---:|---:|---:|---:|---:|")
    for lang in langs:
        row = [s["by_lang_kind"][(lang, k)] for k in ["mail", "chat", "note"]]
        out.append(f"| {lang} | {' | '.join(map(str, row))} | {s['by_lang'][lang]} | "
                   f"{100 * s['by_lang'][lang] / s['texts']:.1f}% |")
    out.append("")
    out.append(f"Entities: {s['entities']}")
    out.append("")
    out.append("| type | total | zh | en | mixed | in memory (`known`) |")
    out.append("|---|---:|---:|---:|---:|---:|")
    for t in TYPES:
        n = s["types"][t]
        k = s["known"][t]
        out.append(f"| {t} | {n} | " + " | ".join(str(s["types_by_lang"][(l, t)]) for l in langs)
                   + f" | {k} ({100 * k / n:.0f}%) |")
    out.append("")
    out.append(f"PERSON/ADDRESS/ID/PROJECT mentions that refer to something in memory: "
               f"{100 * s['memory_known_share']:.1f}%")
    out.append("")
    out.append(f"Memory corpus: {s['memory_files']} files ("
               + ", ".join(f"{n} {e}" for e, n in sorted(s["memory_by_ext"].items())) + ")")
    return "\n".join(out)


README = """# PII scrubber evaluation set

Evaluation data for the prompt scrubber (`crates/flurry-privacy`): before a prompt
leaves the owner's node, personal data must be replaced by placeholders. The data
here was written independently of the scrubber's code, so the numbers it produces
are an honest estimate of recall and precision.

Everything in this folder except `make_eval.py` is generated:

    python3 tests/privacy/make_eval.py

The generator is deterministic (fixed seed `{seed}`, Python 3 standard library only):
running it twice produces identical files. Edit the generator, not the outputs.

## Files

- `make_eval.py` - the generator: identity of the owner, contacts, strangers,
  address pools, value generators with valid checksums (Luhn, IBAN mod-97,
  ISO 7064 MOD 11-2 for Chinese resident IDs, bech32 / base58check for Bitcoin,
  EIP-55 for Ethereum) and ~{ntemplates} text templates.
- `memory/` - the owner's private memory, i.e. what the scrubber learns its entity
  list from:
  - `memory/mail/*.eml` - RFC 5322 mails (`From: Name <addr>`, `To:`, `Subject:`,
    `Date:`, `Message-ID:`, `MIME-Version: 1.0`,
    `Content-Type: text/plain; charset=utf-8`, 8bit body, LF line endings).
    About two thirds of the mails with non-ASCII names/subjects use RFC 2047
    encoded words (`=?utf-8?b?...?=`), the rest raw UTF-8 headers (RFC 6532), as
    real mail does. Bodies end with signatures carrying phone numbers and addresses;
    some quote earlier messages.
  - `memory/notes/*.md|txt` - a contacts table, a Chinese address book with the
    usual forms of address (王总, 小李, 老吴, ...), an addresses note, an accounts/IDs
    note, family and rental notes, one note per private project, meeting notes.
- `eval.jsonl` - the labelled texts, one JSON object per line:

      {{"id": "zh-mail-001", "lang": "zh", "kind": "mail", "text": "...",
       "entities": [{{"type": "PERSON", "start": 0, "end": 3, "text": "王建国", "known": true}}]}}

  `start`/`end` are Python `str` (Unicode code point) offsets, end exclusive;
  `text[start:end] == entity.text` is asserted by the generator. Rust users: convert
  code points to byte offsets (`char_indices`) before slicing.
  `known` (extra field) says whether the entity is in the memory corpus (for pattern
  types: whether that exact value appears in memory). It is there to split recall
  into "learnable from memory" vs "only findable by patterns/luck"; a scorer may ignore it.
- `README.md` - this file.

## The owner

林思远 / Simon Lin, data platform lead at 上海澜图信息科技有限公司 (Lantu Technology),
lives in Shanghai, previously London (still owns a flat there), sister in Hangzhou.
{ncontacts} contacts in memory ({nzh} with Chinese names), private projects
{projects}.

## Labels

Every personal entity is labelled, whether or not a scrubber could plausibly find it.

| type | what |
|---|---|
| PERSON | names of private people in any form: full name, first name alone, `Mr. Martin`/`Dr. Chen` (title included in the span), lower case, without accents (`Jose` for `José`), pinyin (`Wang Jianguo`, `Jianguo Wang`), airline form `LIN/SIYUAN MR`; Chinese full names, surname + honorific (`王总`, `张先生`, `李老师`, `罗师傅`, honorific included in the span), `小王`/`老张`, given names and nicknames (`思远`, `晓燕`). Possessive `'s` is outside the span. |
| EMAIL | every e-mail address |
| PHONE | phone numbers in international/national formats (`+44 20 7946 0958`, `(415) 555-0132`, `138 0013 8000`, `+86 138-0013-8000`, `010-6552 9988`, ...) |
| ADDRESS | street-level addresses (`北京市朝阳区建国路88号`, `Flat 4, 18 Aldridge Road Villas, London W11 1BL`), including business and hotel addresses; the whole address incl. city/postcode is one span |
| IBAN | valid mod-97 IBANs, spaced or compact |
| CARD | payment card numbers with a valid Luhn digit (15, 16 or 19 digits) |
| CN_ID | 18-character Chinese resident ID numbers with a valid check character |
| IP | IPv4 and IPv6 addresses (private ranges included) |
| CRYPTO | Ethereum (`0x` + 40 hex, lower case or EIP-55) and Bitcoin (bech32 `bc1q...`, base58 `1...`/`3...`) addresses |
| URL | URLs carrying a secret (`token=`, `key=`, `sig=`, `access_token`, `pwd=`, password in userinfo); the whole URL is the span |
| ID | persistent identifiers of a person: account, customer, policy, membership, passport, patient, employee, tax / National Insurance numbers |
| PROJECT | private project code names; only the code name (`Bluefin`, `蓝鲸`), not the words `Project`/`项目`/`计划` around it |

Not labelled (hard negatives, present on purpose): quantities, prices, dates, times,
years, version numbers (`v2.3.1`), flight and train numbers, order numbers, booking
references, tracking numbers, transaction/serial numbers (16-digit ones fail Luhn,
18-digit ones fail the CN ID check), the last 4 digits of a card and masked numbers
(`139****4417`), bank BIC codes, git hashes, public URLs without secrets, public
figures (Einstein, Taylor Swift, 马云, 鲁迅, 李白, ...), cities, landmarks and street
names without a number (Paris, 北京, 长城, 西湖, 永嘉路物业), big public companies
(Google, Amazon, 阿里巴巴, 招商银行), kinship terms (妈, 爸, 哥), and ordinary words
that are also names or contain surnames: "I will", "mark the date", "a rose",
"in May", 张开 (open), 高明 (clever), 周末, 马上, 老王卖瓜 (idiom).

About {known_pct}% of PERSON/ADDRESS/ID/PROJECT mentions refer to entities present in
memory (in varied surface forms), the rest to strangers (a plumber, a new colleague,
a courier, a recruiter, hotels and shops), new IDs (a new policy number, a relative's
patient number) and new project names.

## Counts

{counts}
"""


def write_outputs():
    _self_test()
    mem_files = build_memory(random.Random(SEED + 1))
    records = build_eval(random.Random(SEED))
    texts = [r["text"] for r in records]
    assert len(set(texts)) == len(texts), "duplicate texts"

    if os.path.isdir(MEMORY_DIR):
        shutil.rmtree(MEMORY_DIR)
    for name in sorted(mem_files):
        path = os.path.join(MEMORY_DIR, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write(mem_files[name])

    with open(EVAL_PATH, "w", encoding="utf-8", newline="\n") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")

    # Re-read and re-check what was written.
    with open(EVAL_PATH, encoding="utf-8") as f:
        back = [json.loads(line) for line in f]
    for r in back:
        for e in r["entities"]:
            assert r["text"][e["start"]:e["end"]] == e["text"], (r["id"], e)

    s = stats(back, mem_files)
    counts = format_stats(s)
    with open(README_PATH, "w", encoding="utf-8", newline="\n") as f:
        f.write(README.format(
            seed=SEED, ntemplates=len(TEMPLATES), ncontacts=len(CONTACTS),
            nzh=len(ZH_CONTACTS), projects=", ".join(PROJECTS_EN + PROJECTS_ZH),
            known_pct=round(100 * s["memory_known_share"]), counts=counts))
    print(counts)
    return s


def main():
    s = write_outputs()
    problems = []
    if s["texts"] < 320:
        problems.append("fewer than 320 texts")
    if s["by_lang"]["zh"] / s["texts"] < 0.40:
        problems.append("less than 40% Chinese texts")
    for t in PATTERN_TYPES:
        if s["types"][t] < 20:
            problems.append(f"{t} < 20")
    for t, n in [("PERSON", 300), ("ADDRESS", 60), ("ID", 40), ("PROJECT", 30)]:
        if s["types"][t] < n:
            problems.append(f"{t} < {n}")
    if problems:
        print("PROBLEMS: " + "; ".join(problems), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
