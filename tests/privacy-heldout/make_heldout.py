#!/usr/bin/env python3
"""Generator for the held-out PII evaluation set (tests/privacy-heldout/).

Written independently of the scrubber (crates/flurry-privacy) and of the first
set's generator: different owner, people, places, projects and writing.
Python 3 standard library only, fixed seed, byte-identical output on re-run:

    python3 tests/privacy-heldout/make_heldout.py

Texts are written with inline markup  [[TYPE±:surface]]  which is stripped and
turned into code-point spans.  TYPE codes:
  P PERSON, EM EMAIL, PH PHONE, AD ADDRESS, IB IBAN, CA CARD, CN CN_ID, IP IP,
  CR CRYPTO, URL URL, ID ID, PR PROJECT.
'+' = refers to something in memory, '-' = not.  PERSON/ADDRESS/PROJECT must
carry a sign; for the pattern types (and ID without a sign) `known` is computed
by looking the normalised value up in the generated memory corpus.
"""
import base64
import datetime
import hashlib
import json
import os
import random
import re
import shutil

SEED = 20250611
HERE = os.path.dirname(os.path.abspath(__file__))
rng = random.Random(SEED)

# ---------------------------------------------------------------------------
# checksum helpers
# ---------------------------------------------------------------------------

def luhn_ok(num):
    s = 0
    for i, ch in enumerate(reversed(num)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        s += d
    return s % 10 == 0


def luhn_card(prefix, length):
    body = prefix + "".join(str(rng.randrange(10)) for _ in range(length - len(prefix) - 1))
    for c in "0123456789":
        if luhn_ok(body + c):
            return body + c
    raise AssertionError


def not_luhn(length, prefix=""):
    while True:
        n = prefix + "".join(str(rng.randrange(10)) for _ in range(length - len(prefix)))
        if not luhn_ok(n):
            return n


def group(s, n=4, sep=" "):
    return sep.join(s[i:i + n] for i in range(0, len(s), n))


def iban_check(country, bban):
    rearranged = bban + country + "00"
    num = "".join(str(int(c, 36)) for c in rearranged)
    return "%02d" % (98 - int(num) % 97)


def iban_ok(iban):
    iban = iban.replace(" ", "")
    r = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in r)) % 97 == 1


def make_iban(country, bban):
    return country + iban_check(country, bban) + bban


def es_bban():
    def dc(digits):
        w = [1, 2, 4, 8, 5, 10, 9, 7, 3, 6]
        d = 11 - sum(int(a) * b for a, b in zip(digits, w)) % 11
        return {11: 0, 10: 1}.get(d, d)
    bank = "%04d" % rng.choice([2100, 182, 81, 49, 2038])
    branch = "%04d" % rng.randrange(1, 9999)
    acct = "".join(str(rng.randrange(10)) for _ in range(10))
    return bank + branch + str(dc("00" + bank + branch)) + str(dc(acct)) + acct


CNID_W = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def cnid_check(first17):
    return "10X98765432"[sum(int(a) * b for a, b in zip(first17, CNID_W)) % 11]


def cn_id(area, birth, female):
    seq = rng.randrange(10, 99) * 10 + rng.choice([0, 2, 4, 6, 8] if female else [1, 3, 5, 7, 9])
    f17 = area + birth + "%03d" % seq
    datetime.date(int(birth[:4]), int(birth[4:6]), int(birth[6:]))  # real date
    return f17 + cnid_check(f17)


def not_cnid(prefix):
    while True:
        f17 = prefix + "".join(str(rng.randrange(10)) for _ in range(17 - len(prefix)))
        last = rng.choice("0123456789")
        if cnid_check(f17) != last:
            return f17 + last


def nie():
    p = rng.choice("XYZ")
    n = "%07d" % rng.randrange(10 ** 7)
    return p + n + "TRWAGMYFPDXBNJZSQVHLCKE"[int(str("XYZ".index(p)) + n) % 23]


def sg_fin(prefix):
    d = [rng.randrange(10) for _ in range(7)]
    s = sum(a * b for a, b in zip(d, [2, 7, 6, 5, 4, 3, 2])) + (4 if prefix in "TG" else 0)
    table = "JZIHGFEDCBA" if prefix in "ST" else "XWUTRQPNMLK"
    return prefix + "".join(map(str, d)) + table[s % 11]


def de_steuer_id():
    while True:
        digits = rng.sample(range(10), 9)
        digits.append(rng.choice(digits))
        rng.shuffle(digits)
        if digits[0] != 0:
            break
    product = 10
    for d in digits:
        s = (d + product) % 10
        if s == 0:
            s = 10
        product = (s * 2) % 11
    chk = 11 - product
    if chk == 10:
        chk = 0
    return "".join(map(str, digits)) + str(chk)


# --- Keccak-256 (for EIP-55) ----------------------------------------------
_RC = [0x0000000000000001, 0x0000000000008082, 0x800000000000808A, 0x8000000080008000,
       0x000000000000808B, 0x0000000080000001, 0x8000000080008081, 0x8000000000008009,
       0x000000000000008A, 0x0000000000000088, 0x0000000080008009, 0x000000008000000A,
       0x000000008000808B, 0x800000000000008B, 0x8000000000008089, 0x8000000000008003,
       0x8000000000008002, 0x8000000000000080, 0x000000000000800A, 0x800000008000000A,
       0x8000000080008081, 0x8000000000008080, 0x0000000080000001, 0x8000000080008008]
_ROT = [[0, 36, 3, 41, 18], [1, 44, 10, 45, 2], [62, 6, 43, 15, 61], [28, 55, 25, 21, 56], [27, 20, 39, 8, 14]]
_M = (1 << 64) - 1


def _rol(v, n):
    return ((v << n) | (v >> (64 - n))) & _M if n else v


def _keccak_f(A):
    for rc in _RC:
        C = [A[x][0] ^ A[x][1] ^ A[x][2] ^ A[x][3] ^ A[x][4] for x in range(5)]
        D = [C[(x - 1) % 5] ^ _rol(C[(x + 1) % 5], 1) for x in range(5)]
        A = [[A[x][y] ^ D[x] for y in range(5)] for x in range(5)]
        B = [[0] * 5 for _ in range(5)]
        for x in range(5):
            for y in range(5):
                B[y][(2 * x + 3 * y) % 5] = _rol(A[x][y], _ROT[x][y])
        A = [[B[x][y] ^ ((~B[(x + 1) % 5][y]) & B[(x + 2) % 5][y]) for y in range(5)] for x in range(5)]
        A[0][0] ^= rc
    return A


