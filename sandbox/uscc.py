"""统一社会信用代码 (GB 32100-2015) and 组织机构代码 (GB 11714-1997) check characters.

The seed must produce codes a real validator accepts (and, for the "bad USCC" share, codes it
rejects for a known reason), so the check arithmetic lives here, tested on its own.
"""

from __future__ import annotations

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_USCC_VALUE = {ch: i for i, ch in enumerate(USCC_ALPHABET)}


def uscc_check_char(first17: str) -> str:
    """18th character for the first 17 characters of a USCC."""
    if len(first17) != 17:
        raise ValueError("need exactly 17 characters")
    total = sum(_USCC_VALUE[ch] * w for ch, w in zip(first17, USCC_WEIGHTS))
    return USCC_ALPHABET[(31 - total % 31) % 31]


#: 登记管理部门代码 (first character) allowed by GB 32100-2015.
AUTHORITIES = "123456789ANY"


def is_valid_uscc(code: str) -> bool:
    """True for a well-formed USCC: authority code, 6-digit division, alphabet, check character.

    The check character alone is not enough: eighteen zeros pass it (the weighted sum is 0).
    """
    if len(code) != 18 or any(ch not in _USCC_VALUE for ch in code):
        return False
    if code[0] not in AUTHORITIES or not code[2:8].isdigit():
        return False
    return uscc_check_char(code[:17]) == code[17]


def _org_value(ch: str) -> int:
    return int(ch) if ch.isdigit() else ord(ch) - ord("A") + 10


def org_check_char(first8: str) -> str:
    """9th character of an organization code (GB 11714): 11 - sum % 11, 10 -> X, 11 -> 0."""
    if len(first8) != 8:
        raise ValueError("need exactly 8 characters")
    c = 11 - sum(_org_value(ch) * w for ch, w in zip(first8, ORG_WEIGHTS)) % 11
    return "X" if c == 10 else "0" if c == 11 else str(c)


def make_uscc(admin_code: str, org_body8: str, authority: str = "9", kind: str = "1") -> str:
    """Assemble a valid USCC: authority + kind + 6-digit division + 9-char org code + check."""
    if len(admin_code) != 6:
        raise ValueError("admin division code has 6 digits")
    first17 = authority + kind + admin_code + org_body8 + org_check_char(org_body8)
    return first17 + uscc_check_char(first17)