def keccak256(data):
    rate = 136
    msg = bytearray(data) + b"\x01"
    while len(msg) % rate:
        msg += b"\x00"
    msg[-1] |= 0x80
    A = [[0] * 5 for _ in range(5)]
    for off in range(0, len(msg), rate):
        block = msg[off:off + rate]
        for i in range(rate // 8):
            x, y = i % 5, i // 5
            A[x][y] ^= int.from_bytes(block[8 * i:8 * i + 8], "little")
        A = _keccak_f(A)
    out = b""
    for i in range(4):
        out += A[i % 5][i // 5].to_bytes(8, "little")
    return out


assert keccak256(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"


def eip55(hex40):
    h = keccak256(hex40.lower().encode()).hex()
    return "0x" + "".join(c.upper() if c.isalpha() and int(h[i], 16) >= 8 else c for i, c in enumerate(hex40.lower()))


assert eip55("5aaeb6053f3e94c9b9a09f33669435e7ef1beaed") == "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"


def eth_addr(checksummed=True):
    h = "".join(rng.choice("0123456789abcdef") for _ in range(40))
    return eip55(h) if checksummed else "0x" + h


# --- bech32 / base58check ---------------------------------------------------
_B32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _polymod(values):
    gen = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3]
    chk = 1
    for v in values:
        b = chk >> 25
        chk = (chk & 0x1ffffff) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if ((b >> i) & 1) else 0
    return chk


def _hrp_expand(hrp):
    return [ord(x) >> 5 for x in hrp] + [0] + [ord(x) & 31 for x in hrp]


def _convertbits(data, frombits, tobits):
    acc = bits = 0
    ret = []
    maxv = (1 << tobits) - 1
    for v in data:
        acc = (acc << frombits) | v
        bits += frombits
        while bits >= tobits:
            bits -= tobits
            ret.append((acc >> bits) & maxv)
    if bits:
        ret.append((acc << (tobits - bits)) & maxv)
    return ret


def bech32_addr(prog):
    data = [0] + _convertbits(prog, 8, 5)
    values = _hrp_expand("bc") + data
    pm = _polymod(values + [0] * 6) ^ 1
    chk = [(pm >> 5 * (5 - i)) & 31 for i in range(6)]
    return "bc1" + "".join(_B32[d] for d in data + chk)


assert bech32_addr(bytes.fromhex("751e76e8199196d454941c45d1b3a323f1433bd6")) == "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58check(version, payload):
    raw = bytes([version]) + payload
    raw += hashlib.sha256(hashlib.sha256(raw).digest()).digest()[:4]
    n = int.from_bytes(raw, "big")
    s = ""
    while n:
        n, r = divmod(n, 58)
        s = _B58[r] + s
    return "1" * (len(raw) - len(raw.lstrip(b"\x00"))) + s


assert b58check(0, bytes(20)) == "1111111111111111111114oLvT2"


def rbytes(n):
    return bytes(rng.randrange(256) for _ in range(n))


def rhex(n):
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def ralnum(n, alphabet="ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"):
    return "".join(rng.choice(alphabet) for _ in range(n))


# ---------------------------------------------------------------------------
# generated values (order of generation is fixed -> deterministic)
# ---------------------------------------------------------------------------
V = {}
# cards
V["card_cmb"] = luhn_card("621483", 16)          # owner, 招商银行 debit (memory)
V["card_citic_visa"] = luhn_card("4392", 16)     # owner, 中信 Visa credit (memory)
V["card_amex"] = luhn_card("3712", 15)           # owner, Amex (memory)
V["card_dkb"] = luhn_card("5355", 16)            # owner, old German DKB Visa debit (memory, mastercard-like prefix)
V["card_feng_19"] = luhn_card("621700", 19)      # brother 晓峰's CCB card (memory)
V["card_landlord"] = luhn_card("622202", 19)     # landlord 冯德明 ICBC (memory)
V["card_new_visa"] = luhn_card("4563", 16)       # owner's replacement card (not in memory)
V["card_mom_new"] = luhn_card("622848", 19)      # mother's new ABC card (not in memory)
V["card_ayi"] = luhn_card("621799", 19)          # new cleaner 覃阿姨 (not in memory)
V["card_sg_friend"] = luhn_card("5412", 16)      # Ben's card he pasted by mistake (not in memory)
V["card_es"] = luhn_card("4940", 16)             # hotel card on file (new)
# hard-negative numbers
V["txn16"] = not_luhn(16, "2024")
V["txn16b"] = not_luhn(16, "8800")
V["serial18"] = not_cnid("4403")
V["serial18b"] = not_cnid("5101")
# IBANs
V["iban_de_owner"] = make_iban("DE", "12030000" + "%010d" % rng.randrange(10 ** 9, 10 ** 10))  # memory
V["iban_es_domotek"] = make_iban("ES", es_bban())                                        # memory
V["iban_de_kathi"] = make_iban("DE", "10050000" + "%010d" % rng.randrange(10 ** 9, 10 ** 10))  # memory
V["iban_es_supplier"] = make_iban("ES", es_bban())                                       # new
V["iban_nl_new"] = make_iban("NL", "INGB" + "%010d" % rng.randrange(10 ** 9, 10 ** 10))  # new
V["iban_de_jonas"] = make_iban("DE", "70150000" + "%010d" % rng.randrange(10 ** 9, 10 ** 10))  # new
V["iban_gb_new"] = make_iban("GB", "MIDL" + "400515" + "%08d" % rng.randrange(10 ** 7, 10 ** 8))  # new
# Chinese IDs
V["id_owner"] = cn_id("510107", "19910314", True)
V["id_dad"] = cn_id("510104", "19620827", False)
V["id_mom"] = cn_id("510107", "19650203", True)
V["id_feng"] = cn_id("510107", "19880719", False)
V["id_lei"] = cn_id("510108", "19900512", True)      # sister-in-law 王蕾, not in memory
V["id_ayi"] = cn_id("452402", "19750929", True)      # cleaner 覃阿姨, not in memory
V["id_zixuan"] = cn_id("440306", "20011106", False)  # intern 谢子轩 (memory, HR mail)
V["id_nephew"] = cn_id("510107", "20160229", False)  # nephew 苏小宝, not in memory
# other personal identifiers
V["passport"] = "E" + "%08d" % rng.randrange(10 ** 7, 10 ** 8)
V["passport_new"] = "EJ" + "%07d" % rng.randrange(10 ** 6, 10 ** 7)
V["emp_id"] = "BW-%05d" % rng.randrange(10000, 99999)
V["emp_zixuan"] = "BW-%05d" % rng.randrange(10000, 99999)
V["sz_social"] = "%09d" % rng.randrange(6 * 10 ** 8, 7 * 10 ** 8)
V["krisflyer"] = "%010d" % rng.randrange(8 * 10 ** 9, 9 * 10 ** 9)
V["phoenix"] = "00%10d" % rng.randrange(10 ** 9, 10 ** 10)
V["miles_more"] = "9922 " + " ".join("%04d" % rng.randrange(10000) for _ in range(3))
V["nie_owner"] = nie()
V["nie_new"] = nie()
V["steuer_id"] = de_steuer_id()
V["sg_fin_owner"] = sg_fin("G")
V["sg_nric_new"] = sg_fin("S")
V["policy_pingan"] = "P%d" % rng.randrange(10 ** 13, 10 ** 14)
V["policy_new"] = "8%d" % rng.randrange(10 ** 14, 10 ** 15)
V["patient_dental"] = "YK%07d" % rng.randrange(10 ** 6, 10 ** 7)
V["patient_mom"] = "%010d" % rng.randrange(10 ** 9, 10 ** 10)
V["cmb_customer"] = "%010d" % rng.randrange(10 ** 9, 10 ** 10)
V["gym_member"] = "SZ-%06d" % rng.randrange(10 ** 5, 10 ** 6)
V["matrikel"] = "03%05d" % rng.randrange(10 ** 4, 10 ** 5)
V["wechat_id"] = "nina_su0314"
# crypto
V["eth_owner"] = eth_addr(True)
V["eth_ben"] = eth_addr(False)
V["eth_new"] = eth_addr(True)
V["btc_bech32"] = bech32_addr(rbytes(20))
V["btc_p2pkh"] = b58check(0, rbytes(20))
V["btc_p2sh"] = b58check(5, rbytes(20))
# secrets in URLs
V["url_token"] = "https://files.baywave.cn/share/download?f=kestrel-prd-v4.pdf&token=" + rhex(32)
V["url_baidu"] = "https://pan.baidu.com/s/1" + ralnum(22) + "?pwd=" + ralnum(4, "abcdefghjkmnpqrstuvwxyz23456789")
V["url_sig"] = "https://drive.lumio.sg/d/tidewater-site-survey.xlsx?expires=1718000000&sig=" + rhex(40)
V["url_userinfo"] = "https://nina:" + ralnum(10) + "@nas.suhome.lan:5001/photos"
V["url_access"] = "https://api.domotek.es/v2/devices?access_token=" + ralnum(36)
V["url_key"] = "https://grafana.baywave.cn/d/kestrel-fleet?orgId=1&key=" + ralnum(28)
V["url_tencent"] = "https://meeting.tencent.com/dm/" + ralnum(12) + "?pwd=" + "%06d" % rng.randrange(10 ** 6)
# git hashes (negatives)
V["git1"] = rhex(40)
V["git2"] = rhex(7)
V["git3"] = rhex(12)
# added later (kept after the original values so that those stay stable)
V["id_panyue"] = cn_id("360102", "19980621", False)      # new colleague 潘越, not in memory
V["id_landlord"] = cn_id("440301", "19660915", False)    # landlord 冯德明's ID, not in memory
V["id_yangxue"] = cn_id("510105", "19910807", True)      # 杨雪, not in memory
V["emp_panyue"] = "BW-%05d" % rng.randrange(70000, 79999)
V["card_invalid16"] = not_luhn(16, "6225")               # look-alike (negative)
V["card_invalid19"] = not_luhn(19, "6217")               # look-alike (negative)
V["serial18c"] = not_cnid("1101")                        # look-alike (negative)
_ib = V["iban_es_supplier"]
V["iban_bad"] = _ib[:2] + "%02d" % ((int(_ib[2:4]) + 7) % 97 + 2) + _ib[4:]   # wrong check digits (negative)
V["eth_tx"] = "0x" + rhex(64)                            # transaction hash (negative)
V["btc_bech32_new"] = bech32_addr(rbytes(20))
V["eth_lukas"] = eth_addr(True)
V["url_reset"] = "https://portal.lumio.sg/account/reset?uid=nina.su&token=" + ralnum(40)
V["url_feishu"] = "https://baywave.feishu.cn/share/base/form?shareToken=shr" + ralnum(24)
V["url_dropbox"] = "https://www.dropbox.com/scl/fi/" + ralnum(21).lower() + "/Hochzeit-Fotos.zip?rlkey=" + ralnum(25).lower() + "&dl=0"
V["dni_lucia"] = "%08d" % rng.randrange(10 ** 7, 10 ** 8)
V["dni_lucia"] += "TRWAGMYFPDXBNJZSQVHLCKE"[int(V["dni_lucia"]) % 23]
V["member_gym_new"] = "SZ-%06d" % rng.randrange(10 ** 5, 10 ** 6)
V["policy_car"] = "AGUZ%014d" % rng.randrange(10 ** 13, 10 ** 14)
V["url_s3"] = ("https://baywave-builds.s3.ap-east-1.amazonaws.com/kestrel/fw-1.4.2.bin?X-Amz-Algorithm=AWS4-HMAC-SHA256"
                "&X-Amz-Credential=AKIA" + ralnum(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") + "%2F20240612%2Fap-east-1%2Fs3%2Faws4_request"
                "&X-Amz-Expires=604800&X-Amz-Signature=" + rhex(64))
V["url_github"] = "https://x-access-token:ghs_" + ralnum(36) + "@github.com/baywave/kestrel-fw.git"
V["url_wecom"] = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=%s-%s-%s-%s-%s" % (rhex(8), rhex(4), rhex(4), rhex(4), rhex(12))
V["url_zoom"] = "https://lumio.zoom.us/j/87344122903?pwd=" + ralnum(32)
V["url_magic"] = "https://app.domotek.es/auth/magic?email=nina.su%40baywave.cn&login_token=" + ralnum(48)
V["url_amap"] = "https://restapi.amap.com/v3/geocode/geo?address=%E6%B7%B1%E5%9C%B3&key=" + rhex(32)
V["eth_kathi"] = eth_addr(False)
V["btc_ben_legacy"] = b58check(0, rbytes(20))
V["iban_es_montse"] = make_iban("ES", es_bban())
V["card_feng_new"] = luhn_card("625965", 16)
V["svnr"] = "65 140391 S 528"                            # German social insurance no. (owner, memory)

for k in ("card_cmb", "card_citic_visa", "card_amex", "card_dkb", "card_feng_19", "card_landlord",
          "card_new_visa", "card_mom_new", "card_ayi", "card_sg_friend", "card_es"):
    assert luhn_ok(V[k]), k
for k in ("iban_de_owner", "iban_es_domotek", "iban_de_kathi", "iban_es_supplier", "iban_nl_new",
          "iban_de_jonas", "iban_gb_new"):
    assert iban_ok(V[k]), k
assert not luhn_ok(V["txn16"]) and not luhn_ok(V["txn16b"])
assert cnid_check(V["serial18"][:17]) != V["serial18"][17]
assert not luhn_ok(V["card_invalid16"]) and not luhn_ok(V["card_invalid19"]) and not iban_ok(V["iban_bad"])

# ---------------------------------------------------------------------------
# the owner and the people in memory.  aliases = surface forms that refer to
# the person (used to check the '+' marks of PERSON mentions).
# ---------------------------------------------------------------------------
PEOPLE = {
    "owner": ["苏晓楠", "晓楠", "楠楠", "苏小姐", "苏经理", "小苏", "苏姐", "苏女士", "晓楠姐", "Nina", "Nina Su", "Su Xiaonan", "Xiaonan Su",
              "Xiaonan", "SU/XIAONAN MS", "Su", "Ms Xiaonan Su", "MS SU XIAONAN", "Xiaonan (Nina) Su", "Su, Xiaonan", "Nina姐", "Sra. Su", "Ms. Su", "Ms Su", "Frau Su", "nina", "Xiao-Nan Su"],
    "huang": ["黄志强", "黄总", "强哥", "阿强", "Kevin", "Kevin Huang", "Huang Zhiqiang", "老黄", "kevin", "Mr. Huang"],
    "liang": ["梁嘉欣", "嘉欣", "小梁", "Jessie", "Jessie Liang", "jessie", "欣欣"],
    "qiu": ["邱文博", "文博", "邱工", "老邱", "Wenbo", "Qiu Wenbo", "wenbo"],
    "he": ["何颖", "颖姐", "何经理", "Ying", "He Ying", "Ying He"],
    "zeng": ["曾国栋", "老曾", "曾工", "国栋", "Zeng Guodong"],
    "luo": ["罗敏", "敏姐", "罗经理", "Luo Min", "Min Luo", "Min"],
    "xie": ["谢子轩", "小谢", "子轩", "Zixuan", "Zixuan Xie", "Xie Zixuan"],
    "ye": ["叶振宇", "叶总", "Ye Zhenyu", "Zhenyu", "Mr. Ye"],
    "chang": ["常乐", "乐乐", "小常", "Chang Le", "Le Chang"],
    "zhong": ["钟慧", "钟姐", "钟会计", "Zhong Hui"],
    "dad": ["苏建华", "苏老师", "Su Jianhua"],
    "mom": ["刘淑芬", "刘阿姨", "Liu Shufen"],
    "feng": ["苏晓峰", "晓峰", "阿峰", "峰哥", "Su Xiaofeng", "Xiaofeng", "Feng"],
    "yang": ["杨雪", "雪儿", "小雪", "Yang Xue", "杨小雪"],
    "feng_ll": ["冯德明", "冯叔", "冯先生", "老冯", "Feng Deming"],
    "wen": ["温海燕", "温医生", "Dr. Wen", "温大夫"],
    "tao": ["陶国平", "陶师傅", "老陶"],
    "tian": ["田静", "田会计", "田姐"],
    "alvaro": ["Álvaro Gutiérrez", "Álvaro", "Alvaro", "Alvaro Gutierrez", "Mr. Gutiérrez", "Gutiérrez", "alvaro",
               "Sr. Gutiérrez", "阿尔瓦罗"],
    "lucia": ["Lucía Fernández", "Lucía", "Lucia", "Lucia Fernandez", "Lucía Fernández Ruiz", "lucia", "Ms. Fernández", "露西亚"],
    "jordi": ["Jordi Puig", "Jordi", "jordi", "Puig"],
    "weiling": ["Tan Wei Ling", "Wei Ling", "Weiling", "Ms Tan", "weiling", "陈慧玲"],
    "rajesh": ["Rajesh Kumar", "Rajesh", "Raj", "raj", "Mr. Kumar"],
    "grace": ["Grace Lim", "Grace", "grace", "Ms Lim", "林恩典"],
    "ben": ["Benjamin Goh", "Ben Goh", "Ben", "ben", "Benjamin"],
    "kathi": ["Katharina Weber", "Kathi", "Katharina", "kathi", "Kathi Weber"],
    "jonas": ["Jonas Hoffmann", "Jonas", "jonas", "Herr Hoffmann"],
    "brandt": ["Matthias Brandt", "Prof. Brandt", "Prof. Dr. Matthias Brandt", "Prof. Dr. Brandt", "Brandt",
               "Professor Brandt", "Matthias"],
    "lei": ["蕾蕾", "王蕾"],
    "xiaobao": ["小宝", "苏小宝"],
    "kai": ["阿凯"],
    "tobi": ["Tobi", "Tobias"],
    "montse": ["Montse"],
    "xiaohuang": ["小黄"],
    "qian": ["钱永福", "钱老板", "钱总", "老钱"],
    "mo": ["莫家豪", "莫总"],
    "lukas": ["Lukas Schäfer", "Lukas", "Lukas Schaefer", "Lukas Schafer", "lukas", "Luki", "Herr Schäfer"],
}
ALIASES = {}
for _k, _names in PEOPLE.items():
    for _n in _names:
        ALIASES[_n.lower()] = _k

# addresses in memory (exact forms as written there); shortened forms are
# listed in ADDR_ALIASES and count as known.
A = {
    "home": "深圳市南山区蛇口望海路1177号海韵花园3栋1502室",
    "office": "深圳市南山区高新南七道29号湾岸大厦12楼",
    "parents": "成都市武侯区玉林南路17号2单元502室",
    "feng": "成都市锦江区水碾河路55号4栋1单元801",
    "yang_venue": "成都市青羊区琴台路56号",
    "dental": "深圳市南山区南海大道2163号来福士广场3楼",
    "domotek": "Carrer de Pallars 193, 08005 Barcelona",
    "lumio": "71 Ayer Rajah Crescent, #03-18, Singapore 139951",
    "kathi": "Kastanienallee 47, 10435 Berlin",
    "munich_old": "Schleißheimer Straße 214, 80797 München",
    "tum": "Boltzmannstraße 15, 85748 Garching bei München",
    "lukas": "Rotebühlstraße 88, 70178 Stuttgart",
    "ben": "Blk 412 Bedok North Ave 2, #08-115, Singapore 460412",
    "hotel_bcn": "Carrer de Casp 9, 08010 Barcelona",
    "factory": "东莞市长安镇振安中路368号鼎丰工业园B栋",
    "teahouse": "成都市锦江区下东大街199号",
    "sg_hotel": "86 East Coast Road, Singapore 428788",
}
ADDR_ALIASES = list(A.values()) + [
    "望海路1177号海韵花园3栋1502", "海韵花园3栋1502", "南山区望海路1177号海韵花园3栋1502室", "海韵花园3栋1502室",
    "高新南七道29号湾岸大厦12楼", "高新南七道29号", "湾岸大厦12楼",
    "玉林南路17号2单元502", "玉林南路17号2单元502室", "武侯区玉林南路17号",
    "水碾河路55号4栋1单元801", "琴台路56号", "南海大道2163号来福士广场3楼",
    "Carrer de Pallars 193", "Pallars 193", "71 Ayer Rajah Crescent", "71 Ayer Rajah Crescent, #03-18",
    "Kastanienallee 47", "Schleißheimer Str. 214", "Schleissheimer Strasse 214", "Boltzmannstraße 15",
    "Rotebühlstraße 88", "Bedok North Ave 2, #08-115", "Blk 412 Bedok North Ave 2", "Carrer de Casp 9",
    "Carrer de Pallars 193, Barcelona", "Wanghai Road 1177, Haiyun Garden Bldg 3, Rm 1502, Shekou, Nanshan, Shenzhen",
    "1177 Wanghai Rd, Haiyun Garden 3-1502, Nanshan District, Shenzhen",
    "12F Wan'an Tower, 29 Gaoxin South 7th Rd, Nanshan, Shenzhen",
    "Room 1502, Building 3, Haiyun Garden, 1177 Wanghai Road, Shekou, Nanshan District, Shenzhen 518067, China",
    "振安中路368号鼎丰工业园B栋", "长安镇振安中路368号", "下东大街199号", "86 East Coast Road",
]
ADDR_ALIASES_L = [a.lower() for a in ADDR_ALIASES]

PROJECTS_MEM = ["Kestrel", "Monsoon", "Tidewater", "Lantern", "锦鲤", "青藤", "火山"]
PROJ_ALIASES = [p.lower() for p in PROJECTS_MEM] + ["volcano"]   # English name of 火山 (same project)

# ---------------------------------------------------------------------------
# memory corpus
# ---------------------------------------------------------------------------
MEM = {}          # relative path -> bytes
MEM_PLAIN = []    # decoded text of every memory file (for `known` look-ups)


def enc_word(s):
    if all(ord(c) < 128 for c in s):
        return s
    words, cur = [], ""
    for ch in s:
        if len((cur + ch).encode()) > 36:
            words.append(cur)
            cur = ""
        cur += ch
    words.append(cur)
    return "\n ".join("=?utf-8?b?" + base64.b64encode(w.encode()).decode() + "?=" for w in words)


def addr_hdr(name, addr, encode):
    if not name:
        return "<%s>" % addr
    if encode:
        n = enc_word(name)
    else:
        n = '"%s"' % name if any(c in name for c in ",.()") else name
    return "%s <%s>" % (n, addr)


def eml(fname, frm, to, subject, when, body, encode=True, cc=None, extra=None):
    """frm/to: (name, addr); when: 'YYYY-MM-DD HH:MM' in +0800 unless tz given."""
    date_s, tz = (when.split("|") + ["+0800"])[:2]
    dt = datetime.datetime.strptime(date_s, "%Y-%m-%d %H:%M")
    domain = frm[1].split("@")[1]
    hdr = [
        "From: " + addr_hdr(frm[0], frm[1], encode),
        "To: " + addr_hdr(to[0], to[1], encode),
    ]
    if cc:
        hdr.append("Cc: " + ", ".join(addr_hdr(n, a, encode) for n, a in cc))
    hdr += [
        "Subject: " + (enc_word(subject) if encode else subject),
        "Date: " + dt.strftime("%a, %d %b %Y %H:%M:00 ") + tz,
        "Message-ID: <%s.%s@%s>" % (rhex(12), rhex(6), domain),
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
    ]
    if extra:
        hdr += extra
    text = "\n".join(hdr) + "\n\n" + body.strip("\n") + "\n"
    MEM["mail/" + fname] = text.encode("utf-8")
    plain = "\n".join([frm[0] or "", frm[1], to[0] or "", to[1], subject] + [n + " " + a for n, a in (cc or [])])
    MEM_PLAIN.append(plain + "\n" + body)


def note(path, text):
    MEM["notes/" + path] = (text.strip("\n") + "\n").encode("utf-8")
    MEM_PLAIN.append(text)


OWN_W = ("苏晓楠", "nina.su@baywave.cn")
OWN_P = ("Nina Su", "nina.su@baywave.cn")
OWN_163 = ("苏晓楠", "sxn.chengdu@163.com")
OWN_GMX = ("Xiaonan Su", "xiaonan.su@gmx.de")

SIG_OWN_ZH = "苏晓楠 | 产品经理\n湾岸智能 Baywave\n手机 139 2871 5406 · 座机 0755-8671 3320\n" + A["office"]
SIG_OWN_EN = ("Nina Su (Su Xiaonan)\nSenior Product Manager, Baywave Intelligence\n"
              "M +86 139 2871 5406 | T +86 755 8671 3320\n12F Wan'an Tower, 29 Gaoxin South 7th Rd, Nanshan, Shenzhen")

# ---- mails -----------------------------------------------------------------
eml("2024-01-08_黄志强_monsoon-q1.eml", ("黄志强", "kevin.huang@baywave.cn"), OWN_W,
    "Monsoon 一季度排期", "2024-01-08 09:12", f"""
晓楠：

Monsoon 这边西班牙的客户催得比较紧，Álvaro 希望三月底前拿到第一批样机。
你和邱工对一下固件排期，Kestrel 的人力先借两个过去，月底前给我一版计划。

另外青藤先暂停，等叶总那边的预算批下来再说。

黄志强 Kevin Huang
副总裁 · 湾岸智能
手机：137 2466 9012
{A["office"]}
""")

eml("2024-01-15_alvaro_pilot.eml", ("Álvaro Gutiérrez", "alvaro@domotek.es"), OWN_P,
    "Monsoon pilot – Barcelona flats", "2024-01-15 17:40|+0100", f"""
Hi Nina,

Good news: the housing cooperative in Poblenou agreed to host the Monsoon pilot,
40 flats in total. Lucía will handle the installation schedule and Jordi the
gateway integration.

For the deposit invoice please use our account at CaixaBank:
IBAN {group(V["iban_es_domotek"])}
BIC CAIXESBBXXX

Un abrazo,
Álvaro

--
Álvaro Gutiérrez
CEO, Domotek Iberia S.L.
{A["domotek"]}
Tel. +34 612 48 93 17
""")

eml("2024-01-22_lucia_visit.eml", ("Lucía Fernández", "lucia.fernandez@domotek.es"), OWN_P,
    "Your visit in February", "2024-01-22 11:05|+0100", f"""
Dear Nina,

I booked you a room at Hotel Casp Nou, {A["hotel_bcn"]}, from 19 to 23 February.
Our office is ten minutes on foot. If your flight lands late, call me on my mobile
and I will leave the badge at reception.

Best,
Lucía Fernández Ruiz
Operations Manager · Domotek Iberia
Office +34 93 412 58 60 · Mobile +34 677 31 05 92
""")

eml("2024-01-29_jordi_gateway.eml", ("Jordi Puig", "jordi.puig@domotek.es"), OWN_P,
    "gateway logs", "2024-01-29 08:51|+0100", f"""
Nina, Wenbo,

The gateways in block C keep dropping MQTT connections. Logs attached.
Firmware build {V["git2"]} seems fine in the lab, so I suspect the building's Wi-Fi.

Jordi
+34 655 201 774
""", cc=[("邱文博", "qiu.wenbo@baywave.cn")])

eml("2024-02-02_tan-wei-ling_tidewater.eml", ("Tan Wei Ling", "weiling.tan@lumio.sg"), OWN_P,
    "Tidewater – site list for phase 1", "2024-02-02 14:20", f"""
Hi Nina,

Attached is the site list for Tidewater phase 1 (12 HDB blocks in Bedok and Tampines).
Rajesh will send you the network details separately. Grace is preparing the contract draft.

Warm regards,
Wei Ling

Tan Wei Ling | Head of Partnerships | Lumio Pte Ltd
{A["lumio"]}
+65 9176 2284
""")

eml("2024-02-05_rajesh_network.eml", ("Rajesh Kumar", "rajesh.k@lumio.sg"), OWN_P,
    "Re: Tidewater network", "2024-02-05 10:02", """
Nina,

VPN is ready. Please give your engineers the client config I shared on Slack.
Let me know who needs access and I will whitelist them.

Regards,
Rajesh Kumar
Infrastructure Lead, Lumio
Mobile: +65 8342 1907
""")

eml("2024-02-07_grace_contract.eml", ("Grace Lim", "grace.lim@lumio.sg"), OWN_P,
    "Tidewater MSA draft v2", "2024-02-07 16:45", """
Dear Ms Su,

Please find the second draft of the master services agreement for Tidewater attached.
Changes are tracked. Our legal team needs comments by 16 February.

Kind regards,
Grace Lim
Legal Counsel, Lumio Pte Ltd
DID +65 6778 2150
""")

eml("2024-02-11_katharina_hochzeit.eml", ("Katharina Weber", "kathi.weber@posteo.de"), OWN_GMX,
    "Save the date!!", "2024-02-11 21:30|+0100", f"""
Liebe Xiaonan,

Tobi und ich heiraten am 14. September in Berlin! Du MUSST kommen.
Du kannst bei uns schlafen: {A["kathi"]}, 3. OG, links.

Und schick mir mal deine aktuelle Handynummer, die alte +49 1512 3087 446 geht nicht mehr.

Kuss,
Kathi
+49 176 2384 5511
""", encode=False)

eml("2024-02-19_brandt_reference.eml", ("Matthias Brandt", "m.brandt@tum.de"), OWN_GMX,
    "Empfehlungsschreiben", "2024-02-19 09:15|+0100", f"""
Dear Ms. Su,

I am happy to write the reference letter for the executive programme. Please send me
your CV and the form. For the record I will mention your matriculation number
{V["matrikel"]} so that the admissions office can verify your degree.

Best regards,
Prof. Dr. Matthias Brandt
Lehrstuhl für Mikrosystemtechnik, Technische Universität München
{A["tum"]}
Tel. +49 89 289 15403
""", encode=False)

eml("2024-02-26_jonas_kaution.eml", ("Jonas Hoffmann", "jonas.hoffmann@web.de"), OWN_GMX,
    "Re: Kaution Schleißheimer Str.", "2024-02-26 19:02|+0100", f"""
Hi Xiaonan,

die Hausverwaltung hat endlich die Kaution zurückgezahlt. Ich überweise dir deinen Anteil
(1.150 EUR) auf dein DKB-Konto, IBAN {group(V["iban_de_owner"])} – stimmt die noch?

> Am 20.02.2024 schrieb Xiaonan Su <xiaonan.su@gmx.de>:
> Hallo Jonas, gibt es Neuigkeiten wegen der Kaution für {A["munich_old"]}?

Grüße aus München
Jonas
""", encode=True)

eml("2024-03-01_lukas_visit.eml", ("Lukas Schäfer", "lukas.schaefer@gmail.com"), OWN_GMX,
    "Coming to Shenzhen in April", "2024-03-01 13:44|+0100", f"""
Hey Xiaonan,

Bosch is sending me to Shenzhen for two weeks in April. Dinner? I would also love to
see the Kestrel prototype if that's not top secret.

Lukas
{A["lukas"]}
+49 711 4402 318
""")

eml("2024-03-04_苏晓峰_体检.eml", ("苏晓峰", "suxiaofeng88@qq.com"), OWN_163,
    "爸妈体检预约", "2024-03-04 20:31", f"""
楠楠：

华西那边的体检套餐我约好了，4月13号上午，爸妈都去。预约要身份证号，我先用了这两个：
爸 苏建华 {V["id_dad"]}
妈 刘淑芬 {V["id_mom"]}
费用一共4,860元，你转一半到我建行卡 {group(V["card_feng_19"])} 就行。

晓峰
186 2817 6643
""")

eml("2024-03-09_苏建华_家里.eml", ("苏建华", "13880621957@139.com"), OWN_163,
    "家里的事", "2024-03-09 07:58", f"""
晓楠：

你妈让我给你说一下，家里的座机改号了，新号码 028-8558 2207。
快递寄家里的话地址还是{A["parents"]}，收件人写我就行。
清明你不用回来，工作要紧。

爸
""", encode=False)

eml("2024-03-15_杨雪_婚礼.eml", ("杨雪", "yangxue_cd@126.com"), OWN_163,
    "婚礼请柬～", "2024-03-15 22:10", f"""
亲爱的晓楠：

我和阿凯的婚礼定在5月18号，地点是{A["yang_venue"]}的锦庐宴会厅，中午11:58开席。
你一定要来当伴娘！！！机票我报销～

雪儿
手机 135 5103 9947
""")

eml("2024-03-18_罗敏_实习生入职.eml", ("罗敏", "luomin@baywave.cn"), OWN_W,
    "实习生谢子轩入职资料", "2024-03-18 10:30", f"""
晓楠你好，

你们组的实习生谢子轩下周一入职，资料如下，请勿外传：
身份证号：{V["id_zixuan"]}
工号：{V["emp_zixuan"]}
导师：苏晓楠（工号 {V["emp_id"]}）

另外提醒一下，你的深圳社保电脑号是 {V["sz_social"]}，公积金转移需要用到。

罗敏 | 人力资源部
电话 0755-8671 3388
""")

eml("2024-03-22_钟慧_报销.eml", ("钟慧", "zhonghui@baywave.cn"), OWN_W,
    "巴塞罗那出差报销退回", "2024-03-22 15:12", f"""
苏经理：

您2月巴塞罗那出差的报销单被退回了，原因是酒店发票抬头不对。
另外报销款会打到您登记的招商银行卡 {group(V["card_cmb"])}，如需更换请找我。

钟慧 财务部
分机 3306
""")

eml("2024-03-28_冯德明_续租.eml", ("冯德明", "fengdeming1966@163.com"), OWN_163,
    "海韵花园续租", "2024-03-28 19:45", f"""
小苏你好，

房子5月底到期，续租的话月租涨到9,800，押一付三。同意的话房租还是打到我工行卡：
{V["card_landlord"]}（冯德明）

冯德明
136 0265 8839
""", encode=False)

eml("2024-04-02_温医生_复诊.eml", ("温海燕", "dr.wen@smiledental.cn"), OWN_163,
    "复诊提醒", "2024-04-02 09:00", f"""
苏晓楠女士您好：

您的根管治疗复诊时间为4月10日（周三）14:30，就诊卡号 {V["patient_dental"]}。
地址：{A["dental"]}，微笑口腔。如需改约请致电 0755-2668 1520。

温海燕 主治医师
""")

eml("2024-04-06_招商银行_账单.eml", ("招商银行信用卡中心", "creditcard@message.cmbchina.com"), OWN_163,
    "您的3月账单已出", "2024-04-06 08:00", f"""
尊敬的苏晓楠女士：

您尾号{V["card_cmb"][-4:]}的账户3月账单已出，本期应还 ¥12,306.55，最后还款日 4月24日。
客户号：{V["cmb_customer"]}

此邮件由系统自动发送，请勿回复。
""")

eml("2024-04-09_singaporeair_itinerary.eml", ("Singapore Airlines", "noreply@singaporeair.com"), OWN_P,
    "Booking confirmed – SZX to SIN", "2024-04-09 23:11", f"""
Booking reference: 6KQ3PZ

Passenger: SU/XIAONAN MS
KrisFlyer no.: {V["krisflyer"]}
Passport: {V["passport"]}

SQ 869  Shenzhen (SZX) 15 May 2024 09:40 → Singapore (SIN) 13:35
SQ 868  Singapore (SIN) 19 May 2024 20:55 → Shenzhen (SZX) 00:50+1
""")

eml("2024-04-12_邱文博_kestrel-fw.eml", ("邱文博", "qiu.wenbo@baywave.cn"), OWN_W,
    "Kestrel 固件 1.4 发布说明", "2024-04-12 18:20", f"""
晓楠：

Kestrel 固件 v1.4.0 已经打包，commit {V["git1"]}。
主要改动：低功耗模式、指纹模组兼容新供应商。测试报告常乐那边明天出。

邱文博
188 2309 7761
""")

eml("2024-04-16_何颖_lantern.eml", ("何颖", "heying@baywave.cn"), OWN_W,
    "Lantern 视觉稿", "2024-04-16 11:11", """
晓楠～

Lantern 的第二版视觉稿放在共享盘了，这次按你说的把夜灯模式做得更暖一点。
周四评审前你先看一眼？

颖
133 1692 4058
""")

eml("2024-04-18_黄志强_fwd-alvaro.eml", ("黄志强", "kevin.huang@baywave.cn"), OWN_W,
    "Fwd: Monsoon pricing", "2024-04-18 08:40", f"""
晓楠，你看下，价格这块你来回复，抄送我。

---------- Forwarded message ---------
From: Álvaro Gutiérrez <alvaro@domotek.es>
Date: Wed, 17 Apr 2024 at 19:02
Subject: Monsoon pricing
To: Kevin Huang <kevin.huang@baywave.cn>

Kevin,

For the 2,000-unit order we need the unit price below 38 EUR. Lucía can share
our volume forecast. Happy to discuss when Nina is in Barcelona again.

Álvaro
""")

eml("2024-04-25_梁嘉欣_团建.eml", ("梁嘉欣", "jessie.liang@baywave.cn"), OWN_W,
    "五一前团建", "2024-04-25 16:00", """
各位～

团建定在4月29日晚上，深圳湾那边的潮汕火锅，人均150。
统计一下人数，回复我就行。不能来的跟晓楠说一声。

嘉欣 Jessie
159 1872 3345
""", cc=[("常乐", "changle@baywave.cn"), ("谢子轩", "xiezixuan@baywave.cn"), ("曾国栋", "zengguodong@baywave.cn")])

eml("2024-05-02_ben_crypto.eml", ("Benjamin Goh", "ben.goh@gmail.com"), OWN_P,
    "the durian trip money", "2024-05-02 22:47", f"""
Nina!

Here's my ETH address for your share of the Malaysia trip: {V["eth_ben"]}
Or just PayNow me, +65 9688 0413. When you're in SG in May, come over:
{A["ben"]}.

Ben
""")

eml("2024-05-08_平安_保单.eml", ("平安人寿", "service@pingan.com.cn"), OWN_163,
    "电子保单送达通知", "2024-05-08 10:00", f"""
尊敬的苏晓楠女士：

您投保的平安e生保（长期医疗）电子保单已生成，保单号 {V["policy_pingan"]}。
被保险人：苏晓楠，证件号码：{V["id_owner"]}。

中国平安 95511
""")

eml("2024-05-10_叶振宇_火山.eml", ("叶振宇", "ye.zhenyu@baywave.cn"), OWN_W,
    "火山项目保密要求", "2024-05-10 21:05", """
晓楠，

火山的事暂时只限你、黄总和我三个人知道，对外统一说是"供应链优化"。
下周二找个时间当面聊，不要在微信上讨论。

叶振宇
CTO
""", cc=[("黄志强", "kevin.huang@baywave.cn")])

eml("2024-05-14_田静_个税.eml", ("田静", "tianjing_tax@126.com"), OWN_163,
    "德国税号和个税汇算", "2024-05-14 14:14", f"""
晓楠：

你2023年在德国还有一笔咨询收入，汇算时需要德国税号（Steuer-ID）：{V["steuer_id"]}，
西班牙那边的 NIE 是 {V["nie_owner"]} 对吧？我核对一下就提交。

田静
139 0286 4410
""")

# ---- notes -----------------------------------------------------------------
note("people.txt", f"""
people — work & friends (updated 2024-05)

黄志强 Kevin – 137 2466 9012 – kevin.huang@baywave.cn   (boss, VP；大家叫强哥/黄总)
梁嘉欣 Jessie – 159 1872 3345 – jessie.liang@baywave.cn   (PM, 小梁)
邱文博 – 188 2309 7761 – qiu.wenbo@baywave.cn   (firmware lead, 邱工)
何颖 – 133 1692 4058 – heying@baywave.cn   (design, 颖姐)
曾国栋 – 138 2651 0374 – zengguodong@baywave.cn   (hardware, 老曾)
常乐 – 176 8890 2153 – changle@baywave.cn   (QA, 乐乐)
谢子轩 – 185 0755 6218 – xiezixuan@baywave.cn   (intern 2024, 小谢)
叶振宇 – 0755-8671 3301 – ye.zhenyu@baywave.cn   (CTO, 叶总)
罗敏 – 0755-8671 3388 – luomin@baywave.cn   (HR, 敏姐)
钟慧 – ext. 3306 – zhonghui@baywave.cn   (finance, 钟姐)
田静 – 139 0286 4410 – tianjing_tax@126.com   (tax agent, 田会计)
冯德明 – 136 0265 8839 – fengdeming1966@163.com   (landlord, 冯叔)
温海燕 – 0755-2668 1520 – dr.wen@smiledental.cn   (dentist 温医生, 微笑口腔)
陶国平 – 131 4890 2276 – –   (driver 陶师傅, airport runs)
杨雪 – 135 5103 9947 – yangxue_cd@126.com   (college friend, 雪儿, Chengdu)
""")

note("overseas-contacts.vcf.txt", f"""
BEGIN:VCARD
FN:Álvaro Gutiérrez
ORG:Domotek Iberia S.L.;CEO
TEL;TYPE=cell:+34 612 48 93 17
EMAIL:alvaro@domotek.es
ADR;TYPE=work:;;{A["domotek"]}
END:VCARD

BEGIN:VCARD
FN:Lucía Fernández Ruiz
ORG:Domotek Iberia S.L.;Operations
TEL;TYPE=work:+34 93 412 58 60
TEL;TYPE=cell:+34 677 31 05 92
EMAIL:lucia.fernandez@domotek.es
END:VCARD

BEGIN:VCARD
FN:Jordi Puig
ORG:Domotek Iberia S.L.;Engineering
TEL;TYPE=cell:+34 655 201 774
EMAIL:jordi.puig@domotek.es
END:VCARD

BEGIN:VCARD
FN:Tan Wei Ling
ORG:Lumio Pte Ltd;Partnerships
TEL;TYPE=cell:+65 9176 2284
EMAIL:weiling.tan@lumio.sg
ADR;TYPE=work:;;{A["lumio"]}
NOTE:Chinese name 陈慧玲
END:VCARD

BEGIN:VCARD
FN:Rajesh Kumar
ORG:Lumio Pte Ltd;Infrastructure
TEL;TYPE=cell:+65 8342 1907
EMAIL:rajesh.k@lumio.sg
END:VCARD

BEGIN:VCARD
FN:Grace Lim
ORG:Lumio Pte Ltd;Legal
TEL;TYPE=work:+65 6778 2150
EMAIL:grace.lim@lumio.sg
END:VCARD

BEGIN:VCARD
FN:Benjamin Goh
NICKNAME:Ben
TEL;TYPE=cell:+65 9688 0413
EMAIL:ben.goh@gmail.com
ADR;TYPE=home:;;{A["ben"]}
END:VCARD

BEGIN:VCARD
FN:Katharina Weber
NICKNAME:Kathi
TEL;TYPE=cell:+49 176 2384 5511
EMAIL:kathi.weber@posteo.de
ADR;TYPE=home:;;{A["kathi"]}
NOTE:IBAN {V["iban_de_kathi"]} (for the wedding gift / shared flat costs)
END:VCARD

BEGIN:VCARD
FN:Jonas Hoffmann
TEL;TYPE=cell:+49 160 9921 4470
EMAIL:jonas.hoffmann@web.de
END:VCARD

BEGIN:VCARD
FN:Prof. Dr. Matthias Brandt
ORG:TU München;Lehrstuhl für Mikrosystemtechnik
TEL;TYPE=work:+49 89 289 15403
EMAIL:m.brandt@tum.de
ADR;TYPE=work:;;{A["tum"]}
END:VCARD

BEGIN:VCARD
FN:Lukas Schäfer
TEL;TYPE=cell:+49 711 4402 318
EMAIL:lukas.schaefer@gmail.com
ADR;TYPE=home:;;{A["lukas"]}
END:VCARD
""")

note("家里人.txt", f"""
家里人（成都）

爸 苏建华（苏老师，退休中学老师） 138 8062 1957  邮箱 13880621957@139.com
妈 刘淑芬（刘阿姨） 135 5103 4482
家里座机 028-8558 2207
地址：{A["parents"]}

哥 苏晓峰（阿峰/峰哥） 186 2817 6643  suxiaofeng88@qq.com
嫂子 蕾蕾，侄子小宝（2016年生）
哥家：{A["feng"]}
哥的建行卡：{group(V["card_feng_19"])}

爸身份证 {V["id_dad"]}
妈身份证 {V["id_mom"]}
哥身份证 {V["id_feng"]}
""")

note("地址.txt", f"""
常用地址

家：{A["home"]}（收件人 苏晓楠 139 2871 5406）
English: 1177 Wanghai Rd, Haiyun Garden 3-1502, Nanshan District, Shenzhen
公司：{A["office"]}
成都爸妈家：{A["parents"]}
慕尼黑旧公寓（已退租）：{A["munich_old"]}
Barcelona hotel (Domotek always books this one): {A["hotel_bcn"]}
""")

note("证件和账户.txt", f"""
证件 / 账户  (don't share)

身份证 {V["id_owner"]}
护照 {V["passport"]}（2031年到期）
西班牙 NIE {V["nie_owner"]}
Singapore EP FIN {V["sg_fin_owner"]}（2023 项目期间）
德国 Steuer-ID {V["steuer_id"]}
TUM Matrikelnummer {V["matrikel"]}
工号 {V["emp_id"]}   深圳社保电脑号 {V["sz_social"]}
微信号 {V["wechat_id"]}

招商银行借记卡 {group(V["card_cmb"])}   客户号 {V["cmb_customer"]}
中信 Visa 信用卡 {group(V["card_citic_visa"])}
Amex {V["card_amex"][:4]} {V["card_amex"][4:10]} {V["card_amex"][10:]}
DKB Visa (Germany) {group(V["card_dkb"])}
DKB IBAN {group(V["iban_de_owner"])}

KrisFlyer {V["krisflyer"]}   凤凰知音 {V["phoenix"]}   Miles & More {V["miles_more"]}
平安e生保 保单号 {V["policy_pingan"]}
微笑口腔就诊卡 {V["patient_dental"]}
健身房会员 {V["gym_member"]}（超级猩猩 后海店）
ETH 钱包 {V["eth_owner"]}
""")

note("work/codenames/kestrel.md", """
# Kestrel

智能门锁二代（指纹 + UWB）。负责人：苏晓楠；固件 邱文博，硬件 曾国栋，测试 常乐。
目标：2024 Q3 量产，BOM < ¥420。
风险：指纹模组二供；UWB 芯片交期。
""")
note("work/codenames/monsoon.md", """
# Monsoon

湿度/空气质量传感器，给西班牙 Domotek 的公寓项目定制。
对接：Álvaro（商务）、Lucía（交付）、Jordi（网关）。
试点：Barcelona Poblenou 40 户，2024-03 起。
""")
note("work/codenames/tidewater.md", """
# Tidewater

Singapore rollout with Lumio (HDB blocks, phase 1 = 12 blocks).
People: Tan Wei Ling (partnerships), Rajesh (infra/VPN), Grace Lim (legal).
Open: data residency clause, SLA credits.
""")
note("work/codenames/lantern.txt", """
Lantern — 儿童夜灯 + 睡眠监测, 何颖做设计。还在概念阶段，没立项。
""")
note("work/codenames/锦鲤.txt", """
锦鲤：给成都一家连锁茶馆做的智能点单/门禁方案，哥（晓峰）介绍的客户。私下做，别和公司项目混。
""")
note("work/codenames/青藤.txt", """
青藤：公司内部的 IoT 平台重构，叶总牵头，预算未批，暂停中。
""")
note("work/codenames/火山.txt", """
火山：绝密。叶总/黄总/我。收购一家东莞模组厂的评估。
""")

note("work/mtg/2024-04-09 monsoon weekly.txt", """
Monsoon weekly 2024-04-09
attendees: Nina, Wenbo, Álvaro, Lucía, Jordi (remote)

- pilot: 36/40 flats installed, 4 tenants refused
- gateway drops in block C -> Jordi thinks it's the Wi-Fi, Wenbo to ship fw 1.3.2
- pricing: Álvaro wants < 38 EUR/unit, Kevin says 41 is the floor
AI: Nina send revised quote by Fri
""")
note("work/mtg/2024-05-21 周会.txt", """
2024-05-21 产品周会
到会：黄总、晓楠、嘉欣、邱工、颖姐、老曾、乐乐、小谢

1. Kestrel EVT 通过，DVT 排在6月第二周（老曾跟工厂）
2. Tidewater 合同法务还在改，Grace 说下周给终稿
3. 小谢转正答辩 6/28
""")
note("health.txt", f"""
牙：温海燕医生，微笑口腔，{A["dental"]}，0755-2668 1520，就诊卡 {V["patient_dental"]}
  2024-04-10 根管复诊；下次洗牙 10月
眼睛：干眼，滴玻璃酸钠，别再熬夜
妈：高血压，华西医院心内科，每三个月复查
""")

# ---- more mails (added) ----------------------------------------------------
eml("2024-04-19_re-monsoon-pricing.eml", OWN_P, ("Álvaro Gutiérrez", "alvaro@domotek.es"),
    "Re: Monsoon pricing", "2024-04-19 10:26", f"""
Hi Álvaro,

Thanks for the forecast. For 2,000 units we can do 40.50 EUR ex works Shenzhen,
39.80 if the order goes above 3,000. Kevin has approved this on our side.

Lucía asked about the second pilot building - we can ship the units in week 24.

Best,
Nina

{SIG_OWN_EN}
""", cc=[("Kevin Huang", "kevin.huang@baywave.cn")])

eml("2024-02-12_re-save-the-date.eml", OWN_GMX, ("Katharina Weber", "kathi.weber@posteo.de"),
    "Re: Save the date!!", "2024-02-12 08:03", f"""
Kathiii,

natürlich komme ich!!! Glückwunsch an dich und Tobi.
Meine Nummer ist jetzt nur noch die chinesische: +86 139 2871 5406 (WhatsApp geht auch).

Schick mir eure Wunschliste, sonst überweise ich einfach was.

Xiaonan

> Am 11.02.2024 um 21:30 schrieb Katharina Weber <kathi.weber@posteo.de>:
> Tobi und ich heiraten am 14. September in Berlin! Du MUSST kommen.
""", encode=False)

eml("2024-04-22_曾国栋_kestrel-dvt.eml", ("曾国栋", "zengguodong@baywave.cn"), OWN_W,
    "Kestrel DVT 工厂安排", "2024-04-22 17:35", f"""
晓楠：

DVT 试产定在 6 月 11-14 日，地点还是莫总那边的厂：
{A["factory"]}
我 10 号过去，你 12 号来看首件就行。陶师傅可以送你，单程一个半小时。

莫总的联系方式：莫家豪 138 2920 6617

曾国栋
138 2651 0374
""")

eml("2024-04-26_常乐_kestrel-test.eml", ("常乐", "changle@baywave.cn"), OWN_W,
    "Kestrel 第三轮测试报告", "2024-04-26 19:48", """
晓楠姐：

第三轮测试报告在附件，P0 0 个，P1 3 个，P2 11 个。
测试环境：服务器 10.20.3.41，门锁固件 v1.4.1，App 3.2.0 (build 5127)。
P1 主要是指纹模组在低温下识别率下降，已经同步邱工。

常乐
176 8890 2153
""")

eml("2024-05-17_谢子轩_周报.eml", ("谢子轩", "xiezixuan@baywave.cn"), OWN_W,
    "周报 2024-W20（谢子轩）", "2024-05-17 18:02", """
苏老师好（还是叫晓楠姐？）：

本周：
1. 整理 Kestrel P1/P2 问题清单，跟乐乐对了一遍
2. 竞品分析：小米、德施曼、凯迪仕三家的 UWB 方案
3. 帮嘉欣做了 Lantern 用户访谈记录（8 位家长）

下周：DVT 资料准备

子轩
""")

eml("2024-05-12_叶振宇_青藤预算.eml", ("叶振宇", "ye.zhenyu@baywave.cn"), OWN_W,
    "青藤预算", "2024-05-12 22:40", """
晓楠：

青藤的预算今天董事会没过，下半年再提。你那边别再投人了，
邱工组的两个人 6 月起回 Kestrel。

振宇
""")

eml("2024-04-28_re-海韵花园续租.eml", OWN_163, ("冯德明", "fengdeming1966@163.com"),
    "Re: 海韵花园续租", "2024-04-28 21:10", f"""
冯叔您好：

续租没问题，月租 9,800 我接受，押一付三照旧。合同还是一年，6 月 1 日起。
您看周末哪天方便，来家里签一下合同？地址您知道的，{A["home"]}。

苏晓楠
139 2871 5406
""", encode=False)

eml("2024-05-03_weiling_may-visit.eml", ("Tan Wei Ling", "weiling.tan@lumio.sg"), OWN_P,
    "Your May visit", "2024-05-03 12:15", f"""
Hi Nina,

We have booked you at the Katong Bay Hotel, {A["sg_hotel"]}, 15-19 May.
Site visits on the 16th (Bedok) and 17th (Tampines); Rajesh will drive.
Grace would like 30 minutes with you on the MSA on Friday morning.

Cheers,
Wei Ling
+65 9176 2284
""")

eml("2024-05-20_grace_msa-final.eml", ("Grace Lim", "grace.lim@lumio.sg"), OWN_P,
    "Tidewater MSA - execution version", "2024-05-20 18:30", """
Dear Nina,

Attached is the execution version of the Tidewater MSA. Once Mr. Huang has signed,
please courier one original to our office, attention Grace Lim, Legal.

Kind regards,
Grace Lim
Legal Counsel, Lumio Pte Ltd
DID +65 6778 2150
""")

eml("2024-03-25_苏晓楠_锦鲤报价.eml", OWN_163, ("苏晓峰", "suxiaofeng88@qq.com"),
    "锦鲤 报价单", "2024-03-25 23:05", f"""
哥：

钱老板那边的报价单做好了，附件。12 家门店，每家一套点单屏 + 两套门禁，
首期 18.6 万。你帮我转给他，别说是我们公司的方案。

他们总店地址我写的是{A["teahouse"]}，对不对？

楠楠
""", encode=False)

eml("2024-04-03_钱永福_锦鲤.eml", ("钱永福", "qianyongfu@dongdajie-tea.com"), OWN_163,
    "回复：点单系统", "2024-04-03 15:20", f"""
苏小姐：

方案看了，总体可以。价格能不能再优惠一点？另外我们春熙路的新店 5 月开业，
能不能先在新店试？

钱永福
成都东大街茶舍 总经理
电话 028-8661 7720 / 139 8176 2055
{A["teahouse"]}
""")

eml("2024-05-28_lukas_thanks.eml", ("Lukas Schäfer", "lukas.schaefer@gmail.com"), OWN_GMX,
    "Danke!", "2024-05-28 07:50|+0200", f"""
Hi Xiaonan,

thanks again for dinner in Shekou and for showing me the Kestrel lab - very impressive.
If you ever need an intro to the Bosch smart home people, tell me.

PS: the crypto thing we talked about - my address is {V["eth_lukas"]}, send the
5 USDC for the taxi whenever. No rush.

Lukas
""")

eml("2024-05-06_嘉欣_lantern访谈.eml", ("梁嘉欣", "jessie.liang@baywave.cn"), OWN_W,
    "Lantern 家长访谈纪要", "2024-05-06 20:14", """
晓楠姐：

8 位家长的访谈纪要整理好了（子轩帮忙记录）。结论：
- 夜灯亮度要能调到很低；
- 睡眠数据家长很感兴趣，但担心隐私；
- 价格接受区间 199-299。

嘉欣
""", cc=[("何颖", "heying@baywave.cn")])

eml("2024-05-31_罗敏_转正.eml", ("罗敏", "luomin@baywave.cn"), OWN_W,
    "谢子轩转正答辩安排", "2024-05-31 11:00", f"""
晓楠：

谢子轩的转正答辩定在 6 月 28 日下午 3 点，12 楼大会议室。评委：黄总、你、邱工。
请提前把导师评价表发给我。子轩的工号 {V["emp_zixuan"]}，表格里要写。

罗敏
0755-8671 3388
""")

# ---- more notes (added) ----------------------------------------------------
note("todo.md", f"""
# todo (2024-06)

- [ ] 冯叔 续租合同 签字 + 押金收据
- [ ] 给雪儿买结婚礼物（已在成都，寄到爸妈家）
- [ ] Kathi Hochzeit 14.09: Flug + Geschenk (IBAN in contacts)
- [x] 平安 e生保 续保
- [ ] 牙：10月洗牙，温医生
- [ ] Tidewater MSA 原件寄 Grace（Lumio 办公室）
- [ ] 问田姐 德国收入抵免
- [ ] 超级猩猩 会员 {V["gym_member"]} 到期续费
""")

note("travel/2024-02-barcelona.md", f"""
# Barcelona 2024-02-19 … 23

Hotel: Hotel Casp Nou, {A["hotel_bcn"]} (booked by Lucía)
Domotek office: {A["domotek"]}
Flights: CX 830 / CX 831 via HKG; Miles & More {V["miles_more"]} (not used)

- Mon: Poblenou pilot site with Lucía + Jordi
- Tue: pricing with Álvaro (wants < 38 EUR)
- Wed: dinner at Álvaro's place, his wife Montse cooked
- NIE {V["nie_owner"]} needed for the SIM card, lol
""")

note("travel/2024-05-singapore.md", f"""
# Singapore 15-19 May

SQ 869 / SQ 868, KrisFlyer {V["krisflyer"]}
Hotel: Katong Bay Hotel, {A["sg_hotel"]}
EP FIN (old) {V["sg_fin_owner"]} - not valid anymore, enter as visitor

- 16th Bedok sites (Rajesh drives), 17th Tampines
- Fri MSA with Grace
- Sat: Ben's place for durian, {A["ben"]}
""")

note("租房.md", f"""
# 海韵花园 3栋1502

房东：冯德明（冯叔） 136 0265 8839
地址：{A["home"]}
月租：9,800（2024-06 起），押一付三，每季度 1 号前
收款：工行 {V["card_landlord"]}
物业：海韵花园物业服务中心（管家 小黄）
2023 年押金 18,600 收据在抽屉里
""")

note("home-network.txt", """
home network (海韵花园)
router  192.168.31.1   (小米 AX3600)
NAS     192.168.31.20  DS220+, photos share, port 5001
printer 192.168.31.35
IPv6 prefix from 电信 changes every few days, don't bother
""")

note("生日.md", """
# 生日

- 爸 苏建华 8/27
- 妈 刘淑芬 2/3
- 哥 苏晓峰 7/19，嫂子蕾蕾 5/12，小宝 2/29（四年一次！）
- 雪儿 8/7
- Kathi 3.11.
- Ben 12 Oct
- 强哥 11/2（别忘了团队礼物）
""")

note("德国.md", f"""
# Deutschland (2014-2021)

TUM MSc Mikrosystemtechnik, Matrikelnummer {V["matrikel"]}, Betreuer Prof. Brandt
WG: {A["munich_old"]} mit Jonas (Kaution endlich zurück, 02/2024)
Arbeit: 2019-2021 bei einem Start-up in Garching
Sozialversicherungsnummer {V["svnr"]}
Steuer-ID {V["steuer_id"]}
DKB Konto noch offen: {group(V["iban_de_owner"])}, Karte {group(V["card_dkb"])}

Freunde: Kathi (Berlin, heiratet Tobi), Lukas (Stuttgart, Bosch), Jonas (München)
""")

note("work/1on1-kevin.md", """
# 1:1 with Kevin (强哥)

2024-03-05
- wants me to own Monsoon pricing end-to-end
- 火山: only me, him, 叶总
- promotion: "next cycle" (again)

2024-05-07
- Kestrel DVT must not slip; 老曾 to stay in 东莞 during DVT
- Tidewater: get the MSA signed before June
- asked about 小谢 conversion → yes
""")

note("work/mtg/2024-03-12 tidewater kickoff.md", """
# Tidewater kickoff (Zoom) 2024-03-12

Lumio: Tan Wei Ling, Rajesh Kumar, Grace Lim
Baywave: Nina, Kevin, 邱文博, 曾国栋

- phase 1: 12 HDB blocks, 1,800 units, go-live Sept
- Rajesh: site-to-site VPN, Lumio side 10.88.0.0/16, ours 10.20.0.0/16
- Grace: MSA first draft in Feb was too vendor-friendly, will redraft
""")

note("work/codenames/锦鲤-客户.md", f"""
# 锦鲤 客户

成都东大街茶舍，老板 钱永福（钱老板），哥介绍的。
总店：{A["teahouse"]}，12 家门店，春熙路新店 5 月开业。
电话 139 8176 2055
报价 18.6 万（首期），私下做，用163邮箱联系。
""")

note("work/codenames/火山-尽调.md", f"""
# 火山 尽调笔记

标的：东莞鼎丰电子（门锁模组），老板 莫家豪（莫总），138 2920 6617
厂址：{A["factory"]}
- 产能号称 80 万套/年，实际看产线估计 45 万
- 两个大客户占 70%
- 叶总想 Q4 前给董事会一个结论
""")

note("reading.md", """
# 2024 读书

- 《苏东坡传》林语堂 —— 苏轼真是乐天派
- 《置身事内》兰小欢
- 《原则》Ray Dalio
- "The Mom Test" Rob Fitzpatrick —— 访谈家长前再看一遍
- 《埃隆·马斯克传》Walter Isaacson（没看完）
""")

# ---------------------------------------------------------------------------
# evaluation texts
# ---------------------------------------------------------------------------
RAW = []   # (lang, kind, markup)


def add(lang, kind, text):
    RAW.append((lang, kind, text.strip("\n")))


def sp(s, n=4):
    return group(s, n)


# ============================== Chinese: chat ================================
add("zh", "chat", """[苏家大院]
妈：[[P+:楠楠]]五一回来不？
[[P+:阿峰]]：她说要去新加坡出差
妈：又出差，天天飞
爸：让她注意身体，马上就到雨季了
我：回不来啦，端午一定回""")

add("zh", "chat", """[[[PR+:Kestrel]] 项目群]
[[P+:邱工]]：fw 1.4.1 已经推到测试机了
[[P+:乐乐]]：收到，今晚跑回归
[[P+:老曾]]：DVT 的模具下周三到
[[P+:小谢]]：我来整理问题清单～
我：辛苦了，明早十点过一下""")

add("zh", "chat", """【顺丰速运】您的快件SF1428803917265已由派件员[[P-:覃师傅]]（[[PH:199 2577 0386]]）派送，送达[[AD+:南山区望海路1177号海韵花园3栋1502室]]，如有疑问请联系。""")

add("zh", "chat", f"""【招商银行】您账户{V['card_cmb'][-4:]}于05月06日14:22银联消费人民币368.00元，商户：山姆会员商店。余额请登录掌上生活查询。""")

add("zh", "chat", """嘉欣：晓楠姐，明天的评审要不要叫上颖姐？
我：叫上吧，顺便让她把 Lantern 的新稿子带上
嘉欣：好嘞，我马上约会议室""".replace("嘉欣：", "[[P+:嘉欣]]：").replace("晓楠姐", "[[P+:晓楠姐]]").replace("颖姐？", "[[P+:颖姐]]？").replace("Lantern", "[[PR+:Lantern]]"))

add("zh", "chat", """[[P+:强哥]]：火山那边周二的会改到周三了，叶总出差
我：好的，地点还是他办公室？
[[P+:强哥]]：对，别带电脑""".replace("火山那边", "[[PR+:火山]]那边").replace("叶总出差", "[[P+:叶总]]出差"))

add("zh", "chat", f"""[[P+:阿峰]]：[[P+:楠楠]]，爸的医保卡要绑你的身份证号还是我的？
我：用你的吧，[[CN:{V['id_feng']}]]
[[P+:阿峰]]：好，我自己都记不住哈哈""")

add("zh", "chat", """[[P+:雪儿]]：婚纱照选好了！！发你看看
我：好美😭 [[P+:阿凯]]笑得好傻
[[P+:雪儿]]：伴娘服尺码发我，S还是M？
我：M，最近吃胖了""")

add("zh", "chat", """物业：业主您好，3栋本周六上午9点至12点停水检修，请提前储水。海韵花园物业服务中心""")

add("zh", "chat", """[湾岸产品组]
[[P+:罗敏]]：各位，下周一新同事报到，[[P-:潘越]]，做硬件测试，先跟着[[P+:乐乐]]
[[P+:乐乐]]：欢迎欢迎
[[P+:黄总]]：👍""")

add("zh", "chat", """我：陶师傅，明早6点半小区南门接我去宝安机场，T3
[[P+:陶师傅]]：好的苏小姐，6点20到
我：谢谢！""".replace("我：陶师傅", "我：[[P+:陶师傅]]").replace("苏小姐", "[[P+:苏小姐]]"))

add("zh", "chat", """[[P+:冯叔]]：小苏，空调师傅明天下午过去，[[P-:韦师傅]]，电话[[PH:13428815076]]，你在家吗
我：在的，三点以后都可以
[[P+:冯叔]]：好""".replace("小苏，", "[[P+:小苏]]，"))

add("zh", "chat", f"""妈：楠楠，我换了农行的卡，以后转钱转这个 [[CA:{V['card_mom_new']}]]
我：好，收到，原来那张还用不
妈：不用了，你爸说销掉""".replace("楠楠，", "[[P+:楠楠]]，"))

add("zh", "chat", f"""【华西医院】[[P+:刘淑芬]]您好，您预约的心内科门诊（[[P-:王主任]]）已改至6月3日上午第12号，就诊ID [[ID-:{V["patient_mom"]}]]，请携带身份证就诊。""")

add("zh", "chat", """[大学室友]
[[P+:杨雪]]：下个月都回成都吗
[[P-:小敏]]：我回！
[[P-:陶陶]]：我看看假
[[P+:杨雪]]：春熙路那家串串，我请客，庆祝我脱单成功（已婚）
[[P-:小敏]]：哈哈哈哈""")

add("zh", "chat", """[[P+:文博]]：晓楠，测试服务器 [[IP:10.20.3.41]] 挂了，你那边能登吗
我：登不上，找[[P+:老曾]]？他有机房钥匙
[[P+:文博]]：他在东莞工厂
我：那我找 IT""".replace("晓楠，", "[[P+:晓楠]]，"))

add("zh", "chat", """[[P+:颖姐]]：下午茶拼单了，喜茶多肉葡萄，要不要
我：要！少冰
[[P+:颖姐]]：好，一共28，回头微信转我""")

add("zh", "chat", """【京东】您的订单3092847712045已出库，预计5月9日送达。配送员：[[P-:刘师傅]] [[PH:17098342210]]""")

add("zh", "chat", """我：[[P+:田姐]]，德国那笔收入是不是要补税？
[[P+:田姐]]：抵免之后应该不用补，我算完告诉你
我：好的，麻烦了""")

add("zh", "chat", """[[P+:钟姐]]：苏经理，您的差旅借款还有3,200没冲销
我：下周一把发票给你
[[P+:钟姐]]：好的～""".replace("苏经理", "[[P+:苏经理]]"))

add("zh", "chat", """[端午回家]
[[P+:峰哥]]：我6月8号开车去双流接你
我：航班 CA4315，19:50到
[[P+:峰哥]]：小宝说要去宽窄巷子
我：都行都行""".replace("小宝说", "[[P+:小宝]]说"))

add("zh", "chat", f"""[[P-:覃阿姨]]：[[P+:苏小姐]]您好，我是家政公司介绍的[[P-:覃阿姨]]，工资打这个卡就行 [[CA:{V['card_ayi']}]]，身份证 [[CN:{V['id_ayi']}]] 公司说要登记一下
我：好的，收到，周六见""")

add("zh", "chat", """[Monsoon 中方群]
[[P+:邱工]]：西班牙那边又说C栋掉线
我：Jordi 昨天说是Wi-Fi问题
[[P+:邱工]]：我觉得是固件，我今晚远程看看
我：好，有结论发群里""".replace("Jordi", "[[P+:Jordi]]").replace("[Monsoon", "[[[PR+:Monsoon]]"))

add("zh", "chat", """我：嫂子，[[P+:小宝]]的保险要用他身份证号
[[P+:蕾蕾]]：[[CN:""" + V["id_nephew"] + """]]，户口本上的
我：收到～""")

add("zh", "chat", """[[P+:小梁]]：苏姐，深圳文博会的票要不要？公司发了两张
我：不去了，周末要加班
[[P+:小梁]]：好吧那我给乐乐""".replace("苏姐", "[[P+:苏姐]]").replace("给乐乐", "给[[P+:乐乐]]"))

add("zh", "chat", """【中国联通】尊敬的客户，您的手机号139****5406本月已使用流量28.6GB，套餐内剩余11.4GB。""")

add("zh", "chat", """老同学群：
[[P-:孔德伟]]：听说苏晓楠在深圳混得不错啊
我：哪有，打工人
[[P-:孔德伟]]：下次来深圳找你吃饭，你住哪边？
我：蛇口，海上世界附近""".replace("苏晓楠在", "[[P+:苏晓楠]]在"))

add("zh", "chat", """[[P+:强哥]]：西班牙报价你再压一压，38欧肯定不行
我：底线41？
[[P+:强哥]]：40也能接受，量上去就行。跟阿尔瓦罗说我们诚意很足""".replace("阿尔瓦罗", "[[P+:阿尔瓦罗]]"))

add("zh", "chat", """妈：今天去看了外婆，精神很好，还问你什么时候找对象
我：……
爸：你妈就是高兴，别理她
妈：张开嘴就被你爸怼""")

add("zh", "chat", """[[P-:中介小刘]]：苏女士，福田那套两居室业主同意降到8,500了，要不要周六看房？地址[[AD-:福田区景田北路23号景田西苑5栋802]]""".replace("[[P-:中介小刘]]", "中介[[P-:小刘]]").replace("苏女士", "[[P+:苏女士]]"))

add("zh", "chat", f"""【平安人寿】尊敬的[[P+:苏女士]]，您的保单[[ID:{V["policy_pingan"]}]]将于6月1日自动续保，扣款账户为尾号{V["card_cmb"][-4:]}的银行卡，保费1,286元。""")

add("zh", "chat", """我：[[P+:老邱]]，给西班牙那边开个VPN账号，Jordi 要用
[[P+:老邱]]：给了，网关是 [[IP:172.16.8.1]]，他的地址 [[IP:172.16.8.57]]
我：👌""".replace("Jordi 要用", "[[P+:Jordi]] 要用"))

add("zh", "chat", """[[P+:叶总]]：火山的尽调报告你看完了吗
我：看完了，产能数字有水分
[[P+:叶总]]：周三当面说""".replace("火山的", "[[PR+:火山]]的"))

add("zh", "chat", """快递小哥：您好，您的包裹放在小区门口丰巢柜了，取件码 6-2-4418""")

add("zh", "chat", """[[P+:乐乐]]：晓楠姐，Kestrel 第三轮测试有3个P1，我发你邮箱了
我：好，今天过一下
[[P+:乐乐]]：知足常乐，至少没有P0了😂""".replace("晓楠姐", "[[P+:晓楠姐]]").replace("Kestrel", "[[PR+:Kestrel]]"))

add("zh", "chat", """我：[[P+:老黄]]，锦鲤那个客户想加门禁，算咱们的还是我私下的？
[[P+:老黄]]：你私下的，别走公司
我：明白""".replace("锦鲤那个", "[[PR+:锦鲤]]那个"))

add("zh", "chat", """[[P-:韦佳琪]]：您好，我是猎头[[P-:Vivian]]，有个大疆的产品总监机会，方便聊聊吗？我的电话[[PH:+86 186-7551-2093]]""")

add("zh", "chat", """[[P+:阿强]]：明天[[P-:小周]]来面试，你帮我二面
我：几点？
[[P+:阿强]]：下午两点，12楼小会议室""")

add("zh", "chat", f"""【建设银行】[[P+:苏晓峰]]向您尾号{V["card_cmb"][-4:]}的账户转账2,430.00元，附言：体检费一半退你""")

add("zh", "chat", """[[P+:嘉欣]]：团建定了，深圳湾那家潮汕牛肉火锅，地址[[AD-:南山区海德三道126号卓越后海金融中心L2]]
[[P+:曾工]]：能带家属吗
[[P+:嘉欣]]：不能哈哈""")

add("zh", "chat", """我：师傅，我在[[AD+:高新南七道29号]]门口，白色上衣
司机：好的，车牌粤B·D3F72，马上到""")

add("zh", "chat", """[[P+:刘淑芬]]：晓楠啊，你爸血压又高了，这周末复查
我：我让哥陪着去
[[P+:刘淑芬]]：你哥也忙，算了我陪""".replace("晓楠啊", "[[P+:晓楠]]啊"))

# ---- Chinese: chat (continued) ---------------------------------------------
add("zh", "chat", """[湾岸吃喝玩乐群]
[[P+:嘉欣]]：转发这条锦鲤，保佑下周不加班🙏
[[P+:乐乐]]：已转
[[P+:老曾]]：上次转了还是加到十点
[[P+:嘉欣]]：心诚则灵""")

add("zh", "chat", """妈：成都今天降温了，天气预报说明天小雪
我：深圳还是28度😂
爸：你上次说要去日本看火山，去了没有
我：没空，年底再说吧""")

add("zh", "chat", """[[P+:钟姐]]：搬办公室的日子定了吗？
我：[[P+:黄总]]说翻了老黄历，下周二宜搬迁
[[P+:钟姐]]：哈哈哈行，那我通知行政""")

add("zh", "chat", """我：[[P+:陶师傅]]，周五下午4点到[[AD+:湾岸大厦12楼]]楼下接个客人，西班牙来的，叫[[P+:Lucía]]，送到[[AD-:福田区福华三路88号]]的酒店
[[P+:老陶]]：好的，要举牌子吗
我：不用，我把你电话给她了""")

add("zh", "chat", f"""[[P+:阿峰]]：家里NAS的照片怎么看？
我：链接发你了 [[URL:{V["url_userinfo"]}]] 别外传
[[P+:阿峰]]：打不开，说找不到服务器
我：你得在我家Wi-Fi下才行，或者直接连 [[IP:192.168.31.20]]，外网不通的""")

add("zh", "chat", """[[P+:冯叔]]：小区门口那个小黄车停车点取消了，你电动车别停那了
我：好的冯叔，谢谢提醒""".replace("好的冯叔", "好的[[P+:冯叔]]"))

add("zh", "chat", """[[P-:潘越]]：[[P+:苏老师]]好，我是新来的[[P-:小潘]]，[[P+:乐乐]]让我找您要 Kestrel 的测试用例
我：欢迎～ 我拉你进项目群，用例在飞书知识库
[[P-:潘越]]：好的谢谢晓楠姐""".replace("Kestrel", "[[PR+:Kestrel]]").replace("谢谢晓楠姐", "谢谢[[P+:晓楠姐]]"))

# ============================== Chinese: mail ================================
add("zh", "mail", """发件人：[[P+:黄志强]] <[[EM:kevin.huang@baywave.cn]]>
收件人：[[P+:苏晓楠]] <[[EM:nina.su@baywave.cn]]>
主题：Q3 目标

[[P+:晓楠]]，

Q3 的重点三件事：[[PR+:Kestrel]] 量产、[[PR+:Tidewater]] 一期验收、[[PR+:Monsoon]] 第二批订单。
[[PR+:Lantern]] 先放一放，[[P+:何颖]]那边的人可以先支援 [[PR+:Kestrel]] 的包装设计。
周五前把三个项目的里程碑更新到共享表。

[[P+:Kevin]]""")

add("zh", "mail", f"""[[P+:晓楠]]：

新同事[[P-:潘越]]（硬件测试）下周一入职，资料如下，仅限你和[[P+:乐乐]]知道：
工号：[[ID-:{V["emp_panyue"]}]]
手机：[[PH:151 1287 6630]]
身份证号：[[CN:{V["id_panyue"]}]]
工位在12楼靠窗那排，电脑IT已经配好。请安排一下入职培训和导师。

[[P+:罗敏]] | 人力资源部
电话 [[PH:0755-8671 3388]]""")

add("zh", "mail", f"""主题：根管治疗后续 & 洗牙预约

[[P+:苏晓楠]]女士您好：

您4月10日的根管复诊已完成，建议三个月后拍片复查。洗牙已为您预约在10月12日（周六）上午10:00。
就诊卡号 [[ID:{V["patient_dental"]}]]，请携带就诊卡。

[[P+:温海燕]] 主治医师
微笑口腔（来福士店）
[[AD+:{A["dental"]}]]
预约电话 [[PH:0755-2668 1520]]""")

add("zh", "mail", f"""[[P+:小苏]]：

房租收到了，9,800×3=29,400，下面是收据信息：
收款人：[[P+:冯德明]]
收款账户：工行 [[CA:{sp(V["card_landlord"])}]]
房屋地址：[[AD+:{A["home"]}]]
租期：2024年6月1日至2025年5月31日

另外热水器我下周找人来换，到时候[[P-:龙师傅]]给你打电话。

[[P+:冯叔]]""")

add("zh", "mail", f"""[[P+:楠楠]]：

[[P+:钱老板]]回话了，说价格要是能降到16万就签，先在春熙路新店试点。
他让你直接跟他对接，手机 [[PH:139 8176 2055]]，微信也是这个号。
合同甲方写成都东大街茶舍，地址[[AD+:{A["teahouse"]}]]。

这事别让你们公司知道哈，[[PR+:锦鲤]]这名字也别写合同里。

[[P+:晓峰]]""")

add("zh", "mail", f"""亲爱的[[P+:晓楠]]：

谢谢你大老远来当伴娘！！红包太大了，下次不许这样。
我和[[P+:阿凯]]搬新家了，地址：[[AD-:成都市高新区天府三街218号蔚蓝卡地亚9栋2单元1604]]，
你下次回成都一定来吃饭。

婚礼照片在这里，密码是你生日：
[[URL:{V["url_baidu"]}]]

[[P+:雪儿]] 💕""")

add("zh", "mail", """各位业主：

接自来水公司通知，6月15日（周六）9:00-17:00 蛇口片区计划停水，请提前储水。
如有疑问请联系物业服务中心。

海韵花园物业服务中心
2024年6月12日""")

add("zh", "mail", f"""[[P+:苏经理]]您好：

您提交的新加坡出差报销（单号 BX-2024-0613-027）已审核通过，金额 S$ 1,846.20，折合人民币 9,712.35 元。
因您原招商银行卡已挂失，本次改打到您新登记的卡 [[CA:{sp(V["card_new_visa"])}]]，预计3个工作日到账。

[[P+:钟慧]]
财务部 分机 3306""")

add("zh", "mail", """[[P+:苏晓楠]]女士，您好！

我是锐思人才的顾问[[P-:韦佳琪]]（[[P-:Vivian]]），冒昧联系。我们在为一家头部智能硬件企业（总部深圳，估值超百亿）
寻找智能家居产品总监，base 南山科技园，年薪 80-110 万。您在 IoT 产品和海外交付方面的经验非常匹配。

方便的话可以加我微信或回复邮件，我的电话 [[PH:186 7551 2093]]，邮箱 [[EM:vivian.wei@ruisi-hr.com]]。

祝好
[[P-:韦佳琪]]""")

add("zh", "mail", f"""[[P+:晓楠]]：

[[PR+:Kestrel]] 固件 v1.4.2 已发布到灰度，覆盖 5% 的设备。
commit {V["git3"]}，主要修了低温下指纹识别率的问题（[[P+:常乐]]报的 P1）。
灰度服务器：[[IP:10.20.3.52]]，监控看板你用之前那个链接就行：
[[URL:{V["url_key"]}]]

有问题直接打我 [[PH:188 2309 7761]]。

[[P+:邱文博]]""")

add("zh", "mail", f"""[[P+:晓楠]]，

[[PR+:火山]]的尽调下周三去东莞，[[P+:莫总]]安排了看产线。地址：[[AD+:{A["factory"]}]]。
这次只去我和你，[[P+:黄总]]在新加坡。对外说是去看 [[PR+:Kestrel]] 的模组供应商。
尽调材料我放在加密盘，密码当面给你。

[[P+:叶振宇]]""")

add("zh", "mail", f"""尊敬的[[P+:苏晓楠]]女士：

您的理赔申请已受理，案件号 LP20240618003317。
保单号：[[ID:{V["policy_pingan"]}]]
被保险人：[[P+:苏晓楠]]
证件号码：[[CN:{V["id_owner"]}]]
赔付账户：招商银行 [[CA:{V["card_cmb"]}]]
我们将在5个工作日内完成审核，请保持电话 [[PH:139****5406]] 畅通。""".replace("[[PH:139****5406]]", "139****5406"))

add("zh", "mail", f"""[[P+:晓楠]]：

汇算材料齐了，确认一下几个号码：
德国 Steuer-ID：[[ID:{V["steuer_id"]}]]
西班牙 NIE：[[ID:{V["nie_owner"]}]]
国内身份证：[[CN:{V["id_owner"]}]]
德国那笔咨询费 6,000 欧，已经在德国交过税，可以抵免，应该不用补。

[[P+:田静]]
[[PH:139 0286 4410]]""")

add("zh", "mail", """[[P+:晓楠姐]]：

本周周报：
1. [[PR+:Kestrel]] 第四轮回归完成，P1 清零，P2 剩 4 个
2. 带[[P-:小潘]]熟悉测试流程，他上手很快
3. 和[[P+:乐乐]]一起整理了 DVT 检查表

下周：跟[[P+:老曾]]去东莞 DVT 现场

[[P+:子轩]]""")

add("zh", "mail", """[[P+:苏女士]]您好，

给您推荐两套南山的房子：
1. 蛇口 南海玫瑰园 3房 112㎡，月租 13,500，业主急租；
2. 后海 中洲湾 2房 89㎡，月租 11,000，可以养宠物。
周六上午可以连着看，我10点在蛇口地铁站A口等您。

链家 [[P-:刘子豪]]
[[PH:137 1452 8830]]""")

add("zh", "mail", f"""【国航】行程确认

旅客姓名：[[P+:SU/XIAONAN MS]]
凤凰知音卡号：[[ID:{V["phoenix"]}]]
证件：护照 [[ID:{V["passport"]}]]

CA4315 深圳宝安 → 成都天府  2024-06-08 17:10 — 19:50
CA4316 成都天府 → 深圳宝安  2024-06-10 20:30 — 22:55
订单号 1245879630214  票号 999-2345167890""")

add("zh", "mail", """[[P+:晓楠]]～

[[PR+:Lantern]] 第三版视觉稿在共享盘，按家长访谈的结论把亮度调节做成了滑杆。
另外包装我参考了无印良品和宜家的风格，你看看是不是太素了。

[[P+:颖]]""".replace("[[P+:颖]]", "[[P+:何颖]]"))

add("zh", "mail", f"""[[P+:晓楠]]：

你妈手机号 [[PH:135 5103 4482]] 没变，但是微信换了，你加一下。
上次你寄的降压药收到了，下次寄到[[AD+:玉林南路17号2单元502室]]不要写我名字，写你妈的，我白天不在家。

[[P+:爸]]""".replace("[[P+:爸]]", "爸"))

add("zh", "mail", """亲爱的会员，您在淘宝购买的"小米米家智能门锁 Pro"已发货。
订单编号：3879201564418827553
物流：中通快递 78712345098321
如有问题请联系卖家客服。""")

add("zh", "mail", f"""[[P+:晓楠]]：

社保公积金的事情，公积金中心要你的深圳社保电脑号和身份证复印件，电脑号是 [[ID:{V["sz_social"]}]]。
另外成都的公积金账户你要先封存，让你家里人去办也行，带上你签字的委托书。

[[P+:敏姐]]""")

add("zh", "mail", f"""[[P+:苏晓楠]] 邀请您参加腾讯会议
会议主题：[[PR+:Tidewater]] 一期验收准备
会议时间：2024/06/20 15:00-16:00 (GMT+08:00) 中国标准时间
点击链接入会：[[URL:{V["url_tencent"]}]]
#腾讯会议：843-229-105""")

add("zh", "mail", """[[P+:晓楠]]：

DVT 首件没问题，外观和装配都过了。[[P+:莫总]]说他们的产能再给三个月能到 60 万。
我周五回深圳，周六不用来公司吧？

[[P+:国栋]]""")

add("zh", "mail", f"""你好，[[P+:苏晓楠]]：

你的超级猩猩会员卡（[[ID:{V["gym_member"]}]]，后海店）将于2024年6月30日到期。
续费年卡可享 8 折，客服电话 [[PH:400-820-6188]]。""".replace("[[PH:400-820-6188]]", "400-820-6188"))

add("zh", "mail", """[[P+:晓楠姐]]，

DVT 报告初稿我写好了，里面测试人员写的是[[P+:小谢]]和[[P-:潘越]]，模组供应商那块空着，等你决定要不要写鼎丰。

[[P+:乐乐]]""")

# ============================== Chinese: note ================================
add("zh", "note", """2024-05-22 周三 晴
今天和[[P+:强哥]]为了 [[PR+:Monsoon]] 的报价吵了一架，他坚持41欧，我觉得40能拿下。最后[[P+:叶总]]拍板40.5。
晚上[[P+:嘉欣]]请喝奶茶，说[[P+:小谢]]转正应该没问题。
回家路上看到海上世界的音乐喷泉，突然很想成都。""")

add("zh", "note", """待办（端午前）
- 给[[P+:冯叔]]转押金差额 600
- [[P+:陶师傅]] 6/8 下午3点送机，电话 [[PH:131 4890 2276]]
- 给[[P+:小宝]]买乐高（城市系列，别买星球大战）
- [[PR+:Tidewater]] 验收清单发 [[P+:Wei Ling]]
- 问[[P+:田会计]]汇算进度
- 取快递：丰巢 6-2-4418""")

add("zh", "note", f"""回成都清单
- 航班 CA4315，6/8 19:50 到天府，[[P+:峰哥]]来接
- 爸妈家：[[AD+:{A["parents"]}]]
- 给妈带深圳的降压药（苯磺酸氨氯地平，两盒）
- 去[[P+:哥]]家吃饭：[[AD+:水碾河路55号4栋1单元801]]
- 见[[P+:钱老板]]谈[[PR+:锦鲤]]二期""".replace("[[P+:哥]]", "哥"))

add("zh", "note", f"""[[PR+:锦鲤]] 二期 会议记录 2024-06-09
地点：东大街茶舍总店（[[AD+:下东大街199号]]）
参加：[[P+:钱永福]]、[[P+:晓峰]]、我
- 春熙路新店试点一个月，点单屏故障 2 次，门禁正常
- [[P+:钱总]]想加会员积分，我说二期做
- 付款：首期 16 万已到，尾款验收后
- 下次沟通：[[P+:老钱]]的女儿[[P-:钱悦]]负责 IT，直接对接她 [[PH:182 8012 4491]]""")

add("zh", "note", """读书摘抄
苏轼《定风波》："竹杖芒鞋轻胜马，谁怕？一蓑烟雨任平生。"
林语堂说苏东坡是"不可救药的乐天派"。
鲁迅："时间就像海绵里的水，只要愿挤，总还是有的。"
马斯克的传记看到一半，特斯拉在上海建厂那章挺有意思，雷军造车也差不多是这个节奏。""")

add("zh", "note", f"""[[PR+:火山]] 尽调 第二次（6/19）
陪同：[[P+:莫家豪]]、他们的厂长[[P-:戴工]]
- 产线 6 条，实际开 4 条，夜班基本没人
- 财务给的营收 3.2 亿，和增值税发票对不上
- [[P+:莫总]]想保留 30% 股份 + 继续当总经理
结论：估值要砍，产能按 45 万算。回去跟[[P+:叶总]]、[[P+:黄总]]汇报。""")

add("zh", "note", f"""房租记账
2024-03-01  29,400  → [[P+:冯德明]] 工行 [[CA:{V["card_landlord"]}]]
2024-06-01  29,400  → 同上
2024-06-01  押金差额 600（9,800×2 − 18,600 = 1,000？再算一下）
水电燃气自己交，物业费房东出""")

add("zh", "note", f"""爸妈体检（华西 4/13）
爸 [[P+:苏建华]] 身份证 [[CN:{V["id_dad"]}]]：血脂偏高，颈动脉斑块，三个月后复查
妈 [[P+:刘淑芬]] 身份证 [[CN:{V["id_mom"]}]]：血压 150/95，加药
费用 4,860，[[P+:哥]]付的，我转了 2,430""".replace("[[P+:哥]]", "哥"))

add("zh", "note", """年终总结（草稿）
1. [[PR+:Kestrel]]：EVT/DVT 按期，BOM 控制在 ¥415
2. [[PR+:Monsoon]]：巴塞罗那试点 40 户，第二批 2,000 台订单
3. [[PR+:Tidewater]]：一期 12 栋，9 月上线
4. 带了一个实习生（[[P+:谢子轩]]），已转正
5. 不足：[[PR+:Lantern]] 没推动立项；和[[P+:Kevin]]的沟通还是太情绪化
明年想做：海外渠道、第二个自有品牌""")

add("zh", "note", """家电维修记录
- 2023-08 空调不制冷，美的售后，师傅加了氟，收费 260
- 2024-03 热水器打不着火，[[P+:冯叔]]找的[[P-:龙师傅]]，换了点火针
- 2024-05 洗衣机排水慢，自己通了
空调型号 KFR-35GW/N8MJA3，序列号 5110417832609913207""")

add("zh", "note", """家里网络
路由器 [[IP:192.168.31.1]]，管理密码贴在路由器背面
NAS [[IP:192.168.31.20]]（端口5001）
打印机 [[IP:192.168.31.35]]
电信光猫 [[IP:192.168.1.1]]，宽带账号 0755 开头那串写在合同上
IPv6：[[IP:240e:3a1:4c20:8b10::1f]]（会变）""")

add("zh", "note", """[[P+:雪儿]]婚礼礼金登记（帮她记的）
[[P-:张浩]] 1,000  [[P-:李晓雯]] 800  [[P-:何俊杰]] 1,200
[[P-:王芳芳]] 600  [[P-:陈宇]] 2,000（[[P+:阿凯]]表哥）
[[P-:小敏]] 800  [[P-:陶陶]] 800  我 3,000""")

add("zh", "note", """面试记录 2024-06-04 产品经理（智能门锁）
候选人：[[P-:周子航]]，28岁，前华为终端，做过智能门锁 App
优点：懂硬件，数据意识强
顾虑：期望薪资 45k，高于预算；英语一般，[[PR+:Monsoon]] 对接西班牙会吃力
结论：推荐进三面（[[P+:黄总]]）""")

add("zh", "note", """[[PR+:Kestrel]] 周会 6/3
- DVT 首件通过，量产 PVT 排在 7 月第三周
- 指纹模组二供：鼎丰 vs 汇顶方案，[[P+:邱工]]倾向汇顶
- UWB 芯片交期 16 周，[[P+:老曾]]去谈备货
- App 3.3.0 版本号冻结，7/1 上架
- [[P+:乐乐]] 休假 6/10-6/14，期间[[P-:小潘]]顶上""")

add("zh", "note", f"""新加坡出差 5/15-5/19
酒店：Katong Bay Hotel，[[AD+:86 East Coast Road]]
5/16 Bedok 现场，[[P+:Rajesh]] 开车，顺便看了他们的机房
5/17 Tampines，居委会的[[P-:Mdm Rosnah]]很热情
5/18 [[P+:Ben]]家吃榴莲，[[AD+:Blk 412 Bedok North Ave 2]]，他女儿好可爱
回程 SQ 868，[[P+:KrisFlyer]] 里程到账了吗？""".replace("[[P+:KrisFlyer]]", "KrisFlyer"))

add("zh", "note", f"""妈的看病信息
华西医院 心内科 [[P-:王主任]]（周二、周四上午门诊）
就诊ID [[ID:{V["patient_mom"]}]]
医保卡绑定[[P+:哥]]的手机号
药：苯磺酸氨氯地平 5mg 每天一次；阿托伐他汀 20mg 睡前""".replace("[[P+:哥]]", "哥"))

add("zh", "note", f"""健身
超级猩猩 后海店，会员号 [[ID:{V["gym_member"]}]]，教练[[P-:阿杰]]
目标：体脂 28% → 24%，每周 3 次
6/30 到期，续年卡打 8 折""")

add("zh", "note", """开票信息（公司）
名称：深圳湾岸智能科技有限公司
统一社会信用代码：91440300MA5G2K8L3X
地址：深圳市南山区高新南七道29号湾岸大厦12楼  电话：0755-8671 3300
开户行：招商银行深圳科技园支行  账号：7559 1234 5610 801""".replace(
    "深圳市南山区高新南七道29号湾岸大厦12楼", "[[AD+:深圳市南山区高新南七道29号湾岸大厦12楼]]").replace(
    "0755-8671 3300", "[[PH:0755-8671 3300]]"))

add("zh", "note", f"""新加坡 EP 的事
之前 [[PR+:Tidewater]] 项目办的 EP 已经取消，FIN [[ID:{V["sg_fin_owner"]}]] 作废。
以后去新加坡用旅游入境就行，每次不超过 30 天。
[[P+:Grace]] 说如果二期要长驻，Lumio 可以再帮我申请。""")

add("zh", "note", """旅行清单（想去）
- 冰岛：看火山和极光
- 杭州西湖，顺便去看看灵隐寺
- 新疆喀纳斯，9 月最好
- 京都，赏枫
- 巴塞罗那再去一次，圣家堂没进去""")

# ============================== Chinese: prompt ==============================
add("zh", "prompt", """帮我给房东写一条微信，语气客气一点：[[P+:冯叔]]您好，热水器又坏了，能不能这周末让[[P-:龙师傅]]再来看看？我周六全天在家。另外问一下物业费是不是涨了。""")

add("zh", "prompt", """把下面的会议纪要整理成表格（事项/负责人/截止时间）：
1. [[PR+:Kestrel]] PVT 物料确认 —— [[P+:老曾]]，6/25
2. App 3.3.0 上架 —— [[P+:文博]]，7/1
3. 西班牙第二批订单合同 —— [[P+:晓楠]]，6/30
4. [[PR+:Tidewater]] 验收报告 —— [[P+:小谢]]，7/5
5. 测试人力补充 —— [[P+:罗经理]]，6/20""")

add("zh", "prompt", """翻译成英文，发给西班牙客户[[P+:Álvaro]]的：
阿尔瓦罗你好，第二批 2,000 台的交期可以提前到 7 月第二周，但需要你们在 6 月 25 日前付 30% 预付款。[[P+:露西亚]]上次问的安装手册西语版，我们下周发。""".replace("阿尔瓦罗你好", "[[P+:阿尔瓦罗]]你好"))

add("zh", "prompt", f"""我妈的身份证号是 [[CN:{V["id_mom"]}]]，帮我算一下她今年多大，能不能办成都的老年卡？""")

add("zh", "prompt", """帮我看看为什么 ping 不通：
```
$ ping 10.20.3.88
PING 10.20.3.88 (10.20.3.88): 56 data bytes
Request timeout for icmp_seq 0
$ ip addr
inet 10.20.5.117/16 brd 10.20.255.255
```
测试服务器是[[P+:邱工]]昨天刚装的""".replace("ping 10.20.3.88\nPING 10.20.3.88 (10.20.3.88)", "ping [[IP:10.20.3.88]]\nPING [[IP:10.20.3.88]] ([[IP:10.20.3.88]])").replace(
    "inet 10.20.5.117/16 brd 10.20.255.255", "inet [[IP:10.20.5.117]]/16 brd [[IP:10.20.255.255]]"))

add("zh", "prompt", """写一个 Python 脚本：读取收件箱里所有来自 [[EM:alvaro@domotek.es]] 和 [[EM:lucia.fernandez@domotek.es]] 的邮件，把附件里的 Excel 合并成一张表，按日期排序。我的邮箱是 [[EM:nina.su@baywave.cn]]，IMAP 服务器 imap.exmail.qq.com。""")

add("zh", "prompt", """帮我算一下：深圳房子总价 620 万，首付 35%，贷款 30 年，利率 3.5%，等额本息每月还多少？公积金能贷 120 万的话组合贷款又是多少？""")

add("zh", "prompt", """这段报错是什么意思？怎么修？
```
2024-06-12 10:21:07 ERROR [mqtt] connection lost: client_id=[[PR+:kestrel]]-gw-0042 broker=10.20.3.41:1883 reason=keepalive timeout
2024-06-12 10:21:07 WARN  [auth] token refresh failed for user zixuan.xie@baywave.cn
2024-06-12 10:21:09 INFO  [mqtt] reconnecting (attempt 3/10)
```""".replace("broker=10.20.3.41", "broker=[[IP:10.20.3.41]]").replace("zixuan.xie@baywave.cn", "[[EM:zixuan.xie@baywave.cn]]"))

add("zh", "prompt", f"""帮我润色一下简历的开头部分：
[[P+:苏晓楠]] | 高级产品经理
电话：[[PH:+86 139 2871 5406]]  邮箱：[[EM:nina.su.sz@gmail.com]]
现居：深圳南山
教育：慕尼黑工业大学 微系统技术 硕士（2016-2019）；四川大学 电子信息工程 学士
工作：湾岸智能（2021-至今），负责智能门锁、环境传感器产品线及海外交付""")

add("zh", "prompt", f"""下面是我上个月的信用卡账单，帮我按餐饮/交通/购物/其他分类并汇总：
卡号 [[CA:{sp(V["card_citic_visa"])}]]
05-02 美团外卖 68.50
05-03 滴滴出行 43.20
05-06 山姆会员商店 368.00
05-11 Apple.com/bill 21.00
05-15 新加坡航空 4,210.00
05-20 喜茶 28.00
05-27 京东 1,299.00""")

add("zh", "prompt", """我们在做一个新项目，做宠物喂食器，内部代号暂定[[PR-:白鹭]]，帮我想几个备选的英文代号，要求是鸟名，和现有的 [[PR+:Kestrel]]、[[PR+:Lantern]] 风格统一。""")

add("zh", "prompt", """帮我写一段生日祝福，给我大学室友[[P+:杨雪]]，她刚结婚，老公叫[[P+:阿凯]]，我们认识十年了，她喜欢吃火锅，最近在学潜水。要温馨一点，不要太肉麻。""")

add("zh", "prompt", """帮我写请假邮件给[[P+:黄总]]：6月7日请一天年假，端午回成都，[[PR+:Kestrel]] 的事情交给[[P+:嘉欣]]跟进，紧急情况可以打我电话。""")

add("zh", "prompt", f"""朋友发我一个以太坊地址让我转账：[[CR:{V["eth_ben"]}]]，这个地址格式对吗？全是小写的是不是有问题？""")

add("zh", "prompt", f"""这个银行卡号是哪个银行的？[[CA:{V["card_ayi"]}]] 家政阿姨给的，我想确认一下开户行再转工资。""")

add("zh", "prompt", """介绍一下雷军和小米的创业历程，重点讲讲小米汽车 SU7 和之前手机业务的关系。""")

add("zh", "prompt", """比较一下 iPhone 15 Pro 和华为 Mate 60 Pro 的拍照，我妈想换手机，预算 7000 以内。""")

add("zh", "prompt", f"""帮我把这段德语翻译成中文：
„Hallo Xiaonan, ich habe dir heute 1.150 EUR überwiesen, auf [[IB:{sp(V["iban_de_owner"])}]]. Bitte kurz bestätigen, wenn es angekommen ist. Grüße, Jonas"""
    .replace("Hallo Xiaonan", "Hallo [[P+:Xiaonan]]").replace("Grüße, Jonas", "Grüße, [[P+:Jonas]]“"))

add("zh", "prompt", f"""我要给我哥转体检费，他的卡号 [[CA:{V["card_feng_19"]}]]，户名[[P+:苏晓峰]]，建设银行。帮我写个转账附言，说明是爸妈体检费的一半。""")

add("zh", "prompt", f"""帮我总结这封邮件，列出需要我做的事：
"Hi Nina, attached is the execution version of the Tidewater MSA. Once Mr. Huang has signed, please courier one original to our office at 71 Ayer Rajah Crescent, #03-18, Singapore 139951, attention Grace Lim. Regards, Grace\"""".replace(
    "Hi Nina", "Hi [[P+:Nina]]").replace("Tidewater", "[[PR+:Tidewater]]").replace("Mr. Huang", "[[P+:Mr. Huang]]").replace(
    "71 Ayer Rajah Crescent, #03-18, Singapore 139951", "[[AD+:71 Ayer Rajah Crescent, #03-18, Singapore 139951]]").replace(
    "attention Grace Lim", "attention [[P+:Grace Lim]]").replace("Regards, Grace", "Regards, [[P+:Grace]]"))

add("zh", "prompt", f"""帮我生成一个快递面单的文字版：
寄件人：[[P+:苏晓楠]] [[PH:13928715406]] [[AD+:{A["home"]}]]
收件人：[[P+:刘淑芬]] [[PH:135 5103 4482]] [[AD+:{A["parents"]}]]
物品：药品（非处方）两盒""")

add("zh", "prompt", """[[PR+:Kestrel]] 的功耗测试数据如下，帮我判断续航能不能达到 12 个月：
待机电流 38μA，开锁一次 2.1mAs，每天开锁 12 次，电池 4 节 AA（2,800mAh），UWB 每小时唤醒 60 次每次 0.4mAs。""")

add("zh", "prompt", f"""帮我拟一份租房合同的补充条款：
甲方（出租方）：[[P+:冯德明]]，身份证号 [[CN:{V["id_landlord"]}]]
乙方（承租方）：[[P+:苏晓楠]]，身份证号 [[CN:{V["id_owner"]}]]
房屋：[[AD+:{A["home"]}]]
内容：租金自2024年6月1日起调整为每月9,800元；热水器等设施由甲方负责维修。""")

add("zh", "prompt", """写一条 SQL：从 users 表里找出最近 30 天没登录、但是绑定了门锁设备的用户，按城市分组计数。表结构：users(id, phone, city, last_login_at)，devices(id, user_id, model, fw_version)。""")

add("zh", "prompt", """今年个税汇算，我有一笔德国的咨询收入已经在德国交过税，国内怎么申报境外所得抵免？需要哪些材料？""")

# ============================== Chinese: form ================================
add("zh", "form", f"""酒店入住登记单
姓名：[[P+:苏晓楠]]    性别：女    国籍：中国
证件类型：居民身份证    证件号码：[[CN:{V["id_owner"]}]]
手机：[[PH:139-2871-5406]]
入住：2024-06-08  离店：2024-06-10  房型：高级大床房  房号：1207
同住人：无""")

add("zh", "form", f"""顺丰速运 寄件单
寄件人：[[P+:苏晓楠]]  电话：[[PH:139 2871 5406]]
寄件地址：[[AD+:{A["office"]}]]
收件人：[[P-:Amanda Koh]]（Lumio Pte Ltd, Legal）  电话：[[PH:+65 6778 2150]]
收件地址：[[AD+:{A["lumio"]}]]
托寄物：文件（合同原件）  运单号：SF1428803917990""")

add("zh", "form", f"""华西医院健康管理中心 体检预约表
姓名：[[P+:苏建华]]  性别：男  出生日期：1962-08-27
身份证号：[[CN:{V["id_dad"]}]]
联系电话：[[PH:138 8062 1957]]
紧急联系人：[[P+:苏晓峰]]（儿子） [[PH:186 2817 6643]]
套餐：心脑血管专项（男）  预约日期：2024-10-12""")

add("zh", "form", f"""湾岸智能 费用报销单
报销人：[[P+:苏晓楠]]  工号：[[ID:{V["emp_id"]}]]  部门：产品部
事由：新加坡 [[PR+:Tidewater]] 现场验收
金额：机票 4,210.00  酒店 3,860.00  交通 612.35  餐补 1,030.00  合计 9,712.35
收款卡号：[[CA:{V["card_new_visa"]}]]
审批：[[P+:黄志强]]""")

add("zh", "form", f"""员工信息登记表
姓名：[[P+:谢子轩]]  性别：男  出生年月：2001-11
身份证号：[[CN:{V["id_zixuan"]}]]
工号：[[ID:{V["emp_zixuan"]}]]
手机：[[PH:185 0755 6218]]  邮箱：[[EM:xiezixuan@baywave.cn]]
紧急联系人：[[P-:谢国强]]（父亲） [[PH:139 2655 0871]]
现住址：[[AD-:深圳市南山区桃源街道留仙大道1183号大学城公寓6栋411]]""")

add("zh", "form", f"""平安人寿 理赔申请书
被保险人：[[P+:苏晓楠]]  证件号：[[CN:{V["id_owner"]}]]
保单号：[[ID:{V["policy_pingan"]}]]
出险日期：2024-04-02  出险原因：牙髓炎根管治疗
就诊医院：微笑口腔（来福士店）
申请金额：3,280.00 元
领款账户：招商银行 [[CA:{sp(V["card_cmb"])}]]  户名：[[P+:苏晓楠]]""")

add("zh", "form", f"""申根签证申请表（西班牙）
姓：[[P+:SU]]  名：[[P+:XIAONAN]]
出生日期：1991-03-14  出生地：成都
护照号码：[[ID:{V["passport"]}]]  签发日期：2021-07-02  有效期至：2031-07-01
在申根区的住址：[[AD+:{A["hotel_bcn"]}]]
邀请方：Domotek Iberia S.L.，[[AD+:{A["domotek"]}]]，联系人 [[P+:Álvaro Gutiérrez]]
个人电话：[[PH:+86 139 2871 5406]]  邮箱：[[EM:nina.su@baywave.cn]]""")

add("zh", "form", f"""房屋租赁合同（续签）第一页
出租方（甲方）：[[P+:冯德明]]  电话：[[PH:136 0265 8839]]
承租方（乙方）：[[P+:苏晓楠]]  电话：[[PH:139 2871 5406]]
房屋坐落：[[AD+:{A["home"]}]]
租期：2024年6月1日至2025年5月31日
月租金：人民币玖仟捌佰元整（¥9,800）
付款方式：押一付三，甲方收款账户：[[CA:{V["card_landlord"]}]]""")

add("zh", "form", f"""境外汇款申请书
汇款人：[[P+:苏晓楠]]  账号：[[CA:{V["card_cmb"]}]]
收款人：[[P+:Katharina Weber]]
收款人账号：[[IB:{V["iban_de_kathi"]}]]
收款银行：Berliner Sparkasse  SWIFT：BELADEBEXXX
金额：EUR 300.00  用途：结婚礼金（gift）""")

add("zh", "form", f"""超级猩猩 会员信息
姓名：[[P+:苏晓楠]]  手机：[[PH:13928715406]]
会员号：[[ID:{V["member_gym_new"]}]]  门店：后海店
紧急联系人：[[P+:梁嘉欣]] [[PH:159 1872 3345]]
健康声明：无心脏病史，膝盖旧伤（2019）""")

# ============================== English: chat ================================
add("en", "chat", """[[P+:Ben]]: yo are you landing tmr?
me: yes SQ 869, 13:35
[[P+:Ben]]: durian sat night at my place ok? same address, Bedok
me: obviously 😂 bringing the tea [[P+:Wei Ling]] gave me
[[P+:Ben]]: my wife says bring nothing, she lies""")

add("en", "chat", """[#[[PR+:tidewater]]-ops]
[[P+:Rajesh]]: tunnel is up. your side [[IP:10.20.0.1]] ↔ ours [[IP:10.88.0.1]]
[[P+:Rajesh]]: first gateway at Bedok blk 121 reports in as [[IP:10.88.14.22]]
[[P+:Wenbo]]: confirmed, I see heartbeats
me: 🎉 thanks both""")

add("en", "chat", """[[P+:Kathi]]: NINAAAA did you book your flight??
me: yes! arriving Berlin 12 Sept, leaving 17th
[[P+:Kathi]]: perfect, you're sleeping in the guest room, [[P+:Tobi]] already cleared out his bikes
me: you're the best
[[P+:Kathi]]: also his cousin [[P-:Lena]] will pick you up from BER, she has your number""")

add("en", "chat", """[[P+:Lukas]]: landed in Shenzhen 🛬 hotel is in Futian, where's good for dinner near you?
me: come to Shekou! Sea World, there's a good Chaozhou place
[[P+:Lukas]]: send me a pin
me: will do, 7pm? my number here is [[PH:+86 139 2871 5406]] in case WhatsApp is blocked""")

add("en", "chat", """[Domotek / Baywave]
[[P+:Jordi]]: block C gateways stable for 72h with fw 1.3.2 👌
[[P+:Lucía]]: great! the tenants' association wants a short demo on Thursday
[[P+:Álvaro]]: Nina can you join remote? 10:00 CET
me: 16:00 for me, fine
[[P+:Jordi]]: I'll send the Teams link""".replace("[[P+:Álvaro]]: Nina can", "[[P+:Álvaro]]: [[P+:Nina]] can"))

add("en", "chat", """[[P+:Grace]]: Hi Nina, quick one - is the signatory for Baywave Mr. Huang or Mr. Ye?
me: Kevin Huang, VP. He has the board authorisation
[[P+:Grace]]: thanks, updating the signature block""".replace("Hi Nina", "Hi [[P+:Nina]]").replace("Mr. Huang or Mr. Ye", "[[P+:Mr. Huang]] or [[P+:Mr. Ye]]").replace("me: Kevin Huang", "me: [[P+:Kevin Huang]]"))

add("en", "chat", """me: happy to report I'm finally through Grace period hell at the bank 😅
[[P+:Ben]]: huh?
me: the 30-day grace period on the card, I paid late, they waived the fee
[[P+:Ben]]: lol I thought you meant Grace from Lumio""".replace("Grace from Lumio", "[[P+:Grace]] from Lumio"))

add("en", "chat", f"""[[P+:Ben]]: oops ignore that, wrong chat
[[P+:Ben]]: [[CA:{V["card_sg_friend"]}]] exp 09/27
me: BEN. delete that. now.
[[P+:Ben]]: deleted 🙈 was filling in Grab for my mum""".replace("me: BEN. delete", "me: [[P+:BEN]]. delete"))

add("en", "chat", """[[P-:Darren]] (Lumio field tech): hi, I'm at Tampines blk 402, which unit has the gateway?
me: hi Darren, it should be in the riser cupboard on level 1, Rajesh has the key code
[[P-:Darren]] (Lumio field tech): ok found it, thanks""".replace("hi Darren", "hi [[P-:Darren]]").replace("Rajesh has", "[[P+:Rajesh]] has"))

add("en", "chat", """me: Kevin, Álvaro accepted 40.50 🎉
[[P+:Kevin]]: 👍 good job. send me the PO when it comes
me: will do. Also Monsoon batch 2 needs 3 more QA people in July
[[P+:Kevin]]: talk to Min""".replace("me: Kevin,", "me: [[P+:Kevin]],").replace("Álvaro accepted", "[[P+:Álvaro]] accepted").replace("Monsoon", "[[PR+:Monsoon]]").replace("talk to Min", "talk to [[P+:Min]]"))

add("en", "chat", """[[P+:Lukas]]: did you see the kestrel on the balcony photo?? it was sitting on the railing for like 10 min
me: haha a real kestrel or my project 😂
[[P+:Lukas]]: the bird, crazy. Stuttgart is full of them apparently""")

add("en", "chat", """[[P+:Jonas]]: hey, landlord finally paid back the deposit
me: FINALLY. after 3 years lol
[[P+:Jonas]]: sent your half to the DKB account, check tomorrow
me: danke!! beer on me next time I'm in Munich""")

add("en", "chat", """[[P-:Priya]] (recruiter): Hi Nina, saw your profile - we're hiring a Head of Product for a smart home scale-up in Singapore. Open to a chat? My email is [[EM:priya.n@talentbridge.sg]]
me: Thanks Priya, not looking right now but happy to stay in touch""".replace("Hi Nina", "Hi [[P+:Nina]]").replace("Thanks Priya", "Thanks [[P-:Priya]]"))

add("en", "chat", """Your Grab ride with [[P-:Muhammad Faizal]] (SJB 8842 K) is arriving in 3 min. Toyota Corolla Altis, silver.""")

add("en", "chat", """[[P+:Wenbo]]: Nina, the Lumio VPN dropped again, can you ask Raj to check their side? our endpoint is [[IP:203.0.113.57]]
me: pinged him
[[P+:Raj]]: on it, our firewall rotated the PSK, sorry""".replace("Nina, the", "[[P+:Nina]], the").replace("ask Raj", "ask [[P+:Raj]]"))

add("en", "chat", """[[P+:Lucía]]: Nina, the hotel lost your booking 😩 I moved you to Hotel Praktik Rambla, Rambla de Catalunya 27, same dates
me: no problem, thanks Lucía!""".replace("Nina, the hotel", "[[P+:Nina]], the hotel").replace("Rambla de Catalunya 27", "[[AD-:Rambla de Catalunya 27]]").replace("thanks Lucía", "thanks [[P+:Lucía]]"))

add("en", "chat", """me: anyone know a good dentist in Singapore? asking for a friend
[[P+:Ben]]: Dr. Ong at Bedok, he did my wife's braces
me: number?
[[P+:Ben]]: [[PH:6241 8830]], say I sent you""".replace("Dr. Ong", "[[P-:Dr. Ong]]"))

add("en", "chat", """[[P+:Kathi]]: the photos from the party 📸 [[URL:""" + V["url_dropbox"] + """]]
[[P+:Kathi]]: don't forward pls, my mum is in half of them in her pyjamas
me: 😂 promise""")

add("en", "chat", """Team standup bot: yesterday — Kestrel EVT report signed off; today — Monsoon pricing call with Barcelona, Lantern concept review; blockers — none.""".replace("Kestrel", "[[PR+:Kestrel]]").replace("Monsoon", "[[PR+:Monsoon]]").replace("Lantern", "[[PR+:Lantern]]"))

add("en", "chat", """[[P+:Wei Ling]]: Tidewater phase 2 budget approved!! 🥳 Will Baywave send the same team?
me: mostly yes, Wenbo + 2 new engineers. I'll share names next week
[[P+:Wei Ling]]: great, Grace will start the change order""".replace("Tidewater", "[[PR+:Tidewater]]").replace("Wenbo + 2", "[[P+:Wenbo]] + 2").replace("Grace will", "[[P+:Grace]] will"))

# ============================== English: mail ================================
add("en", "mail", f"""From: [[P+:Álvaro Gutiérrez]] <[[EM:alvaro@domotek.es]]>
To: [[P+:Nina Su]] <[[EM:nina.su@baywave.cn]]>
Subject: Monsoon batch 2 - PO

Hi [[P+:Nina]],

Attached is our PO for 2,000 units (PO-DMT-2024-0117) at 40.50 EUR. Payment 30% in advance
to your account as usual, the rest on delivery. [[P+:Lucía]] will confirm the delivery address
for the warehouse in Sabadell next week.

One more thing: our supplier for the mounting brackets asked for payment directly, could you
check this IBAN with your finance team? [[IB:{sp(V["iban_es_supplier"])}]] (Metalúrgica Vallès S.L.)

Saludos,
[[P+:Álvaro]]""".replace("Subject: Monsoon", "Subject: [[PR+:Monsoon]]"))

add("en", "mail", f"""Dear Ms Su,

Thank you for choosing Katong Bay Hotel. Your reservation is confirmed.

Confirmation no.: KBH-558201
Guest: [[P+:Ms Xiaonan Su]]
Arrival: 15 May 2024   Departure: 19 May 2024
Room: Deluxe King, non-smoking
Card on file: Visa ending 4207

Address: [[AD+:86 East Coast Road, Singapore 428788]]   Tel: [[PH:+65 6723 2001]]

We look forward to welcoming you.
[[P-:Siti Rahman]], Front Office""".replace("Dear Ms Su", "Dear [[P+:Ms Su]]"))

add("en", "mail", """Hi Nina,

The change order for Tidewater phase 2 is attached. Please note the new liability cap in
clause 9.2. If Kevin is travelling, Mr. Ye can sign as well, but we need the board resolution.

Could you also confirm the billing contact? Last time invoices went to Jessie Liang, is that still right?

Kind regards,
Grace""".replace("Hi Nina", "Hi [[P+:Nina]]").replace("Tidewater", "[[PR+:Tidewater]]").replace("If Kevin", "If [[P+:Kevin]]").replace(
    "Mr. Ye", "[[P+:Mr. Ye]]").replace("Jessie Liang", "[[P+:Jessie Liang]]").replace("Grace\"", "").replace("\nGrace", "\n[[P+:Grace]]"))

add("en", "mail", """Dear Nina,

it was a pleasure to hear that the executive programme accepted you. I attach the signed reference
letter for your records. Please give my regards to Lukas if you see him - I heard he is in Shenzhen.

With best wishes from Garching,
Matthias Brandt""".replace("Dear Nina", "Dear [[P+:Nina]]").replace("regards to Lukas", "regards to [[P+:Lukas]]").replace("Matthias Brandt", "[[P+:Matthias Brandt]]"))

add("en", "mail", f"""Subject: Your KrisFlyer statement – May 2024

Dear [[P+:MS SU XIAONAN]],
KrisFlyer membership no. [[ID:{V["krisflyer"]}]]
Miles earned this month: 4,218 (SQ 869, SQ 868)
Miles balance: 38,602
Miles expiring 30 Jun 2024: 0

Singapore Airlines will never ask for your PIN by e-mail.""")

add("en", "mail", """Hi all,

Reminder: the Monsoon weekly moves to Wednesdays from next week, 16:00 Shenzhen / 10:00 Barcelona.
Agenda for this week:
1. batch 2 production plan (Wenbo)
2. installation guide in Catalan (Lucía)
3. gateway monitoring - Jordi's dashboard

Nina""".replace("Monsoon", "[[PR+:Monsoon]]").replace("(Wenbo)", "([[P+:Wenbo]])").replace("(Lucía)", "([[P+:Lucía]])").replace(
    "Jordi's", "[[P+:Jordi]]'s").replace("\nNina", "\n[[P+:Nina]]"))

add("en", "mail", f"""From: [[P+:Benjamin Goh]] <[[EM:ben.goh@gmail.com]]>
Subject: re: durian money

lol you sent ETH to the old address. that one was my exchange deposit, fine, it arrived.
new one for next time (hardware wallet): [[CR:{V["eth_new"]}]]
and for bitcoin if you ever: [[CR:{V["btc_bech32"]}]]

[[P+:Ben]]""")

add("en", "mail", f"""Dear Nina Su,

We received a request to reset the password for your Lumio partner portal account.
If this was you, click the link below within 30 minutes:

[[URL:{V["url_reset"]}]]

If you did not request this, you can ignore this e-mail.
Lumio IT Service Desk""".replace("Dear Nina Su", "Dear [[P+:Nina Su]]"))

add("en", "mail", """Hi Nina,

Following up on our call. Our CTO, Dr. Arun Menon, would love to show you our Matter-over-Thread
module. We think it could replace the Zigbee part in Kestrel (sorry, I know it's confidential, Wenbo
mentioned the name at the Computex booth).

Best,
Hannah Lee
Sales Director APAC, Threadline Semiconductors
+886 2 2718 6630
hannah.lee@threadline.com.tw""".replace("Hi Nina", "Hi [[P+:Nina]]").replace("Dr. Arun Menon", "[[P-:Dr. Arun Menon]]").replace(
    "Kestrel", "[[PR+:Kestrel]]").replace("Wenbo\nmentioned", "[[P+:Wenbo]]\nmentioned").replace("Hannah Lee", "[[P-:Hannah Lee]]").replace(
    "+886 2 2718 6630", "[[PH:+886 2 2718 6630]]").replace("hannah.lee@threadline.com.tw", "[[EM:hannah.lee@threadline.com.tw]]"))

add("en", "mail", """Nina,

Quick update from the Tampines site. Gateways 1-14 are online, 15 and 16 need new SIMs (Singtel
sent the wrong APN). I'll be back on site Thursday with Darren.

Static IPs for the record:
gw-15  10.88.21.15
gw-16  10.88.21.16

Rajesh""".replace("Nina,", "[[P+:Nina]],").replace("with Darren", "with [[P-:Darren]]").replace("10.88.21.15", "[[IP:10.88.21.15]]").replace(
    "10.88.21.16", "[[IP:10.88.21.16]]").replace("\nRajesh", "\n[[P+:Rajesh]]"))

add("en", "mail", f"""Dear Ms. Su,

This is to confirm that your professional indemnity policy has been renewed.
Policy number: [[ID-:{V["policy_new"]}]]
Insured: [[P+:Xiaonan Su]]
Period: 01 Jul 2024 – 30 Jun 2025
Premium: CNY 2,460.00, charged to your card ending 4207.

AXA Tianping Customer Service""".replace("Dear Ms. Su", "Dear [[P+:Ms. Su]]"))

add("en", "mail", """Hey Nina!

So good to see you in Shekou. Mareike says hi - she still talks about the hotpot.
Btw my colleague Stefan Maier from Bosch Smart Home is in Shenzhen in July, I gave him
your email, hope that's ok. He's interested in Kestrel-type locks for the EU market.

Cheers,
Lukas""".replace("Hey Nina", "Hey [[P+:Nina]]").replace("Mareike", "[[P-:Mareike]]").replace("Stefan Maier", "[[P-:Stefan Maier]]").replace(
    "Kestrel-type", "[[PR+:Kestrel]]-type").replace("\nLukas", "\n[[P+:Lukas]]"))

add("en", "mail", """Hi Nina,

Great to meet you at the IoT Asia summit. As promised, here's the deck on our ESIM platform.
Our pricing starts at USD 0.35 per device per month. Are you free for a call next Tuesday?

Tom Whitaker | Partnerships, Skyroam IoT
tom.whitaker@skyroam-iot.com | +44 20 7946 0321""".replace("Hi Nina", "Hi [[P+:Nina]]").replace("Tom Whitaker", "[[P-:Tom Whitaker]]").replace(
    "tom.whitaker@skyroam-iot.com", "[[EM:tom.whitaker@skyroam-iot.com]]").replace("+44 20 7946 0321", "[[PH:+44 20 7946 0321]]"))

add("en", "mail", """Apple Store order W1187642213 has shipped.
iPad Air 11-inch (M2) Wi-Fi 128GB - Space Grey
Tracking: SF1603349921147
Estimated delivery: 14 June

Thanks for shopping with Apple.""")

add("en", "mail", f"""Hi Nina,

thanks for the wedding present, you are crazy!! We got it (the transfer went to my old account
[[IB:{sp(V["iban_de_kathi"])}]] which is fine, it's still open).

Tobi's aunt keeps asking who the "chinesische Freundin mit dem tollen Kleid" was 😄

Love,
Kathi""".replace("Hi Nina", "Hi [[P+:Nina]]").replace("Tobi's", "[[P+:Tobi]]'s").replace("\nKathi", "\n[[P+:Kathi]]"))

add("en", "mail", """Dear Ms. Fernández,

Thank you for your enquiry. We can install the Monsoon sensors in the common areas of
Carrer de Llull 184, 08005 Barcelona, on 8 and 9 July. Our technician, Marc Roig, will
need access to the electrical room.

Regards,
Instal·lacions Roig
+34 934 85 22 10""".replace("Ms. Fernández", "[[P+:Ms. Fernández]]").replace("Monsoon", "[[PR+:Monsoon]]").replace(
    "Carrer de Llull 184, 08005 Barcelona", "[[AD-:Carrer de Llull 184, 08005 Barcelona]]").replace("Marc Roig", "[[P-:Marc Roig]]").replace(
    "+34 934 85 22 10", "[[PH:+34 934 85 22 10]]"))

add("en", "mail", """Hi team,

I'll be off from 7 to 10 June (Dragon Boat Festival, going home to Chengdu).
Jessie covers Kestrel, Kevin has the Monsoon PO. For anything urgent call me on 139 2871 5406.

Nina""".replace("Jessie covers", "[[P+:Jessie]] covers").replace("Kestrel", "[[PR+:Kestrel]]").replace("Kevin has", "[[P+:Kevin]] has").replace(
    "Monsoon", "[[PR+:Monsoon]]").replace("139 2871 5406", "[[PH:139 2871 5406]]").replace("\nNina", "\n[[P+:Nina]]"))

add("en", "mail", f"""Welcome to your new DKB Visa card!

Dear Ms Su,
your renewed card has been issued (same number, new expiry date). Card number: [[CA:{sp(V["card_dkb"])}]]
It will be sent to your address on file: Xiaonan Su, c/o Jonas Hoffmann, Schleißheimer Straße 214, 80797 München.

Your DKB team""".replace("Dear Ms Su", "Dear [[P+:Ms Su]]").replace("Xiaonan Su, c/o Jonas Hoffmann", "[[P+:Xiaonan Su]], c/o [[P+:Jonas Hoffmann]]").replace(
    "Schleißheimer Straße 214, 80797 München", "[[AD+:Schleißheimer Straße 214, 80797 München]]"))

add("en", "mail", """Hi Nina,

Sorry to bother you. The visa office needs the invitation letter to list your passport
number and home address. Could you send them? Álvaro will sign it tomorrow.

Lucía""".replace("Hi Nina", "Hi [[P+:Nina]]").replace("Álvaro will", "[[P+:Álvaro]] will").replace("\nLucía", "\n[[P+:Lucía]]"))

add("en", "mail", f"""Hi Lucía,

Here you go:
Name: Su Xiaonan
Passport: [[ID:{V["passport_new"]}]] (new passport, issued 3 June 2024)
Home address: Room 1502, Building 3, Haiyun Garden, 1177 Wanghai Road, Shekou, Nanshan District, Shenzhen 518067, China

Thanks!
Nina""".replace("Hi Lucía", "Hi [[P+:Lucía]]").replace("Name: Su Xiaonan", "Name: [[P+:Su Xiaonan]]").replace(
    "Room 1502, Building 3, Haiyun Garden, 1177 Wanghai Road, Shekou, Nanshan District, Shenzhen 518067, China",
    "[[AD+:Room 1502, Building 3, Haiyun Garden, 1177 Wanghai Road, Shekou, Nanshan District, Shenzhen 518067, China]]").replace("\nNina", "\n[[P+:Nina]]"))

add("en", "mail", """Hi Nina,

Invoice INV-2024-0342 for the May site visits is attached (SGD 4,180.00). Please pay within
30 days to DBS Bank, account 072-938114-5, Lumio Pte Ltd. For questions contact accounts@lumio.sg.

Lumio Finance""".replace("Hi Nina", "Hi [[P+:Nina]]").replace("accounts@lumio.sg", "[[EM:accounts@lumio.sg]]"))

add("en", "mail", """Hello Ms Su,

This is Mei from the Lumio front desk. A courier package arrived for Grace Lim from Baywave,
but Ms Lim is on leave until Monday. Shall we keep it in the safe? Please call me at
6778 2100 if it's urgent.

Mei Tan""".replace("Hello Ms Su", "Hello [[P+:Ms Su]]").replace("This is Mei", "This is [[P-:Mei]]").replace("Grace Lim", "[[P+:Grace Lim]]").replace(
    "Ms Lim is", "[[P+:Ms Lim]] is").replace("6778 2100", "[[PH:6778 2100]]").replace("\nMei Tan", "\n[[P-:Mei Tan]]"))

add("en", "mail", """Dear customer,

Your Amazon.de order 302-7716548-2291546 (Anker PowerCore 10000, Kindle Paperwhite) could not be
delivered to China. Please update your delivery address or choose a pickup point.

Amazon.de Customer Service""")

add("en", "mail", """Nina,

Congrats on Monsoon batch 2. Board meeting is on the 28th; please prepare 3 slides on the
Barcelona pilot (numbers only, no customer names). Also keep Volcano out of the deck, you know why.

Zhenyu""".replace("Nina,", "[[P+:Nina]],").replace("Monsoon", "[[PR+:Monsoon]]").replace("Volcano", "[[PR+:Volcano]]").replace("Zhenyu", "[[P+:Zhenyu]]"))

# ============================== English: note ================================
add("en", "note", """# Monsoon weekly 2024-06-05
attendees: Nina, Wenbo, Lucía, Jordi, Álvaro (first 10 min)

- batch 2: 2,000 units, FOB Shenzhen wk 28, PO received
- Sabadell warehouse address still missing -> Lucía
- install guide in Catalan: translator is Núria Vidal, freelance, done by 20 June
- gateway dashboard: Jordi shares read-only link (no tokens in chat!)
AI: Nina to send pro forma; Wenbo to freeze fw 1.3.4""".replace("Monsoon", "[[PR+:Monsoon]]").replace(
    "attendees: Nina, Wenbo, Lucía, Jordi, Álvaro", "attendees: [[P+:Nina]], [[P+:Wenbo]], [[P+:Lucía]], [[P+:Jordi]], [[P+:Álvaro]]").replace(
    "-> Lucía", "-> [[P+:Lucía]]").replace("Núria Vidal", "[[P-:Núria Vidal]]").replace("dashboard: Jordi", "dashboard: [[P+:Jordi]]").replace(
    "AI: Nina", "AI: [[P+:Nina]]").replace("; Wenbo", "; [[P+:Wenbo]]"))

add("en", "note", f"""Berlin trip (Kathi's wedding) 12-17 Sept
- flight: SZX-FRA-BER, Lufthansa, Miles & More [[ID:{V["miles_more"]}]]
- stay: Kathi & Tobi, [[AD+:{A["kathi"]}]], 3rd floor left
- gift: transferred 300 EUR (done)
- see Jonas in Munich on the 16th? ask him
- Lukas can't come (Shenzhen again lol)""".replace("Kathi's", "[[P+:Kathi]]'s").replace("stay: Kathi & Tobi", "stay: [[P+:Kathi]] & [[P+:Tobi]]").replace(
    "see Jonas", "see [[P+:Jonas]]").replace("- Lukas", "- [[P+:Lukas]]"))

add("en", "note", """Reading notes - "Inspired" by Marty Cagan
- product discovery vs delivery
- "fall in love with the problem, not the solution"
- Steve Jobs quote on focus: saying no to 1,000 things
- compare with how Amazon writes PR/FAQs (Jeff Bezos memo culture)""")

add("en", "note", f"""Accounts / cards (overseas)
DKB Visa {sp(V["card_dkb"])}, exp 08/27
DKB IBAN {sp(V["iban_de_owner"])}
Amex {V["card_amex"][:4]} {V["card_amex"][4:10]} {V["card_amex"][10:]}
Steuer-ID {V["steuer_id"]} / SV-Nr {V["svnr"]}
NIE {V["nie_owner"]}
ETH (Ledger) {V["eth_owner"]}""".replace(sp(V["card_dkb"]), "[[CA:" + sp(V["card_dkb"]) + "]]").replace(
    sp(V["iban_de_owner"]), "[[IB:" + sp(V["iban_de_owner"]) + "]]").replace(
    f'{V["card_amex"][:4]} {V["card_amex"][4:10]} {V["card_amex"][10:]}', f'[[CA:{V["card_amex"][:4]} {V["card_amex"][4:10]} {V["card_amex"][10:]}]]').replace(
    V["steuer_id"], "[[ID:" + V["steuer_id"] + "]]").replace(V["svnr"], "[[ID:" + V["svnr"] + "]]").replace(
    V["nie_owner"], "[[ID:" + V["nie_owner"] + "]]").replace(V["eth_owner"], "[[CR:" + V["eth_owner"] + "]]"))

add("en", "note", """Ideas for Lantern v2
- pair with the Kestrel app instead of a new one
- sleep score for kids -> privacy review with legal first
- sunrise alarm (like Philips Hue / Hatch Rest)
- ask Ying for warmer colour temperature mockups""".replace("Lantern", "[[PR+:Lantern]]").replace("Kestrel", "[[PR+:Kestrel]]").replace("ask Ying", "ask [[P+:Ying]]"))

add("en", "note", """Tidewater phase 2 - open questions
1. data residency: Lumio wants all telemetry in AWS ap-southeast-1
2. SLA credits capped at 10% (Grace) vs 15% (us)
3. who pays for SIM data? Rajesh says Lumio, contract says us
4. new HDB blocks in Punggol, ~2,400 units""".replace("Tidewater", "[[PR+:Tidewater]]").replace("(Grace)", "([[P+:Grace]])").replace("Rajesh says", "[[P+:Rajesh]] says"))

add("en", "note", """Packing list Singapore
passport, EP letter (old, not needed), adapters (UK type G!), umbrella,
gifts: tea for Wei Ling, baijiu for Rajesh, mooncakes for Ben's kids""".replace("Wei Ling", "[[P+:Wei Ling]]").replace("for Rajesh", "for [[P+:Rajesh]]").replace(
    "Ben's", "[[P+:Ben]]'s"))

add("en", "note", """Interview notes - Firmware engineer (for Wenbo's team)
Candidate: Arjun Patel, 6 yrs, ex-Espressif, knows Zephyr + BLE mesh
+ solid on low-power design
- no UWB experience
phone screen by Wenbo on 18 June, then onsite""".replace("Wenbo's", "[[P+:Wenbo]]'s").replace("Arjun Patel", "[[P-:Arjun Patel]]").replace("by Wenbo", "by [[P+:Wenbo]]"))

add("en", "note", """Monsoon vs. competitors
- Netatmo Healthy Home Coach: EUR 99, no Zigbee
- Aqara TVOC sensor: EUR 35, needs hub
- Xiaomi Mijia: cheap, no EU support
Our target: EUR 40.50 B2B, with gateway + dashboard""".replace("Monsoon", "[[PR+:Monsoon]]"))

add("en", "note", """Shekou dinner with Lukas + Mareike, 26 May
- they're thinking about moving to Shenzhen for 2 years (Bosch)
- recommend: Sea World area, international schools in Shekou
- Lukas asked about Kestrel -> showed demo lock, no specs""".replace("with Lukas + Mareike", "with [[P+:Lukas]] + [[P-:Mareike]]").replace("- Lukas asked", "- [[P+:Lukas]] asked").replace(
    "Kestrel", "[[PR+:Kestrel]]"))

add("en", "note", """Home server migration
old NAS 192.168.31.20 -> new mini PC 192.168.31.40
Tailscale IP of mini PC: 100.101.44.9
backup to B2 bucket nightly 03:00
TODO: ask Feng to test photo access from Chengdu""".replace("192.168.31.20", "[[IP:192.168.31.20]]").replace("192.168.31.40", "[[IP:192.168.31.40]]").replace(
    "100.101.44.9", "[[IP:100.101.44.9]]").replace("ask Feng", "ask [[P+:Feng]]"))

add("en", "note", """Things to ask Grace (MSA)
- indemnity cap: 12 months fees?
- governing law Singapore ok, arbitration SIAC
- termination for convenience: 90 days
- signatory: Kevin Huang""".replace("ask Grace", "ask [[P+:Grace]]").replace("Kevin Huang", "[[P+:Kevin Huang]]"))

add("en", "note", """Book club - June
"The Three-Body Problem" (Liu Cixin) - finally read it after the Netflix series
Discussion at Jessie's place Sat 3pm, bring snacks
Next month: "Klara and the Sun", Kazuo Ishiguro""".replace("Jessie's", "[[P+:Jessie]]'s"))

add("en", "note", """Barcelona restaurants (from Lucía)
- Cal Pep, Plaça de les Olles 8 - seafood, go early
- El Xampanyet - cava + anchovies
- dinner at Álvaro and Montse's flat was the best meal of the trip""".replace("(from Lucía)", "(from [[P+:Lucía]])").replace("Plaça de les Olles 8", "[[AD-:Plaça de les Olles 8]]").replace(
    "Álvaro and Montse's", "[[P+:Álvaro]] and [[P+:Montse]]'s"))

add("en", "note", """Versions to remember
Kestrel fw 1.4.2 (build 2024.06.11), app 3.3.0, hw rev C2
Monsoon fw 1.3.4, gateway image 2.0.1.7
Lantern: concept only""".replace("Kestrel", "[[PR+:Kestrel]]").replace("Monsoon", "[[PR+:Monsoon]]").replace("Lantern", "[[PR+:Lantern]]"))

# ============================== English: prompt ==============================
add("en", "prompt", """Write a polite reply to Álvaro declining the 38 EUR price. Our floor is 40.50 EUR for 2,000 units, 39.80 above 3,000. Mention that Kevin approved it and that Lucía will get the install schedule by Friday.""".replace(
    "to Álvaro", "to [[P+:Álvaro]]").replace("that Kevin", "that [[P+:Kevin]]").replace("that Lucía", "that [[P+:Lucía]]"))

add("en", "prompt", """Summarise this Slack thread in 3 bullets:
Rajesh: the VPN keeps dropping every 8h
Wenbo: our side rekeys every 8h, yours every 24h?
Rajesh: yes, 24h. let's align on 8h
Wenbo: ok, I'll update 10.20.0.1 tonight""".replace("Rajesh:", "[[P+:Rajesh]]:").replace("Wenbo:", "[[P+:Wenbo]]:").replace("10.20.0.1", "[[IP:10.20.0.1]]"))

add("en", "prompt", """Explain the difference between Zigbee, Thread and Matter like I'm a sales person. Keep it under 200 words.""")

add("en", "prompt", f"""Is this IBAN valid? A supplier in Spain sent it: [[IB:{V["iban_es_supplier"]}]]. And this one from the same company's old invoice: {V["iban_bad"]}""")

add("en", "prompt", """Fix my Python: it should send the weekly report to nina.su@baywave.cn and cc kevin.huang@baywave.cn but it crashes with SMTPAuthenticationError.
```
server = smtplib.SMTP_SSL("smtp.exmail.qq.com", 465)
server.login("nina.su@baywave.cn", os.environ["MAIL_PW"])
server.sendmail(FROM, ["nina.su@baywave.cn", "kevin.huang@baywave.cn"], msg)
```""".replace("nina.su@baywave.cn", "[[EM:nina.su@baywave.cn]]").replace("kevin.huang@baywave.cn", "[[EM:kevin.huang@baywave.cn]]"))

add("en", "prompt", """Draft a LinkedIn recommendation for my former intern Zixuan Xie. He worked on Kestrel testing, organised user interviews for a kids' night light, and is very reliable. Don't mention project names.""".replace(
    "Zixuan Xie", "[[P+:Zixuan Xie]]").replace("Kestrel", "[[PR+:Kestrel]]"))

add("en", "prompt", """What's the best way to get from Changi Airport to East Coast Road at 1am? Taxi or Grab?""")

add("en", "prompt", f"""Check if this Bitcoin address is a valid format before I send 0.01 BTC: [[CR:{V["btc_p2pkh"]}]]. My friend Ben said it's his old wallet.""".replace(
    "friend Ben", "friend [[P+:Ben]]"))

add("en", "prompt", """Translate to Spanish for the tenants in Barcelona: "Dear residents, a technician from Domotek will visit on Thursday 8 July between 9:00 and 13:00 to check the air quality sensors in your flat. Contact: Lucía Fernández, +34 677 31 05 92." """.replace(
    "Lucía Fernández", "[[P+:Lucía Fernández]]").replace("+34 677 31 05 92", "[[PH:+34 677 31 05 92]]").strip())

add("en", "prompt", """Compare the battery life claims of the Nuki Smart Lock 4.0 and the Aqara U200. Which one uses Matter over Thread?""")

add("en", "prompt", """Turn these notes into a project status email to Ye Zhenyu:
- Kestrel DVT passed, PVT week 29
- Monsoon batch 2 PO received (2,000 units)
- Tidewater phase 2 approved by Lumio
- Volcano: due diligence round 2 done, report next week""".replace("Ye Zhenyu", "[[P+:Ye Zhenyu]]").replace("Kestrel", "[[PR+:Kestrel]]").replace(
    "Monsoon", "[[PR+:Monsoon]]").replace("Tidewater", "[[PR+:Tidewater]]").replace("Volcano", "[[PR+:Volcano]]"))

add("en", "prompt", """Write a regex that matches Singapore postal codes and HDB block numbers like "Blk 412" in an address string.""")

add("en", "prompt", f"""My landlord in Munich returned the deposit to this account: [[IB:{sp(V["iban_de_owner"])}]]. How do I close a DKB account from abroad without a German phone number?""")

add("en", "prompt", """Help me write a toast for my friend Kathi's wedding in Berlin. She and Tobi met at a climbing gym, I was her flatmate in Munich for three years. Funny but not embarrassing, 1 minute.""".replace(
    "Kathi's", "[[P+:Kathi]]'s").replace("and Tobi", "and [[P+:Tobi]]"))

add("en", "prompt", """Why does my nginx return 502? upstream is 10.20.3.41:8080, config:
location /api/ { proxy_pass http://10.20.3.41:8080/; }
error.log: connect() failed (111: Connection refused) while connecting to upstream, client: 10.20.5.117""".replace(
    "10.20.3.41", "[[IP:10.20.3.41]]").replace("10.20.5.117", "[[IP:10.20.5.117]]").replace("{", "{{").replace("}", "}}").replace("{{", "{").replace("}}", "}"))

add("en", "prompt", """Give me a 3-day itinerary for Barcelona: Sagrada Família, Park Güell, Casa Batlló, and a good place for paella near Barceloneta.""")

add("en", "prompt", """Rewrite this more professionally: "hey Grace, Kevin signed, courier goes out tmr to your office, tracking SF1428803917990, pls confirm when u get it" """.replace(
    "hey Grace", "hey [[P+:Grace]]").replace("Kevin signed", "[[P+:Kevin]] signed").strip())

add("en", "prompt", f"""I need to fill in a US visa DS-160. My details: name Su Xiaonan, born 14 March 1991 in Chengdu, passport [[ID:{V["passport_new"]}]], address [[AD+:1177 Wanghai Rd, Haiyun Garden 3-1502, Nanshan District, Shenzhen]], phone [[PH:+86 13928715406]]. Which fields are for the previous passport?""".replace(
    "name Su Xiaonan", "name [[P+:Su Xiaonan]]"))

add("en", "prompt", """Write release notes for Kestrel app 3.3.0 from these commits:
a1f93c2 fix: fingerprint retry at low temperature
7be04d1 feat: UWB unlock distance setting
c55e8a0 chore: bump SDK to 2.14.1""".replace("Kestrel", "[[PR+:Kestrel]]"))

add("en", "prompt", f"""Someone sent this to my work email, is it phishing? "Your Lumio partner account will be suspended. Verify now: [[URL:{V["url_reset"]}]]" - it came from it-desk@lumio-partners.net""".replace(
    "it-desk@lumio-partners.net", "[[EM:it-desk@lumio-partners.net]]"))

add("en", "prompt", """What are the tax rules for a Chinese resident with a Spanish NIE who earned consulting income in Germany in 2023?""")

add("en", "prompt", """Make a table of my team's birthdays from this: Kevin Nov 2, Jessie Jan 19, Wenbo Aug 30, Ying Apr 4, Le Chang Oct 10""".replace(
    "Kevin Nov", "[[P+:Kevin]] Nov").replace("Jessie Jan", "[[P+:Jessie]] Jan").replace("Wenbo Aug", "[[P+:Wenbo]] Aug").replace("Ying Apr", "[[P+:Ying]] Apr").replace(
    "Le Chang", "[[P+:Le Chang]]"))

# ============================== English: form ================================
add("en", "form", f"""SINGAPORE ARRIVAL CARD
Full name (as in passport): [[P+:SU XIAONAN]]
Passport no.: [[ID:{V["passport"]}]]
Nationality: CHINA   Date of birth: 14/03/1991   Sex: F
Address in Singapore: [[AD+:86 East Coast Road, Singapore 428788]] (Katong Bay Hotel)
Mobile: [[PH:+86 139 2871 5406]]   Email: [[EM:nina.su@baywave.cn]]
Flight: SQ 869""")

add("en", "form", f"""Executive Programme – Application Form
Applicant: [[P+:Xiaonan (Nina) Su]]
Email: [[EM:xiaonan.su@gmx.de]]   Phone: [[PH:+86 139 2871 5406]]
Current employer: Baywave Intelligence, Shenzhen
Previous degree: MSc Microsystems, TU München, matriculation no. [[ID:{V["matrikel"]}]]
Referee: [[P+:Prof. Dr. Matthias Brandt]], [[EM:m.brandt@tum.de]]""")

add("en", "form", f"""Vendor registration – Domotek Iberia S.L.
Vendor: Baywave Intelligence Co., Ltd.
Contact person: [[P+:Nina Su]], Senior Product Manager
Address: [[AD+:12F Wan'an Tower, 29 Gaoxin South 7th Rd, Nanshan, Shenzhen]]
Phone: [[PH:+86 755 8671 3320]]   Email: [[EM:nina.su@baywave.cn]]
VAT / tax no.: 91440300MA5G2K8L3X
Bank: China Merchants Bank, Shenzhen Science Park Branch, SWIFT CMBCCNBS""")

add("en", "form", f"""Hotel registration – Hotel Casp Nou, Barcelona
Guest: [[P+:Su, Xiaonan]]
Document: passport [[ID:{V["passport_new"]}]]
NIE (if any): [[ID:{V["nie_owner"]}]]
Home address: [[AD+:Room 1502, Building 3, Haiyun Garden, 1177 Wanghai Road, Shekou, Nanshan District, Shenzhen 518067, China]]
Card guarantee: [[CA:{V["card_es"]}]]
Arrival 8 Jul 2024, departure 12 Jul 2024""")

add("en", "form", f"""Grab - Add payment method
Cardholder name: [[P+:XIAONAN SU]]
Card number: [[CA:{sp(V["card_citic_visa"])}]]
Expiry: 11/28   CVV: ***
Billing address: [[AD+:Wanghai Road 1177, Haiyun Garden Bldg 3, Rm 1502, Shekou, Nanshan, Shenzhen]]""")

add("en", "form", f"""Conference registration – IoT Asia 2024
Name: [[P+:Nina Su]]
Company: Baywave Intelligence
Job title: Senior Product Manager
Email: [[EM:nina.su@baywave.cn]]
Mobile: [[PH:+8613928715406]]
Dietary requirements: none
Badge ID: IOTA24-08812""")

add("en", "form", f"""Wire transfer request
Beneficiary: [[P+:Jonas Hoffmann]]
IBAN: [[IB:{V["iban_de_jonas"]}]]
BIC: DEUTDEMMXXX
Amount: EUR 85.00
Reference: Ausgleich Nebenkosten 2021 (Schleißheimer Str.)
Ordering customer: [[P+:Xiaonan Su]], account [[IB:{sp(V["iban_de_owner"])}]]""")

add("en", "form", f"""Emergency contact form – Lumio site access
Visitor: [[P+:Nina Su]] (Baywave)   ID type: passport   ID no.: [[ID:{V["passport"]}]]
Emergency contact: [[P+:Su Xiaofeng]] (brother)   Phone: [[PH:+86 186 2817 6643]]
Host: [[P+:Rajesh Kumar]], ext. 2107
Site: Tampines Blk 402""")

# ============================== mixed zh/en ==================================
add("mixed", "chat", """[[P+:Jessie]]：Nina 姐，Monsoon 的 PO 到了吗？finance 在催
我：到了，[[P+:Álvaro]] 昨晚发的，我 forward 给你
[[P+:Jessie]]：OK 我跟[[P+:钟姐]] sync 一下""".replace("Nina 姐", "[[P+:Nina姐]]").replace("Monsoon", "[[PR+:Monsoon]]"))

add("mixed", "chat", """[[P+:Kevin]]：Tidewater phase 2 的 kickoff 定在 7/8，你跟 Wei Ling 约一下 time slot
我：好，我顺便问 Grace change order 的进度
[[P+:Kevin]]：👍 记得 cc 叶总""".replace("Tidewater", "[[PR+:Tidewater]]").replace("Wei Ling", "[[P+:Wei Ling]]").replace("问 Grace", "问 [[P+:Grace]]").replace(
    "cc 叶总", "cc [[P+:叶总]]"))

add("mixed", "chat", """[[P+:Wenbo]]：staging server [[IP:10.20.3.41]] 的 disk 满了，谁在跑 log dump？
[[P+:小谢]]：sorry 是我，Kestrel 的 stress test 忘了关
[[P+:Wenbo]]：OK 清一下，下次写到 [[IP:10.20.3.60]] 那台""".replace("Kestrel", "[[PR+:Kestrel]]"))

add("mixed", "prompt", """帮我把这段话改成 formal English email：
"Lucía 你好，安装手册的 Catalan 版本下周五给你，translator 是 Núria。另外 Sabadell 仓库的 address 还没收到，麻烦发我一下。Thanks! Nina\"""".replace(
    "Lucía 你好", "[[P+:Lucía]] 你好").replace("Núria", "[[P-:Núria]]").replace("Thanks! Nina", "Thanks! [[P+:Nina]]"))

add("mixed", "note", """1:1 w/ Kevin 6/11
- Monsoon 第二批 margin 只有 18%，Kevin 说 acceptable
- Volcano：DD report 下周给 board，[[P+:莫总]] 要 30% equity，no way
- 我的 promotion：Q3 review 再说（again）""".replace("w/ Kevin", "w/ [[P+:Kevin]]").replace("Monsoon", "[[PR+:Monsoon]]").replace("Kevin 说", "[[P+:Kevin]] 说").replace(
    "Volcano", "[[PR+:Volcano]]"))

add("mixed", "chat", """[[P+:Ben]]：Nina 你 May 来 SG 住哪
我：Katong，[[AD+:86 East Coast Road]]，离你家很近吧
[[P+:Ben]]：10 min drive！我 Saturday 去接你""".replace("Nina 你", "[[P+:Nina]] 你"))

add("mixed", "prompt", f"""我要在 Excel 里 validate 一列身份证号，写个公式检查第 18 位校验码。测试数据：[[CN:{V["id_feng"]}]]、{V["serial18"]}、[[CN:{V["id_nephew"]}]]""")

add("mixed", "note", """Lantern user interview #3
家长：[[P-:Mrs. Chen]]（化名），孩子 4 岁
- 夜里起来 2-3 次，需要 soft light
- 担心 camera，"no camera please"
- 愿意付 299，如果有 sleep report""".replace("Lantern", "[[PR+:Lantern]]"))

add("mixed", "chat", f"""[[P+:阿峰]]：楠楠，锦鲤那边 IT 说门禁 API 的 token 过期了
我：新的在这 [[URL:{V["url_access"]}]] ，让他们别发群里
[[P+:阿峰]]：这是西班牙那个 Domotek 的？发错了吧
我：😱 对发错了，删掉！""".replace("楠楠，", "[[P+:楠楠]]，").replace("锦鲤", "[[PR+:锦鲤]]"))

add("mixed", "prompt", """用 English 写一份 Kestrel 的 one-pager，target 是 Bosch 的 Stefan Maier（[[P+:Lukas]] 介绍的），重点讲 UWB 无感开锁和 battery life，不要写价格。""".replace(
    "Kestrel", "[[PR+:Kestrel]]").replace("Stefan Maier", "[[P-:Stefan Maier]]"))

add("mixed", "mail", """Hi Nina,

附件是 Tidewater 验收报告的中文版，Rajesh 要求英文版 by Friday。
我和[[P-:小潘]] 分工翻译，Wenbo 帮忙 review technical part。

Thanks,
子轩""".replace("Hi Nina", "Hi [[P+:Nina]]").replace("Tidewater", "[[PR+:Tidewater]]").replace("Rajesh", "[[P+:Rajesh]]").replace(
    "Wenbo", "[[P+:Wenbo]]").replace("\n子轩", "\n[[P+:子轩]]"))

add("mixed", "chat", """[[P+:Lukas]]：Xiaonan，你们公司地址是 高新南七道29号 吗？我要寄 Bosch 的 sample
我：对，[[AD+:深圳市南山区高新南七道29号湾岸大厦12楼]]，收件人写我，电话 [[PH:139 2871 5406]]
[[P+:Lukas]]：Danke!""".replace("Xiaonan，", "[[P+:Xiaonan]]，").replace("是 高新南七道29号 吗", "是 [[AD+:高新南七道29号]] 吗"))

add("mixed", "note", f"""Crypto
- ETH main：[[CR:{V["eth_owner"]}]]（Ledger）
- BTC：[[CR:{V["btc_p2sh"]}]]（multisig，[[P+:哥]]有一把钥匙）
- 欠 [[P+:Lukas]] 5 USDC（taxi）→ [[CR:{V["eth_lukas"]}]]
- tx 0x 开头那串不是地址：{V["eth_tx"]}""".replace("[[P+:哥]]", "哥"))

add("mixed", "mail", """[[P+:晓楠]]，

Álvaro 那边 payment 30% 已经到账，EUR 24,300。剩下的 70% 按 contract 是 delivery 后 30 天。
请 confirm 一下 Domotek 的 billing address 是不是还是 Carrer de Pallars 193。

[[P+:钟慧]] Finance""".replace("Álvaro", "[[P+:Álvaro]]").replace("Carrer de Pallars 193", "[[AD+:Carrer de Pallars 193]]"))

add("mixed", "prompt", """帮我 review 一下这段 code，为什么 phone 字段 mask 不对：
mask("13928715406") 返回 "139****5406" 是对的，但 mask("+86 139 2871 5406") 返回 "+86 ****"。""".replace(
    '"13928715406"', '"[[PH:13928715406]]"').replace('"+86 139 2871 5406"', '"[[PH:+86 139 2871 5406]]"'))

add("mixed", "chat", """[[P+:颖姐]]：Lantern 的 moodboard 我放 Figma 了，link 在群公告
我：好，我晚上看。你觉得 Hatch 那种 sunrise 效果要不要做
[[P+:颖姐]]：可以，成本问[[P+:老曾]]""".replace("Lantern", "[[PR+:Lantern]]"))

# ============================== Spanish ======================================
add("es", "mail", """Hola Nina:

Te confirmo que los técnicos instalarán los sensores Monsoon en el segundo edificio el 8 y 9 de julio.
La dirección es Carrer de Llull 184, 08005 Barcelona. El presidente de la comunidad, el Sr. Ramón Batlle,
tiene las llaves del cuarto eléctrico; su móvil es 629 41 87 03.

Un abrazo,
Lucía""".replace("Hola Nina", "Hola [[P+:Nina]]").replace("Monsoon", "[[PR+:Monsoon]]").replace(
    "Carrer de Llull 184, 08005 Barcelona", "[[AD-:Carrer de Llull 184, 08005 Barcelona]]").replace("el Sr. Ramón Batlle", "el [[P-:Sr. Ramón Batlle]]").replace(
    "629 41 87 03", "[[PH:629 41 87 03]]").replace("\nLucía", "\n[[P+:Lucía]]"))

add("es", "chat", """[[P+:Jordi]]: Nina, el gateway del bloque C vuelve a fallar 😩
[[P+:Jordi]]: la IP nueva es [[IP:192.168.40.12]], ¿puede Wenbo entrar por VPN?
me: sí, le aviso ahora""".replace("Nina, el gateway", "[[P+:Nina]], el gateway").replace("puede Wenbo", "puede [[P+:Wenbo]]"))

add("es", "mail", f"""Estimada Sra. Su:

Le adjuntamos la factura F-2024-0588 por el alojamiento del 19 al 23 de febrero.
Importe total: 812,40 EUR. Se ha cargado en la tarjeta terminada en 3812.

Hotel Casp Nou
[[AD+:{A["hotel_bcn"]}]] · Tel. [[PH:+34 933 02 11 48]]""".replace("Sra. Su", "[[P+:Sra. Su]]"))

add("es", "chat", """[[P+:Álvaro]]: Nina!! Montse pregunta si vienes a cenar el jueves 😄
me: ¡claro! llevo vino chino 🍷
[[P+:Álvaro]]: perfecto, Carrer de Sardenya 312, 4º 2ª, a las 21h""".replace("Nina!!", "[[P+:Nina]]!!").replace("Montse", "[[P+:Montse]]").replace(
    "Carrer de Sardenya 312, 4º 2ª", "[[AD-:Carrer de Sardenya 312, 4º 2ª]]"))

add("es", "form", f"""FORMULARIO DE ALTA DE PROVEEDOR
Razón social: Metalúrgica Vallès S.L.   CIF: B65123487
Persona de contacto: [[P-:Marta Soler i Puig]]
Teléfono: [[PH:+34 937 26 40 15]]   Correo: [[EM:compras@metallurgicavalles.cat]]
Dirección: [[AD-:Carrer de la Indústria 45, 08202 Sabadell]]
IBAN: [[IB:{sp(V["iban_es_supplier"])}]]""")

add("es", "mail", """Hola a todos,

El piloto de Monsoon en Poblenou ha terminado con muy buenos resultados: 38 de 40 pisos activos,
y la calidad del aire ha mejorado un 12 % en los pisos con ventilación automática.
Gracias a Jordi, Lucía y al equipo de Baywave (Nina, Wenbo).

Álvaro Gutiérrez
CEO, Domotek Iberia""".replace("Monsoon", "[[PR+:Monsoon]]").replace("Gracias a Jordi, Lucía", "Gracias a [[P+:Jordi]], [[P+:Lucía]]").replace(
    "(Nina, Wenbo)", "([[P+:Nina]], [[P+:Wenbo]])").replace("Álvaro Gutiérrez", "[[P+:Álvaro Gutiérrez]]"))

add("es", "chat", """[[P+:Lucía]]: ¿me pasas tu número de pasaporte para la carta de invitación?
me: [[ID:""" + V["passport_new"] + """]], el nuevo
[[P+:Lucía]]: gracias, mañana la firma Álvaro""".replace("la firma Álvaro", "la firma [[P+:Álvaro]]"))

add("es", "form", f"""SOLICITUD DE NIE – datos del solicitante
Apellidos: [[P+:SU]]   Nombre: [[P+:XIAONAN]]
Nacionalidad: china   Fecha de nacimiento: 14/03/1991
Pasaporte: [[ID:{V["passport"]}]]
Domicilio en España: [[AD+:{A["hotel_bcn"]}]]
Empresa que invita: Domotek Iberia S.L., representada por [[P+:Lucía Fernández Ruiz]], DNI [[ID-:{V["dni_lucia"]}]]""")

add("es", "chat", """me: ¿alguien sabe si el Barça juega el sábado? quiero ir al Camp Nou
[[P+:Jordi]]: está en obras, juegan en Montjuïc
[[P+:Jordi]]: y el sábado no, es el domingo contra el Girona""")

# ============================== German =======================================
add("de", "mail", """Liebe Xiaonan,

danke für das tolle Geschenk! Wir haben uns riesig gefreut. Tobis Oma fragt immer noch nach dir.
Die Fotos schicke ich dir nächste Woche, [[P-:Lena]] bearbeitet sie gerade.

Ganz liebe Grüße aus der Kastanienallee,
Kathi""".replace("Liebe Xiaonan", "Liebe [[P+:Xiaonan]]").replace("Tobis", "[[P+:Tobi]]s").replace("\nKathi", "\n[[P+:Kathi]]"))

add("de", "chat", """[[P+:Jonas]]: Hey, die Hausverwaltung will noch 85 € Nebenkosten von 2021 😤
me: echt jetzt? schick mir die Abrechnung
[[P+:Jonas]]: mach ich. Überweis einfach auf mein Konto, [[IB:""" + V["iban_de_jonas"] + """]]""")

add("de", "mail", f"""Sehr geehrte Frau Su,

anbei Ihre Lohnsteuerbescheinigung für 2021. Bitte prüfen Sie die Angaben:
Steuer-ID: [[ID:{V["steuer_id"]}]]
Sozialversicherungsnummer: [[ID:{V["svnr"]}]]
Anschrift: [[AD+:{A["munich_old"]}]]

Mit freundlichen Grüßen
[[P-:Sabine Krüger]]
Personalabteilung, SensIQ GmbH, [[AD-:Lichtenbergstraße 8, 85748 Garching]]""".replace("Frau Su", "[[P+:Frau Su]]"))

add("de", "chat", """[[P+:Lukas]]: Bist du im September in Deutschland? Dann komm nach Stuttgart, [[P-:Mareike]] kocht Maultaschen
me: nach der Hochzeit von Kathi vielleicht, 16.?
[[P+:Lukas]]: perfekt, Rotebühlstraße 88, 2. Stock""".replace("von Kathi", "von [[P+:Kathi]]").replace("Rotebühlstraße 88", "[[AD+:Rotebühlstraße 88]]"))

add("de", "mail", """Liebe Frau Su,

herzlichen Glückwunsch zur Aufnahme in das Executive Programme. Ich freue mich, dass Sie den Kontakt
zum Lehrstuhl halten. Herr Schäfer hat mir erzählt, dass Sie in Shenzhen sehr erfolgreich sind.

Mit besten Grüßen
Matthias Brandt""".replace("Liebe Frau Su", "Liebe [[P+:Frau Su]]").replace("Herr Schäfer", "[[P+:Herr Schäfer]]").replace(
    "Matthias Brandt", "[[P+:Matthias Brandt]]"))

add("de", "form", f"""SEPA-Überweisung
Empfänger: [[P+:Katharina Weber]]
IBAN: [[IB:{sp(V["iban_de_kathi"])}]]
BIC: BELADEBEXXX
Betrag: 300,00 EUR
Verwendungszweck: Hochzeitsgeschenk – alles Liebe, Xiaonan""".replace("alles Liebe, Xiaonan", "alles Liebe, [[P+:Xiaonan]]"))

add("de", "chat", """[[P+:Kathi]]: Hast du das mit Angela Merkel gesehen? Die war auf der Hochzeit von unserem Nachbarn 😂
me: what?? echt?
[[P+:Kathi]]: nee Quatsch, sah nur so aus. Aber der DJ hat Helene Fischer gespielt, das war schlimm genug""")

add("de", "form", f"""Anmeldung Gästezimmer / Meldeschein (Berlin)
Name: [[P+:Su]], Vorname: [[P+:Xiaonan]]
Geburtsdatum: 14.03.1991   Staatsangehörigkeit: chinesisch
Reisepass-Nr.: [[ID:{V["passport_new"]}]]
Heimatanschrift: [[AD+:1177 Wanghai Rd, Haiyun Garden 3-1502, Nanshan District, Shenzhen]]
Gastgeber: [[P+:Katharina Weber]], [[AD+:{A["kathi"]}]]""")

add("de", "mail", """Hallo Xiaonan,

kurze Info: dein altes Fahrrad steht noch bei uns im Keller. Soll ich es verkaufen? Ein Kollege,
Herr Öztürk, würde 80 Euro zahlen.

Gruß
Jonas""".replace("Hallo Xiaonan", "Hallo [[P+:Xiaonan]]").replace("Herr Öztürk", "[[P-:Herr Öztürk]]").replace("\nJonas", "\n[[P+:Jonas]]"))

# ---- more texts: secrets in URLs, wallets, accounts, new projects, look-alikes ----
add("zh", "chat", f"""[[P+:邱工]]：固件包链接，7天有效 [[URL:{V["url_s3"]}]]
[[P+:邱工]]：别转到外部群
我：好，[[P+:Jordi]] 那边也要，我单独发给他""")

add("zh", "chat", f"""[[P+:小谢]]：[[P+:晓楠姐]]，周报机器人配好了，webhook 是 [[URL:{V["url_wecom"]}]]
我：这个地址带 key 的，别贴到大群里
[[P+:小谢]]：😳 马上撤回""")

add("zh", "prompt", f"""帮我写个 Python 脚本调用高德地理编码接口 [[URL:{V["url_amap"]}]]，把下面几个地址转成经纬度，输出 CSV：
[[AD+:{A["office"]}]]
[[AD+:{A["dental"]}]]
[[AD-:深圳市福田区福华一路6号免税商务大厦28楼]]""")

add("zh", "note", f"""端午三亚（哥一家 + 我）订票信息
[[P+:苏晓峰]] [[CN:{V["id_feng"]}]]
[[P+:王蕾]] [[CN:{V["id_lei"]}]]
[[P+:苏小宝]] [[CN:{V["id_nephew"]}]]（儿童票）
我 [[CN:{V["id_owner"]}]]
酒店：[[AD-:三亚市海棠区海棠北路28号]]，两间海景房""")

add("zh", "chat", f"""[[P+:雪儿]]：楠楠帮我在携程订下成都到深圳的机票，我的身份证 [[CN:{V["id_yangxue"]}]]，手机 [[PH:135 5103 9947]]
我：几号？
[[P+:雪儿]]：7月5号下午，回程7号晚上，[[P+:阿凯]]不去""".replace("楠楠帮我", "[[P+:楠楠]]帮我"))

add("zh", "chat", f"""[[P+:峰哥]]：我换了张招行信用卡 [[CA:{sp(V["card_feng_new"])}]]，建行那张以后别转了
我：好，爸妈那边体检费也转这张？
[[P+:峰哥]]：对""")

add("zh", "mail", """各位：

公司下半年新立两个预研项目，代号 [[PR-:山茶]]（家用空气净化）和 [[PR-:Marigold]]（海外渠道 SaaS）。
[[PR-:山茶]] 由[[P+:晓楠]]牵头，[[P-:张磊]]组支持；[[PR-:Marigold]] 由[[P+:黄总]]直接管。
保密级别同 [[PR+:Kestrel]]，不要在外部提及代号。

[[P+:叶振宇]]""")

add("zh", "chat", """[[P+:嘉欣]]：你知道 [[PR-:Quokka]] 是啥吗？[[P-:张磊]]他们组天天在说
我：平台部的新项目，具体我也不清楚
[[P+:嘉欣]]：神神秘秘的😂""")

add("zh", "prompt", f"""帮我写一段加群自我介绍，50 字以内：我是[[P+:苏晓楠]]，湾岸智能的产品经理，做智能门锁和环境传感器，坐标深圳蛇口，微信号 [[ID:{V["wechat_id"]}]]，欢迎交流。""")

add("zh", "form", f"""机动车商业保险 投保单
投保人/被保险人：[[P+:苏晓峰]]
证件号码：[[CN:{V["id_feng"]}]]
联系电话：[[PH:186 2817 6643]]
联系地址：[[AD+:{A["feng"]}]]
保单号：[[ID-:{V["policy_car"]}]]
号牌号码：川A·7Q2K9  车辆识别代号：LSVNV2182N2104573
保险期间：2024-07-01 至 2025-06-30""")

add("zh", "note", f"""招行的事
客户经理：[[P-:邓经理]] [[PH:0755-2669 8120]]，科技园支行
客户号 [[ID:{V["cmb_customer"]}]]
借记卡 [[CA:{sp(V["card_cmb"])}]]（5月挂失过，找到了，已解挂）
理财到期 7/15，问一下邓经理有没有新产品""".replace("问一下邓经理", "问一下[[P-:邓经理]]"))

add("en", "chat", f"""[[P+:Kathi]]: [[P+:Tobi]] wants to pay you back for the airport taxi, in ETH lol. which address?
me: [[CR:{V["eth_owner"]}]]
[[P+:Kathi]]: sent from his wallet [[CR:{V["eth_kathi"]}]], check in a bit
me: got it, thx Tobi 🙏""".replace("thx Tobi", "thx [[P+:Tobi]]"))

add("en", "mail", f"""Nina,

heads up: don't use my old wallet anymore ([[CR:{V["btc_ben_legacy"]}]]), the exchange closed it.
For the Malaysia trip refund use [[CR:{V["btc_bech32"]}]] or just PayNow [[PH:+65 9688 0413]].

Ben""".replace("Nina,", "[[P+:Nina]],", 1).replace("\nBen", "\n[[P+:Ben]]"))

add("en", "prompt", f"""git push fails with this, what do I do?
remote: Invalid username or password.
fatal: Authentication failed for '[[URL:{V["url_github"]}]]'
The token was created by Wenbo last month.""".replace("by Wenbo", "by [[P+:Wenbo]]"))

add("en", "chat", f"""[[P+:Rajesh]]: Nina, link for the phase 2 kickoff tomorrow: [[URL:{V["url_zoom"]}]]
[[P+:Rajesh]]: Grace and Wei Ling will join, plus our new PM, Farhan
me: 👍 see you at 10""".replace("Nina, link", "[[P+:Nina]], link").replace("Grace and Wei Ling", "[[P+:Grace]] and [[P+:Wei Ling]]").replace(
    "PM, Farhan", "PM, [[P-:Farhan]]"))

add("en", "mail", f"""Subject: Your sign-in link for Domotek Partner Portal

Hi Nina Su,

Click the link below to sign in. The link is valid for 15 minutes and can be used once.

[[URL:{V["url_magic"]}]]

If you didn't ask for this, ignore this e-mail. Questions? [[EM:portal@domotek.es]]""".replace("Hi Nina Su", "Hi [[P+:Nina Su]]"))

add("en", "prompt", f"""Summarise the key numbers from the Tidewater site survey spreadsheet: [[URL:{V["url_sig"]}]] - number of blocks, gateways per block, blocks without power in the riser.""".replace(
    "Tidewater", "[[PR+:Tidewater]]", 1))

add("en", "chat", f"""[[P+:Wenbo]]: PRD v4 for the lock, download link expires Friday: [[URL:{V["url_token"]}]]
[[P+:Zixuan]]: thanks! should I share it with [[P-:Pan Yue]]?
[[P+:Wenbo]]: yes but internal only""")

add("en", "form", f"""International transfer (Wise)
Recipient: [[P-:Oliver Bennett]]
Recipient IBAN: [[IB:{V["iban_gb_new"]}]]
Reference: Deposit - Clerkenwell flat, 2-9 Sept
Amount: GBP 450.00
Sender: [[P+:Xiaonan Su]], [[EM:xiaonan.su@gmx.de]]""")

add("en", "mail", f"""Hi Nina,

Daan here from SmartSense B.V. - as discussed at the Hannover fair, we can supply the SGP41 VOC
sensors for Monsoon batch 3 at EUR 6.10. Payment terms 50% upfront to:
SmartSense B.V., IBAN [[IB:{sp(V["iban_nl_new"])}]], BIC INGBNL2A

Best regards,
Daan de Vries
Account Manager, SmartSense B.V., [[AD-:Torenallee 45, 5617 BB Eindhoven]]
[[PH:+31 40 302 1187]]""".replace("Hi Nina", "Hi [[P+:Nina]]").replace("Daan here", "[[P-:Daan]] here").replace("Monsoon", "[[PR+:Monsoon]]").replace(
    "\nDaan de Vries", "\n[[P-:Daan de Vries]]"))

add("es", "chat", f"""[[P+:Montse]]: Hola Nina! Para el regalo de los 50 de Álvaro ponemos 40 € cada uno 🎁
[[P+:Montse]]: mi IBAN: [[IB:{sp(V["iban_es_montse"])}]]
me: ¡hecho! ¿qué le regaláis?
[[P+:Montse]]: una bici eléctrica, no se lo digas 🤫""".replace("Hola Nina", "Hola [[P+:Nina]]").replace("de Álvaro", "de [[P+:Álvaro]]"))

add("en", "note", f"""Links to revoke (leaked in chats)
- Feishu form share link posted in the vendor group: [[URL:{V["url_feishu"]}]]
- Tencent meeting with the Tidewater password, fine, meeting is over
- ask IT whether the Grafana key from Wenbo's mail was rotated""".replace("Tidewater", "[[PR+:Tidewater]]").replace("Wenbo's", "[[P+:Wenbo]]'s"))

add("mixed", "chat", f"""[[P+:Ben]]：Nina，IoT Asia 的 guest pass 帮我 wife 也 register 一下？
[[P+:Ben]]：她叫 [[P-:Michelle Tan]]，NRIC [[ID-:{V["sg_nric_new"]}]]
我：OK，email 给我一个""".replace("Nina，IoT", "[[P+:Nina]]，IoT"))

add("zh", "chat", f"""【微信支付】您在美团外卖支付 36.80 元。商户单号 {V["txn16"]}，交易单号 {V["txn16b"]}。""")

add("en", "prompt", f"""Our checkout rejects these card numbers as invalid, is the validation wrong? {group(V["card_invalid16"])} and {V["card_invalid19"]}. Both came from test users.""")

add("zh", "note", f"""门锁样机序列号（DVT）
1号 {V["serial18b"]}
2号 {V["serial18c"]}
3号 {V["serial18"]}
都放在[[P+:老曾]]的柜子里，借用要登记""")

add("en", "chat", """[[P+:Wei Ling]]: FYI our board approved a new initiative, codename Halyard (EV charging in carparks). Totally confidential!
me: nice, anything for Baywave in it?
[[P+:Wei Ling]]: maybe the gateways, let's talk in Q4""".replace("codename Halyard", "codename [[PR-:Halyard]]"))


# ---------------------------------------------------------------------------
# markup -> plain text + spans
# ---------------------------------------------------------------------------
TYPES = {"P": "PERSON", "EM": "EMAIL", "PH": "PHONE", "AD": "ADDRESS", "IB": "IBAN", "CA": "CARD",
         "CN": "CN_ID", "IP": "IP", "CR": "CRYPTO", "URL": "URL", "ID": "ID", "PR": "PROJECT"}
TYPE_ORDER = ["PERSON", "EMAIL", "PHONE", "ADDRESS", "IBAN", "CARD", "CN_ID", "IP", "CRYPTO", "URL", "ID", "PROJECT"]
SIGNED = {"PERSON", "ADDRESS", "PROJECT"}
MARK = re.compile(r"\[\[(P|EM|PH|AD|IB|CA|CN|IP|CR|URL|ID|PR)([+-]?):(.*?)\]\]", re.S)

MEM_TEXT = "\n\n".join(MEM_PLAIN)
MEM_LOWER = MEM_TEXT.lower()


def _flex(surface):
    """regex for an alphanumeric value with optional space/hyphen separators."""
    chars = [c for c in surface if c.isalnum()]
    return re.compile(r"(?<![0-9A-Za-z])" + r"[ \-]?".join(re.escape(c) for c in chars) + r"(?![0-9A-Za-z])", re.I)


_CC = ["852", "886", "86", "34", "65", "49", "44", "1"]


def phone_core(s):
    s = s.strip()
    d = re.sub(r"\D", "", s)
    intl = s.startswith("+")
    if d.startswith("00"):
        d, intl = d[2:], True
    if intl:
        for cc in _CC:
            if d.startswith(cc):
                d = d[len(cc):]
                break
    return d[1:] if d.startswith("0") else d


MEM_PHONES = {phone_core(m.group()) for m in re.finditer(r"(?:\+|00)?\d[\d \-().]{5,}\d", MEM_TEXT)}


def known_value(etype, surface):
    if etype in ("EMAIL", "CRYPTO"):
        return surface.lower() in MEM_LOWER
    if etype == "URL":
        return surface in MEM_TEXT
    if etype == "IP":
        return re.search(r"(?<![0-9A-Fa-f.:])" + re.escape(surface) + r"(?![0-9A-Fa-f.:])", MEM_TEXT) is not None
    if etype == "PHONE":
        return phone_core(surface) in MEM_PHONES
    # CARD, IBAN, CN_ID, ID: exact, or ignoring space/hyphen grouping
    if re.search(r"(?<![0-9A-Za-z])" + re.escape(surface) + r"(?![0-9A-Za-z])", MEM_TEXT, re.I):
        return True
    return _flex(surface).search(MEM_TEXT) is not None


def b58_ok(s):
    n = 0
    for c in s:
        n = n * 58 + _B58.index(c)
    raw = n.to_bytes(25, "big")
    return hashlib.sha256(hashlib.sha256(raw[:21]).digest()).digest()[:4] == raw[21:]


def bech32_ok(s):
    hrp, data = s[:2], [_B32.index(c) for c in s[3:]]
    return _polymod(_hrp_expand(hrp) + data) == 1


def validate(etype, s):
    """the value really is what its label claims (checksums etc.)."""
    import ipaddress
    if etype == "CARD":
        d = re.sub(r"[ \-]", "", s)
        return d.isdigit() and len(d) in (15, 16, 19) and luhn_ok(d)
    if etype == "IBAN":
        return iban_ok(s)
    if etype == "CN_ID":
        return len(s) == 18 and s[:17].isdigit() and cnid_check(s[:17]) == s[17].upper()
    if etype == "IP":
        try:
            ipaddress.ip_address(s)
            return True
        except ValueError:
            return False
    if etype == "CRYPTO":
        if re.fullmatch(r"0x[0-9a-fA-F]{40}", s):
            return s == s.lower() or s == eip55(s[2:])
        if s.startswith("bc1"):
            return bech32_ok(s)
        return s[0] in "13" and b58_ok(s)
    if etype == "EMAIL":
        return re.fullmatch(r"[\w.+-]+@[\w-]+(\.[\w-]+)+", s) is not None
    if etype == "URL":
        return s.startswith("http") and re.search(r"token=|[?&](?:rl)?key=|sig=|Signature=|pwd=|access_token|//[^/@]+:[^/@]+@|shareToken=", s) is not None
    if etype == "PHONE":
        return len(re.sub(r"\D", "", s)) >= 7
    return bool(s.strip()) and s == s.strip()


def parse(markup):
    out, ents, pos = [], [], 0
    plain_len = 0
    for m in MARK.finditer(markup):
        chunk = markup[pos:m.start()]
        out.append(chunk)
        plain_len += len(chunk)
        code, sign, surface = m.groups()
        etype = TYPES[code]
        assert "[[" not in surface and surface == surface.strip() and surface, (markup, surface)
        if etype in SIGNED:
            assert sign, ("sign missing", surface)
            known = sign == "+"
            low = surface.lower()
            pool = {"PERSON": ALIASES, "ADDRESS": ADDR_ALIASES_L, "PROJECT": PROJ_ALIASES}[etype]
            assert (low in pool) == known, ("known mark disagrees with the memory lists", etype, sign, surface)
        else:
            assert etype == "ID" or not sign, ("no sign on pattern types", surface)
            assert validate(etype, surface), ("invalid value", etype, surface)
            known = known_value(etype, surface)
            if sign:
                assert known == (sign == "+"), ("ID mark disagrees with memory", surface, known)
        ents.append({"type": etype, "start": plain_len, "end": plain_len + len(surface), "text": surface, "known": known})
        out.append(surface)
        plain_len += len(surface)
        pos = m.end()
    out.append(markup[pos:])
    text = "".join(out)
    assert "[[" not in text and "]]" not in text.replace("[[", ""), text
    for e in ents:
        assert text[e["start"]:e["end"]] == e["text"]
    for a, b in zip(ents, ents[1:]):
        assert a["end"] <= b["start"], (a, b)
    return text, ents


# ---------------------------------------------------------------------------
# lint: things in the unlabelled part of a text that look like personal data.
# Hard negatives that are there on purpose are listed in NEG_OK (context strings).
# ---------------------------------------------------------------------------
NEG_OK = [
    "知足常乐", "文博会", "老黄历", "小黄车", "转发这条锦鲤", "明天小雪", "看火山", "grace period", "Grace period",
    "a real kestrel", "the bird", "3 min", "10 min", "+86 ****", "kestrel on the balcony", "gateway image 2.0.1.7", "冰岛：看火山",
]


def lint(tid, text, ents):
    masked = list(text)
    for e in ents:
        for i in range(e["start"], e["end"]):
            masked[i] = "\x00"
    masked = "".join(masked)
    problems, warnings = [], []

    def ctx(m):
        return text[max(0, m.start() - 12):m.end() + 12].replace("\n", " ")

    def ok(m):
        c = text[max(0, m.start() - 25):m.end() + 25]
        return any(n in c for n in NEG_OK)

    for m in re.finditer(r"[\w.+-]+@[\w-]+\.[\w.-]+", masked):
        problems.append("email " + ctx(m))
    for m in re.finditer(r"(?<![\w])\d(?:[ -]?\d){12,20}(?![\w])", masked):
        d = re.sub(r"\D", "", m.group())
        if len(d) in (15, 16, 19) and luhn_ok(d):
            problems.append("Luhn-valid number " + ctx(m))
    for m in re.finditer(r"(?<![\w])\d{17}[\dXx](?![\w])", masked):
        if cnid_check(m.group()[:17]) == m.group()[17].upper():
            problems.append("valid CN ID " + ctx(m))
    for m in re.finditer(r"(?<![\w])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?![\w])", masked):
        if iban_ok(m.group()):
            problems.append("valid IBAN " + ctx(m))
    for m in re.finditer(r"0x[0-9a-fA-F]{40}(?![0-9a-fA-F])|(?<![\w])bc1[02-9ac-hj-np-z]{20,}", masked):
        problems.append("crypto " + ctx(m))
    for m in re.finditer(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])", masked):
        if not ok(m):
            warnings.append("IPv4-like " + ctx(m))
    for m in re.finditer(r"(?<!\d)(?:\+\d{2,3}[ -]?)?1[3-9]\d[ -]?\d{4}[ -]?\d{4}(?!\d)|\+\d{2,3}[ (]", masked):
        if not ok(m):
            warnings.append("phone-like " + ctx(m))
    for alias in sorted(set(a for names in PEOPLE.values() for a in names)):
        if re.search(r"[\u4e00-\u9fff]", alias):
            if len(alias) < 2:
                continue
            pat = re.escape(alias)
        else:
            if len(alias) < 3:
                continue
            pat = r"(?<![\w])" + re.escape(alias) + r"(?![\w])"
        for m in re.finditer(pat, masked, re.I):
            if not ok(m):
                warnings.append("name %r %s" % (alias, ctx(m)))
    for p in PROJECTS_MEM + ["Volcano"]:
        for m in re.finditer(re.escape(p), masked, re.I):
            if not ok(m):
                warnings.append("project %r %s" % (p, ctx(m)))
    for a in ADDR_ALIASES:
        if a in masked:
            warnings.append("address " + a)
    return ["%s: %s" % (tid, p) for p in problems], ["%s: %s" % (tid, w) for w in warnings]


# ---------------------------------------------------------------------------
# outputs
# ---------------------------------------------------------------------------
LANG_ORDER = ["zh", "en", "mixed", "es", "de"]
KIND_ORDER = ["chat", "mail", "note", "prompt", "form"]


def check_memory():
    for k, names in PEOPLE.items():
        assert any(n in MEM_TEXT for n in names), ("person not in memory", k)
    for k, a in A.items():
        assert a in MEM_TEXT, ("address not in memory", k)
    for p in PROJECTS_MEM:
        assert p in MEM_TEXT, ("project not in memory", p)
    for path in MEM:
        if path.startswith("mail/"):
            head = MEM[path].decode("utf-8").split("\n\n", 1)[0]
            for h in ("From:", "To:", "Subject:", "Date:", "Message-ID:", "MIME-Version: 1.0"):
                assert ("\n" + h) in ("\n" + head), (path, h)


def build_records():
    records, counters = [], {}
    for lang, kind, markup in RAW:
        assert lang in LANG_ORDER and kind in KIND_ORDER, (lang, kind)
        text, ents = parse(markup)
        counters[(lang, kind)] = counters.get((lang, kind), 0) + 1
        rid = "%s-%s-%03d" % (lang, kind, counters[(lang, kind)])
        records.append({"id": rid, "lang": lang, "kind": kind, "text": text, "entities": ents})
    return records


def compute_stats(records):
    s = {"texts": len(records), "by_lk": {}, "by_lang": {}, "types": {}, "empty": 0, "max_ents": 0,
         "ents": 0, "rel_known": 0, "rel_total": 0}
    for r in records:
        s["by_lk"][(r["lang"], r["kind"])] = s["by_lk"].get((r["lang"], r["kind"]), 0) + 1
        s["by_lang"][r["lang"]] = s["by_lang"].get(r["lang"], 0) + 1
        s["empty"] += not r["entities"]
        s["max_ents"] = max(s["max_ents"], len(r["entities"]))
        for e in r["entities"]:
            t = s["types"].setdefault(e["type"], {"total": 0, "known": 0})
            t["total"] += 1
            t[r["lang"]] = t.get(r["lang"], 0) + 1
            t["known"] += e["known"]
            s["ents"] += 1
            if e["type"] in ("PERSON", "ADDRESS", "ID", "PROJECT"):
                s["rel_total"] += 1
                s["rel_known"] += e["known"]
    ext = {}
    for p in MEM:
        e = "." + p.rsplit(".", 1)[1]
        ext[e] = ext.get(e, 0) + 1
    s["mem_ext"] = ext
    return s


def format_stats(s):
    langs = [l for l in LANG_ORDER if l in s["by_lang"]]
    L = []
    L.append("Texts: %d  (no entities: %d, %.1f%%; max entities in one text: %d)" % (
        s["texts"], s["empty"], 100.0 * s["empty"] / s["texts"], s["max_ents"]))
    L.append("")
    L.append("| language | " + " | ".join(KIND_ORDER) + " | total | share |")
    L.append("|---|" + "---:|" * (len(KIND_ORDER) + 2))
    for l in langs:
        row = [str(s["by_lk"].get((l, k), 0)) for k in KIND_ORDER]
        L.append("| %s | %s | %d | %.1f%% |" % (l, " | ".join(row), s["by_lang"][l], 100.0 * s["by_lang"][l] / s["texts"]))
    tot = [str(sum(s["by_lk"].get((l, k), 0) for l in langs)) for k in KIND_ORDER]
    L.append("| all | %s | %d | 100%% |" % (" | ".join(tot), s["texts"]))
    L.append("")
    L.append("Entities: %d" % s["ents"])
    L.append("")
    L.append("| type | total | " + " | ".join(langs) + " | in memory (`known`) |")
    L.append("|---|---:|" + "---:|" * len(langs) + "---:|")
    for t in TYPE_ORDER:
        d = s["types"].get(t, {"total": 0, "known": 0})
        L.append("| %s | %d | %s | %d (%d%%) |" % (t, d["total"], " | ".join(str(d.get(l, 0)) for l in langs), d["known"],
                                                 round(100.0 * d["known"] / d["total"]) if d["total"] else 0))
    L.append("")
    L.append("PERSON/ADDRESS/ID/PROJECT mentions that refer to something in memory: %.1f%%" % (
        100.0 * s["rel_known"] / s["rel_total"]))
    L.append("")
    n = sum(s["mem_ext"].values())
    L.append("Memory corpus: %d files (%s)" % (n, ", ".join("%d %s" % (v, k) for k, v in sorted(s["mem_ext"].items(), key=lambda kv: (-kv[1], kv[0])))))
    return "\n".join(L)


README_HEAD = """# PII scrubber evaluation set - held-out

A second, independently written evaluation set for the prompt scrubber
(`crates/flurry-privacy`). The first set (`tests/privacy/`) was used while the scrubber
was being tuned, so its numbers are optimistic; this set measures how the scrubber
generalises to a different owner, other people, places, projects, languages and ways of
writing. Report results on both sets separately.

It was written without looking at the scrubber's code, its rules or word lists, and
without running the scrubber; the texts were written the way people actually write
(chat, mail, notes, prompts to an assistant, forms), not to suit any detector. It shares
nothing with the first set except the output format and the label conventions: different
owner, contacts, addresses, projects, value generators and texts.

Everything in this folder except `make_heldout.py` is generated:

    python3 tests/privacy-heldout/make_heldout.py

The generator is deterministic (fixed seed `20250611`, Python 3 standard library only):
running it twice produces byte-identical files. It deletes and rewrites `memory/`,
`eval.jsonl` and this README on every run. Edit the generator, not the outputs.

## Files

- `make_heldout.py` - the generator: the owner, people in memory with their aliases,
  addresses, projects, value generators with valid checksums (Luhn, IBAN mod-97 incl.
  Spanish control digits, ISO 7064 MOD 11-2 for Chinese resident IDs, EIP-55 for Ethereum,
  bech32 / base58check for Bitcoin, Spanish NIE/DNI letters, German Steuer-ID, Singapore
  FIN), the memory corpus and the texts. Texts are written with inline markup
  `[[TYPE±:surface]]` (see the docstring); the generator strips it into code-point spans,
  checks every value (checksums, `text[start:end] == entity.text`, no overlaps, `+`/`-`
  marks against the memory lists) and lints the unlabelled rest of each text for things
  that look like personal data (valid Luhn/IBAN/CN ID numbers, e-mails, crypto addresses
  are errors; names, IP-like and phone-like strings are warnings, with the deliberate hard
  negatives listed in `NEG_OK`).
- `memory/` - the owner's private memory, i.e. what the scrubber may learn its entity list from:
  - `memory/mail/*.eml` - RFC 5322 mails (`From`, `To`, some `Cc`, `Subject`, `Date`,
    `Message-ID`, `MIME-Version: 1.0`, `Content-Type: text/plain; charset=utf-8`, 8bit
    body, LF line endings). Most mails with non-ASCII names/subjects use RFC 2047 encoded
    words (`=?utf-8?b?...?=`), some use raw UTF-8 headers (RFC 6532). Signatures carry phone
    numbers and addresses; some mails forward or quote earlier ones; some are sent by the owner.
  - `memory/notes/` - contacts (`people.txt`, a vCard dump, `家里人.txt`), addresses,
    accounts/IDs, rental, health, birthdays, travel notes, a todo list, home network,
    Germany notes, one note per private project under `notes/work/codenames/`, meeting
    notes under `notes/work/mtg/`, a 1:1 log.
- `eval.jsonl` - the labelled texts, one JSON object per line:

      {"id": "zh-chat-001", "lang": "zh", "kind": "chat", "text": "...",
       "entities": [{"type": "PERSON", "start": 14, "end": 16, "text": "楠楠", "known": true}]}

  `lang` is `zh`, `en`, `mixed` (Chinese/English code-mixing), `es` or `de`; `kind` is
  `chat`, `mail`, `note`, `prompt` (something the owner types into an assistant, often
  with pasted data) or `form`. `start`/`end` are Python `str` (Unicode code point)
  offsets, end exclusive; `text[start:end] == entity.text` is asserted by the generator.
  Rust users: convert code points to byte offsets (`char_indices`) before slicing.
  `known` says whether the entity is in the memory corpus: for PERSON/ADDRESS/PROJECT
  (and IDs marked so) whether the person/place/project is in memory, in any surface form;
  for the pattern types whether the normalised value (digits of a card/IBAN/ID ignoring
  spaces and hyphens, phone number without country code/trunk prefix, case-folded e-mail
  and crypto address, exact IP/URL) appears in memory. A scorer may ignore it.
- `README.md` - this file.

## The owner

苏晓楠 / Nina Su (Su Xiaonan), senior product manager at 湾岸智能 / Baywave Intelligence,
Shenzhen (Nanshan, Shekou), from Chengdu (parents and brother there), studied and worked in
Munich 2014-2021 (friends in Berlin, Munich, Stuttgart; a professor at TUM), works with a
Spanish partner (Domotek Iberia, Barcelona) and a Singapore partner (Lumio).
Memory holds %(n_people)d other people (the generator lists %(n_alias)d surface forms for the
owner and them together: pinyin, English names, nicknames, 小X/老X/X总/X姐/X工/X师傅, titles;
not every form occurs in memory), %(n_addr)d addresses and the private projects
%(projects)s. The texts also mention strangers (couriers, drivers, recruiters, new
colleagues, suppliers, hotel staff), new addresses, new IDs and new project names
(白鹭, 山茶, Marigold, Quokka, Halyard).

## Labels

Same conventions as `tests/privacy/README.md`. Every personal entity is labelled,
whether or not a scrubber could plausibly find it.

| type | what |
|---|---|
| PERSON | names of private people in any form: full name, given name alone, nicknames (`楠楠`, `Luki`), lower case, without accents (`Alvaro`), pinyin in both orders, airline/passport forms (`SU/XIAONAN MS`, `SU XIAONAN`), surname and given name in separate form fields; titles and honorifics inside the span (`Mr. Kumar`, `Prof. Dr. Matthias Brandt`, `Sra. Su`, `Frau Su`, `黄总`, `邱工`, `陶师傅`, `苏小姐`, `颖姐`, `晓楠姐`, `Nina姐`, `王主任`), `小谢`/`老曾`. Possessive `'s` and German genitive `s` are outside the span. |
| EMAIL | every e-mail address (also company and no-reply addresses) |
| PHONE | phone numbers in international/national formats, personal and business (`139 2871 5406`, `+86 139-2871-5406`, `0755-8671 3320`, `+34 612 48 93 17`, `6241 8830`) |
| ADDRESS | street-level addresses incl. business and hotel addresses, Chinese, Spanish, German, Singapore and English-transliterated Chinese forms; the whole address incl. city/postcode is one span; shortened forms (`高新南七道29号`, `Rotebühlstraße 88`) too |
| IBAN | valid mod-97 IBANs, spaced or compact |
| CARD | payment card numbers with a valid Luhn digit (15, 16 or 19 digits) |
| CN_ID | 18-character Chinese resident ID numbers with a valid check character |
| IP | IPv4 and IPv6 addresses (private ranges included) |
| CRYPTO | Ethereum (`0x` + 40 hex, lower case or EIP-55) and Bitcoin (bech32, base58 P2PKH/P2SH) addresses |
| URL | URLs carrying a secret (`token=`, `key=`, `rlkey=`, `sig=`, `access_token=`, `pwd=`, `shareToken=`, password in userinfo); the whole URL is the span |
| ID | persistent identifiers of a person: employee, customer, policy, membership, frequent flyer, passport, patient, social insurance, tax (Steuer-ID), NIE/DNI, Singapore FIN/NRIC, matriculation numbers, WeChat ID |
| PROJECT | private project code names; only the code name (`Kestrel`, `锦鲤`), not `Project`/`项目` around it; the English name `Volcano` of the project `火山` counts as known |

Not labelled (hard negatives, present on purpose): public figures (苏轼, 鲁迅, 雷军, 马斯克,
Angela Merkel, Helene Fischer, Steve Jobs, Marty Cagan, ...), companies and brands (小米,
华为, 大疆, 招商银行, Bosch, DBS, Grab, Netatmo, ...), product and model names (iPhone 15
Pro, Mate 60, Kindle, KFR-35GW), cities, districts, landmarks and estates without a street
number (蛇口, 海上世界, 南海玫瑰园, Sagrada Família, Camp Nou), HDB block references used as
work sites (`Tampines blk 402`), kinship terms (妈, 爸, 哥, 嫂子), words that look like names
or project names (知足常乐, 文博会, 老黄历, 小黄车, 小雪 (weather), 火山 (volcano), 锦鲤
(the lucky-koi meme), "grace period", a real kestrel), company tax/registration numbers
(`91440300MA5G2K8L3X`, CIF), company bank accounts, BIC/SWIFT codes, order, tracking,
invoice, booking, claim and ticket numbers, flight and train numbers, licence plates,
dates, prices, version numbers (incl. a four-part `2.0.1.7`), git hashes, a transaction hash
(`0x` + 64 hex), masked numbers (`139****5406`) and last-4 digits, 16/19-digit numbers that
fail Luhn, 18-digit numbers that fail the CN ID check, an IBAN with wrong check digits,
corporate hotlines (`400-...`), public URLs without secrets.

## Counts

"""


def write_outputs():
    check_memory()
    records = build_records()
    problems, warnings = [], []
    for r in records:
        p, w = lint(r["id"], r["text"], r["entities"])
        problems += p
        warnings += w
    for w in warnings:
        print("warning:", w)
    assert not problems, "\n".join(problems)

    mem_dir = os.path.join(HERE, "memory")
    if os.path.exists(mem_dir):
        shutil.rmtree(mem_dir)
    for rel in sorted(MEM):
        path = os.path.join(mem_dir, *rel.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(MEM[rel])
    with open(os.path.join(HERE, "eval.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    # read back
    with open(os.path.join(HERE, "eval.jsonl"), encoding="utf-8") as f:
        for line, r in zip(f, records):
            back = json.loads(line)
            for e in back["entities"]:
                assert back["text"][e["start"]:e["end"]] == e["text"]
    s = compute_stats(records)
    table = format_stats(s)
    alias_n = sum(len(v) for v in PEOPLE.values())
    head = README_HEAD % {"n_people": len(PEOPLE) - 1, "n_alias": alias_n, "n_addr": len(A),
                          "projects": ", ".join(PROJECTS_MEM)}
    with open(os.path.join(HERE, "README.md"), "w", encoding="utf-8", newline="\n") as f:
        f.write(head + table + "\n")
    print(table)
    return s


if __name__ == "__main__":
    write_outputs()
